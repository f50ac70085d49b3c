// SPDX-License-Identifier: GPL-2.0
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "errors.h"
#include "metrics.h"
#include "netns.h"

namespace qwatch {

namespace {

// "--a", "--a and --b", "--a, --b and --c".
std::string join(const std::vector<std::string> &items)
{
  std::string text;
  for (size_t i = 0; i < items.size(); i++) {
    if (i)
      text += i + 1 == items.size() ? " and " : ", ";
    text += items[i];
  }
  return text;
}

std::vector<const OutputMode *> modes_with_option()
{
  std::vector<const OutputMode *> modes;
  for (const OutputMode &mode : output_modes()) {
    if (mode.option)
      modes.push_back(&mode);
  }
  return modes;
}

unsigned long parse_unsigned(const char *text, unsigned long max, const char *what)
{
  char *end = nullptr;
  errno = 0;
  unsigned long value = std::strtoul(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-' || value > max)
    throw UsageError(std::string(what) + ": '" + text + "' is not a number from 0 to " +
                     std::to_string(max));
  return value;
}

double parse_interval(const char *text)
{
  char *end = nullptr;
  errno = 0;
  double value = std::strtod(text, &end);
  // Below a millisecond a table could not be printed before the next one
  // is due; above a day is a typo.
  if (errno || end == text || *end || !(value >= 0.001) || value > 86400)
    throw UsageError(std::string("interval: '") + text +
                     "' is not a number of seconds from 0.001 to 86400");
  return value;
}

uint32_t parse_netns(const char *text)
{
  if (text[0] >= '0' && text[0] <= '9')
    return static_cast<uint32_t>(parse_unsigned(text, UINT32_MAX, "--netns"));
  if (auto inode = netns_by_name(text))
    return *inode;
  throw UsageError(std::string("--netns: no network namespace named '") + text +
                   "' (see 'ip netns list')");
}

// The rules every mode is held to; a mode's own come from its refuse().
void check_combinations(std::vector<const OutputMode *> chosen, Options &options)
{
  // A mode that prints in another's format takes that one's option as its
  // format (--queues --json), not as a second output.
  if (chosen.size() == 2) {
    for (size_t i = 0; i < 2; i++) {
      const OutputMode *mode = chosen[i], *other = chosen[1 - i];
      if (mode->takes_format && !std::strcmp(mode->takes_format, other->option)) {
        options.format = other->option;
        options.format_prints_every_counter = other->prints_every_counter;
        chosen = {mode};
        break;
      }
    }
  }
  if (chosen.size() > 1) {
    std::vector<std::string> names;
    for (const OutputMode *mode : modes_with_option())
      names.push_back(std::string("--") + mode->option);
    throw UsageError(join(names) + " are different outputs: pick one");
  }
  options.output = chosen.empty() ? &default_output_mode() : chosen.front();
  if (options.once &&
      (options.output->live_only || options.histograms || !options.metrics.empty())) {
    std::vector<std::string> live;
    for (const OutputMode *mode : modes_with_option()) {
      if (mode->live_only)
        live.push_back(std::string("--") + mode->option);
    }
    live.insert(live.end(), {"--hist", "--metrics"});
    throw UsageError("--once prints the listeners as they are now; " + join(live) +
                     " need a live run");
  }
  for (const OutputMode &mode : output_modes()) {
    if (mode.own_option && &mode != options.output &&
        options.mode_options.count(mode.own_option->name))
      throw UsageError(std::string("--") + mode.own_option->name + " is an option of --" +
                       mode.option + ": it needs --" + mode.option);
  }
  if (options.output->refuse) {
    if (std::string complaint = options.output->refuse(options); !complaint.empty())
      throw UsageError(complaint);
  }
}

}  // namespace

std::string usage()
{
  std::string choices, lines, own_options, own_lines;
  for (const OutputMode *mode : modes_with_option()) {
    choices += (choices.empty() ? "--" : " | --") + std::string(mode->option);
    std::string option = mode->option;
    option.resize(std::max<size_t>(option.size() + 2, 13), ' ');
    lines += "      --" + option + mode->help + "\n";
    if (const ModeOption *own = mode->own_option) {
      std::string name = std::string("--") + own->name + " " + own->value_name;
      own_options += " [" + name + "]";
      own_lines += "      " + name + "  " + own->help + "\n";
    }
  }
  return "usage: qwatch [-h] [-v] [" + choices +
         "] [--once] [--hist] [--no-color]\n"
         "              [-i SECONDS] [-p PORT] [--proto tcp|hsp|all] [--netns INODE|NAME]\n"
         "              [--pid PID] [--metrics ADDR:PORT] [--attach fentry|kprobe|auto]\n"
         "              [--stats] [--ready-fd FD] [--ring-buffer KIB]" +
         own_options +
         "\n"
         "              [interval [count]]\n"
         "\n"
         "Show the SYN queue and accept queue of every TCP and HSP listener, live.\n"
         "\n"
         "  -i, --interval S   seconds between tables and resyncs (default 1)\n" +
         lines +
         "      --once         print the listeners as they are now and exit; with an\n"
         "                     interval, count for that long (or until ^C) first\n"
         "      --hist         log2 histograms of handshake time and accept-queue wait\n"
         "      --no-color     no colours in the table (also: NO_COLOR set, TERM=dumb)\n"
         "  -p, --port PORT    only listeners on this local port\n"
         "      --proto P      tcp, hsp or all (default all)\n"
         "      --netns NS     only this network namespace (inode or ip-netns name)\n"
         "      --pid PID      only listeners this process holds, listened on or accepted from\n"
         "      --metrics A:P  serve Prometheus/OpenMetrics text at http://A:P/metrics\n"
         "      --attach MODE  fentry, kprobe or auto (default: fentry where supported)\n"
         "      --stats        at exit, one JSON line on stderr: events, lost, delays\n"
         "      --ready-fd FD  write one byte to FD once the probes are attached\n"
         "      --ring-buffer KIB  size of the event ring buffer (power of two, default 1024)\n" +
         own_lines +
         "  -v, --verbose      show libbpf's messages\n"
         "  -h, --help         this text\n"
         "\n"
         "EXAMPLES:\n"
         "    qwatch                 # live table, refreshed every second\n"
         "    qwatch 5 3             # three tables, five seconds apart\n"
         "    qwatch --events -p 80  # every transition of port 80's listeners, as text\n"
         "    qwatch --hist 10       # tables and latency histograms every 10 seconds\n"
         "    qwatch --json          # every queue transition as a JSON line\n"
         "    qwatch --once --json   # every listener now, one JSON line each\n"
         "    qwatch --once 10       # every listener and what it counted in 10 s\n"
         "    qwatch --metrics :9464 # also export to Prometheus on port 9464\n"
         "    qwatch -p 8080 --netns blue --proto tcp\n"
         "    qwatch --queues -p 80  # under each listener, what its two queues hold\n";
}

Options parse_options(int argc, char **argv)
{
  enum {
    OPT_ONCE = 256,
    OPT_HIST,
    OPT_NO_COLOR,
    OPT_PROTO,
    OPT_NETNS,
    OPT_PID,
    OPT_METRICS,
    OPT_ATTACH,
    OPT_STATS,
    OPT_READY_FD,
    OPT_RING_BUFFER,
    OPT_OUTPUT_MODE,  // the first output mode's; the others' follow
    OPT_MODE_OPTION = OPT_OUTPUT_MODE + 256,  // the first mode's own option; the others' follow
  };
  std::vector<option> long_options = {
      {"help", no_argument, nullptr, 'h'},
      {"verbose", no_argument, nullptr, 'v'},
      {"interval", required_argument, nullptr, 'i'},
      {"port", required_argument, nullptr, 'p'},
      {"once", no_argument, nullptr, OPT_ONCE},
      {"hist", no_argument, nullptr, OPT_HIST},
      {"no-color", no_argument, nullptr, OPT_NO_COLOR},
      {"proto", required_argument, nullptr, OPT_PROTO},
      {"netns", required_argument, nullptr, OPT_NETNS},
      {"pid", required_argument, nullptr, OPT_PID},
      {"metrics", required_argument, nullptr, OPT_METRICS},
      {"attach", required_argument, nullptr, OPT_ATTACH},
      {"stats", no_argument, nullptr, OPT_STATS},
      {"ready-fd", required_argument, nullptr, OPT_READY_FD},
      {"ring-buffer", required_argument, nullptr, OPT_RING_BUFFER},
  };
  const std::vector<const OutputMode *> modes = modes_with_option();
  for (size_t i = 0; i < modes.size(); i++) {
    long_options.push_back(
        {modes[i]->option, no_argument, nullptr, OPT_OUTPUT_MODE + static_cast<int>(i)});
    if (modes[i]->own_option)
      long_options.push_back({modes[i]->own_option->name, required_argument, nullptr,
                              OPT_MODE_OPTION + static_cast<int>(i)});
  }
  long_options.push_back({nullptr, 0, nullptr, 0});

  Options options;
  std::vector<const OutputMode *> chosen;
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":hvi:p:", long_options.data(), nullptr)) != -1) {
    switch (opt) {
    case 'h':
      std::fputs(usage().c_str(), stdout);
      std::exit(0);
    case 'v':
      options.verbose = true;
      break;
    case 'i':
      options.interval_s = parse_interval(optarg);
      options.interval_given = true;
      break;
    case 'p':
      options.tracer.lport = static_cast<uint16_t>(parse_unsigned(optarg, 65535, "--port"));
      break;
    case OPT_ONCE:
      options.once = true;
      break;
    case OPT_HIST:
      options.histograms = true;
      break;
    case OPT_NO_COLOR:
      options.color = false;
      break;
    case OPT_PROTO:
      if (!std::strcmp(optarg, "tcp")) {
        options.tracer.protocol = QWATCH_PROTO_TCP;
        options.want_hsp = false;
      } else if (!std::strcmp(optarg, "hsp")) {
        options.tracer.protocol = QWATCH_PROTO_HSP;
        options.want_tcp = false;
      } else if (std::strcmp(optarg, "all")) {
        throw UsageError(std::string("--proto: '") + optarg + "' is not tcp, hsp or all");
      }
      break;
    case OPT_NETNS:
      options.tracer.netns = parse_netns(optarg);
      break;
    case OPT_PID:
      options.pid = static_cast<uint32_t>(parse_unsigned(optarg, INT32_MAX, "--pid"));
      if (!options.pid || (kill(static_cast<pid_t>(options.pid), 0) != 0 && errno == ESRCH))
        throw UsageError(std::string("--pid: no process ") + optarg);
      break;
    case OPT_METRICS:
      options.metrics = optarg;
      if (!parse_endpoint(options.metrics, options.metrics_address, options.metrics_length))
        throw UsageError(std::string("--metrics: '") + optarg +
                         "' is not ADDR:PORT, [ADDR]:PORT or :PORT");
      break;
    case OPT_ATTACH:
      if (!std::strcmp(optarg, "fentry"))
        options.tracer.attach = AttachMode::kFentry;
      else if (!std::strcmp(optarg, "kprobe"))
        options.tracer.attach = AttachMode::kKprobe;
      else if (!std::strcmp(optarg, "auto"))
        options.tracer.attach = AttachMode::kAuto;
      else
        throw UsageError(std::string("--attach: '") + optarg + "' is not fentry, kprobe or auto");
      break;
    case OPT_STATS:
      options.stats = true;
      break;
    case OPT_READY_FD:
      options.ready_fd = static_cast<int>(parse_unsigned(optarg, INT32_MAX, "--ready-fd"));
      break;
    case OPT_RING_BUFFER: {
      unsigned long kib = parse_unsigned(optarg, 1 << 20, "--ring-buffer");
      if (kib < 4 || (kib & (kib - 1)))
        throw UsageError(std::string("--ring-buffer: '") + optarg +
                         "' KiB is not a power of two of at least 4");
      options.tracer.ring_buffer_bytes = static_cast<uint32_t>(kib * 1024);
      break;
    }
    case ':':
      throw UsageError(std::string("option ") + argv[optind - 1] + " needs a value");
    default:
      if (opt >= OPT_OUTPUT_MODE && opt < OPT_OUTPUT_MODE + static_cast<int>(modes.size())) {
        const OutputMode *mode = modes[static_cast<size_t>(opt - OPT_OUTPUT_MODE)];
        if (std::find(chosen.begin(), chosen.end(), mode) == chosen.end())
          chosen.push_back(mode);
        break;
      }
      if (opt >= OPT_MODE_OPTION && opt < OPT_MODE_OPTION + static_cast<int>(modes.size())) {
        const ModeOption &own = *modes[static_cast<size_t>(opt - OPT_MODE_OPTION)]->own_option;
        if (std::string complaint = own.check(optarg); !complaint.empty())
          throw UsageError(complaint);
        options.mode_options[own.name] = optarg;
        break;
      }
      throw UsageError(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  if (optind < argc) {
    options.interval_s = parse_interval(argv[optind++]);
    options.interval_given = true;
  }
  if (optind < argc)
    options.count = parse_unsigned(argv[optind++], ULONG_MAX, "count");
  if (optind < argc)
    throw UsageError(std::string("unexpected argument '") + argv[optind] + "'");

  check_combinations(chosen, options);
  options.tracer.queue_dump = options.output->dumps_queues;
  // The plain table shows no latency: spare the probes their bookkeeping.
  // --once shows none (it refuses --hist and --metrics).
  options.tracer.track_latency =
      !options.once &&
      (options.output->needs_latency || options.histograms || !options.metrics.empty());
  // Only a live view of transitions needs an event per transition: the
  // others show counters, peaks, latency histograms and snapshots, which
  // the probes keep in maps.
  options.tracer.stream_events = options.output->shows_transitions && !options.once;
  // Expired requests are a counter only JSON and the metrics show; counting
  // them costs a probe on every request's removal, handshakes included.
  options.tracer.count_expiries = options.tracer.stream_events ||
                                  options.output->prints_every_counter ||
                                  options.format_prints_every_counter || !options.metrics.empty();
  const char *term = std::getenv("TERM");
  if (!isatty(STDOUT_FILENO) || std::getenv("NO_COLOR") || (term && !std::strcmp(term, "dumb")))
    options.color = false;
  return options;
}

}  // namespace qwatch
