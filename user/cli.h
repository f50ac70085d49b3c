// SPDX-License-Identifier: GPL-2.0
// qwatch's command line: its options, --help, and what it refuses.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <string>

#include "output_mode.h"
#include "tracer.h"

namespace qwatch {

struct Options {
  const OutputMode *output = nullptr;  // set by parse_options()
  // The mode whose format the output prints in, when it takes another's
  // (OutputMode::takes_format: --queues --json gives "json"); "" its own.
  std::string format;
  bool format_prints_every_counter = false;  // that mode's OutputMode::prints_every_counter
  // The values of the modes' own options (OutputMode::own_option), by
  // name, each checked by its check().
  std::map<std::string, std::string> mode_options;
  bool verbose = false;  // libbpf's messages on stderr
  bool once = false;
  bool interval_given = false;  // --once: count over the interval, then print
  bool histograms = false;
  bool color = true;
  double interval_s = 1.0;
  unsigned long count = 0;  // tables to print; 0: until interrupted
  TracerSettings tracer;
  bool want_tcp = true;
  bool want_hsp = true;
  uint32_t pid = 0;  // 0: every process
  int ready_fd = -1;
  bool stats = false;   // --stats: a JSON line about qwatch itself at exit
  std::string metrics;  // ADDR:PORT, empty: no metrics
  sockaddr_storage metrics_address{};
  socklen_t metrics_length = 0;
};

// The options of @argv; throws UsageError for a command line qwatch cannot
// act on. --help prints the usage and exits.
Options parse_options(int argc, char **argv);

// The --help text, with every registered output mode.
std::string usage();

}  // namespace qwatch
