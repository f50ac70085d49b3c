// SPDX-License-Identifier: GPL-2.0
// Network namespaces as people name them: `ip netns` names (/run/netns/),
// "init" for the initial namespace, the inode number otherwise.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace qwatch {

// The inode of the namespace `ip netns` calls @name, if there is one.
std::optional<uint32_t> netns_by_name(const std::string &name);

class NetnsNames {
 public:
  // Re-reads /run/netns: namespaces come and go while qwatch runs.
  void refresh();
  std::string label(uint32_t inode) const;

 private:
  std::map<uint32_t, std::string> names_;
};

}  // namespace qwatch
