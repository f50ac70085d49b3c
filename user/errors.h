// SPDX-License-Identifier: GPL-2.0
// The reader's error policy, in one place:
//
// - A command line qwatch cannot act on throws UsageError while it is
//   parsed; main() prints it as one line and exits 2.
// - A fatal setup error (before the loop: loading or attaching the BPF
//   programs, binding --metrics, --ready-fd) throws SetupError; main()
//   prints it as one line and exits 1.
// - Nothing unwinds through libbpf: its callbacks catch everything and hand
//   libbpf an error code, which comes back out of the libbpf call.
// - Inside the loop nothing throws. What fails there (a listing, a
//   ring-buffer read, a counter read) is returned as a negative errno, as
//   libbpf returns its own, and the loop reports it with report_failure():
//   one line naming what failed, then exit status 1. A value that could
//   not be read is never passed off as a zero.
// - What qwatch can watch without is no error: a part it cannot watch
//   (HSP's probes, HSP's protocol number) is said once on stderr and in
//   the table's footer, and the rest is watched.
#pragma once

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace qwatch {

// A fatal setup error: what failed and the errno it failed with.
class SetupError : public std::system_error {
 public:
  SetupError(int err, const std::string &what)
      : std::system_error(err, std::generic_category(), what)
  {
  }
};

// A command line qwatch cannot act on.
class UsageError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Exit status of a run the loop could not go on with.
inline constexpr int kExitFailure = 1;

// "qwatch: @what: <strerror(-@err)>" on stderr; returns kExitFailure.
inline int report_failure(const char *what, int err)
{
  std::fprintf(stderr, "qwatch: %s: %s\n", what, std::strerror(err < 0 ? -err : err));
  return kExitFailure;
}

}  // namespace qwatch
