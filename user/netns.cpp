// SPDX-License-Identifier: GPL-2.0
#include "netns.h"

#include <dirent.h>
#include <sys/stat.h>

#include <memory>

namespace qwatch {

namespace {

constexpr const char kNamedNetns[] = "/run/netns/";

std::optional<uint32_t> inode_of(const std::string &path)
{
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return std::nullopt;
  return static_cast<uint32_t>(st.st_ino);
}

}  // namespace

std::optional<uint32_t> netns_by_name(const std::string &name)
{
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    return std::nullopt;
  return inode_of(kNamedNetns + name);
}

void NetnsNames::refresh()
{
  names_.clear();
  if (auto init = inode_of("/proc/1/ns/net"))
    names_[*init] = "init";
  std::unique_ptr<DIR, int (*)(DIR *)> dir(opendir(kNamedNetns), closedir);
  if (!dir)
    return;
  while (const dirent *entry = readdir(dir.get())) {
    std::string name = entry->d_name;
    if (name == "." || name == "..")
      continue;
    if (auto inode = inode_of(kNamedNetns + name))
      names_[*inode] = name;
  }
}

std::string NetnsNames::label(uint32_t inode) const
{
  auto it = names_.find(inode);
  return it == names_.end() ? std::to_string(inode) : it->second;
}

}  // namespace qwatch
