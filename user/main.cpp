// SPDX-License-Identifier: GPL-2.0
// qwatch: live SYN-queue and accept-queue occupancy of every TCP and HSP
// listener, from BPF probes on the kernel's inet_connection_sock layer.
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "cli.h"
#include "errors.h"
#include "libbpf_handles.h"
#include "watch.h"

int main(int argc, char **argv)
{
  using namespace qwatch;

  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const UsageError &e) {
    std::fprintf(stderr, "qwatch: %s (see qwatch --help)\n", e.what());
    return 2;
  }
  print_libbpf_messages(options.verbose);
  Watch::stop_on_signals();

  try {
    Watch watch(options);
    return watch.run();
  } catch (const SetupError &e) {
    // EPERM is the kernel refusing an unprivileged caller; EACCES from a
    // program load is the verifier's verdict, named in the message.
    const char *hint = "";
    if (e.code().value() == EPERM && geteuid() != 0)
      hint = " (qwatch needs root: CAP_BPF and CAP_PERFMON)";
    std::fprintf(stderr, "qwatch: %s%s\n", e.what(), hint);
    return kExitFailure;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "qwatch: %s\n", e.what());
    return kExitFailure;
  }
}
