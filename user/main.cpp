// SPDX-License-Identifier: GPL-2.0
// qwatch: live SYN-queue and accept-queue occupancy of every TCP and HSP
// listener, from BPF probes on the kernel's inet_connection_sock layer.
#include <getopt.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>

#include "listener_table.h"
#include "output.h"
#include "tracer.h"

namespace qwatch {
namespace {

volatile std::sig_atomic_t exiting = 0;
bool verbose = false;

struct Options {
  bool json = false;
  bool once = false;
  double interval_s = 1.0;
  unsigned long count = 0;  // tables to print; 0: until interrupted
  TracerSettings tracer;
  bool want_tcp = true;
  bool want_hsp = true;
  int ready_fd = -1;
};

// A command line qwatch cannot act on.
class UsageError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char kUsage[] =
    "usage: qwatch [-h] [-v] [--json] [--once] [-i SECONDS] [-p PORT]\n"
    "              [--proto tcp|hsp|all] [--netns INODE|NAME] [--ready-fd FD]\n"
    "              [--ring-buffer KIB]\n"
    "              [interval [count]]\n"
    "\n"
    "Show the SYN queue and accept queue of every TCP and HSP listener, live.\n"
    "\n"
    "  -i, --interval S   seconds between tables (default 1)\n"
    "      --json         one JSON object per queue transition, per line\n"
    "      --once         print the listeners as they are now and exit\n"
    "  -p, --port PORT    only listeners on this local port\n"
    "      --proto P      tcp, hsp or all (default all)\n"
    "      --netns NS     only this network namespace (inode or ip-netns name)\n"
    "      --ready-fd FD  write one byte to FD once the probes are attached\n"
    "      --ring-buffer KIB  size of the event ring buffer (power of two, default 1024)\n"
    "  -v, --verbose      show libbpf's messages\n"
    "  -h, --help         this text\n"
    "\n"
    "EXAMPLES:\n"
    "    qwatch                 # live table, refreshed every second\n"
    "    qwatch 5 3             # three tables, five seconds apart\n"
    "    qwatch --json          # every queue transition as a JSON line\n"
    "    qwatch --once --json   # every listener now, one JSON line each\n"
    "    qwatch -p 8080 --netns blue --proto tcp\n";

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
  if (errno || end == text || *end || !(value > 0) || value > 86400)
    throw UsageError(std::string("interval: '") + text + "' is not a number of seconds > 0");
  return value;
}

uint32_t parse_netns(const char *text)
{
  if (text[0] >= '0' && text[0] <= '9')
    return static_cast<uint32_t>(parse_unsigned(text, UINT32_MAX, "--netns"));
  std::string path = std::string("/run/netns/") + text;
  struct stat st;
  if (std::strchr(text, '/') || stat(path.c_str(), &st) != 0)
    throw UsageError(std::string("--netns: no network namespace named '") + text +
                     "' (see 'ip netns list')");
  return static_cast<uint32_t>(st.st_ino);
}

Options parse_options(int argc, char **argv)
{
  enum { OPT_JSON = 256, OPT_ONCE, OPT_PROTO, OPT_NETNS, OPT_READY_FD, OPT_RING_BUFFER };
  static const option long_options[] = {
      {"help", no_argument, nullptr, 'h'},
      {"verbose", no_argument, nullptr, 'v'},
      {"interval", required_argument, nullptr, 'i'},
      {"port", required_argument, nullptr, 'p'},
      {"json", no_argument, nullptr, OPT_JSON},
      {"once", no_argument, nullptr, OPT_ONCE},
      {"proto", required_argument, nullptr, OPT_PROTO},
      {"netns", required_argument, nullptr, OPT_NETNS},
      {"ready-fd", required_argument, nullptr, OPT_READY_FD},
      {"ring-buffer", required_argument, nullptr, OPT_RING_BUFFER},
      {nullptr, 0, nullptr, 0},
  };
  Options options;
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":hvi:p:", long_options, nullptr)) != -1) {
    switch (opt) {
    case 'h':
      std::fputs(kUsage, stdout);
      std::exit(0);
    case 'v':
      verbose = true;
      break;
    case 'i':
      options.interval_s = parse_interval(optarg);
      break;
    case 'p':
      options.tracer.lport = static_cast<uint16_t>(parse_unsigned(optarg, 65535, "--port"));
      break;
    case OPT_JSON:
      options.json = true;
      break;
    case OPT_ONCE:
      options.once = true;
      break;
    case OPT_PROTO:
      if (!std::strcmp(optarg, "tcp")) {
        options.tracer.protocol = IPPROTO_TCP;
        options.want_hsp = false;
      } else if (!std::strcmp(optarg, "hsp")) {
        options.tracer.protocol = QWATCH_IPPROTO_HSP;
        options.want_tcp = false;
      } else if (std::strcmp(optarg, "all")) {
        throw UsageError(std::string("--proto: '") + optarg + "' is not tcp, hsp or all");
      }
      break;
    case OPT_NETNS:
      options.tracer.netns = parse_netns(optarg);
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
      throw UsageError(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  if (optind < argc)
    options.interval_s = parse_interval(argv[optind++]);
  if (optind < argc)
    options.count = parse_unsigned(argv[optind++], ULONG_MAX, "count");
  if (optind < argc)
    throw UsageError(std::string("unexpected argument '") + argv[optind] + "'");
  return options;
}

// Quiet unless -v: a failure is reported once, in one line, by main().
int print_libbpf(libbpf_print_level, const char *format, va_list args)
{
  return verbose ? std::vfprintf(stderr, format, args) : 0;
}

void on_signal(int)
{
  exiting = 1;
}

uint64_t monotonic_ns()
{
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string watched_protocols(const Options &options, const Tracer &tracer)
{
  std::string hsp = "hsp";
  if (!tracer.watching_hsp())
    hsp += tracer.hsp_loaded() ? " (loaded after qwatch started: listeners only)"
                               : " (module not loaded: listeners only)";
  if (!options.want_hsp)
    return "tcp";
  return options.want_tcp ? "tcp, " + hsp : hsp;
}

void print_listener_table(const ListenerTable &table, const std::string &protocols, uint64_t lost)
{
  bool terminal = isatty(STDOUT_FILENO);
  if (terminal)
    std::fputs("\033[H\033[2J", stdout);
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", std::localtime(&now));
  std::printf("qwatch %s\n", stamp);
  print_table(stdout, table.by_fullness(), {.lost_events = lost, .protocols = protocols.c_str()});
  if (!terminal)
    std::putchar('\n');
  std::fflush(stdout);
}

int run(const Options &options)
{
  ListenerTable table;
  auto on_event = [&](qwatch_event event) {
    uint32_t id = table.apply_event(event);
    if (event.type == QWATCH_CLOSE && !id)
      return;  // not a listener this run watched (or filtered out)
    if (options.json) {
      std::puts(event_json(event, id).c_str());
      std::fflush(stdout);
    }
  };
  Tracer tracer(options.tracer, on_event);

  // Attached before the snapshot, so no transition falls between the two.
  std::vector<qwatch_event> listeners;
  if (int err = tracer.snapshot(listeners); err < 0)
    throw SetupError(-err, "listing the listeners");
  table.apply_snapshot(listeners);

  if (options.once) {
    if (options.json) {
      for (const ListenerState *listener : table.by_fullness())
        std::puts(listener_json(*listener).c_str());
    } else {
      print_listener_table(table, watched_protocols(options, tracer), tracer.lost_events());
    }
    return 0;
  }
  if (options.json) {
    for (const qwatch_event &listener : listeners)
      on_event(listener);
  }
  if (options.ready_fd >= 0) {
    char ready = '\n';
    if (write(options.ready_fd, &ready, 1) != 1 || close(options.ready_fd) != 0)
      throw SetupError(errno, "writing to --ready-fd");
  }

  const auto interval = std::chrono::duration<double>(options.interval_s);
  auto next_table = std::chrono::steady_clock::now() + interval;
  uint64_t lost_reported = 0;
  unsigned long tables = 0;
  while (!exiting) {
    int err = tracer.poll(100);
    if (err < 0 && err != -EINTR) {
      std::fprintf(stderr, "qwatch: reading events: %s\n", std::strerror(-err));
      return 1;
    }
    uint64_t lost = tracer.lost_events();
    if (tracer.follow_hsp_module() && options.json) {
      std::puts(
          hsp_module_json(monotonic_ns(), tracer.hsp_loaded(), tracer.watching_hsp()).c_str());
      std::fflush(stdout);
    }
    if (options.json) {
      if (lost != lost_reported) {
        std::puts(lost_events_json(monotonic_ns(), lost).c_str());
        std::fflush(stdout);
        lost_reported = lost;
      }
      continue;
    }
    if (std::chrono::steady_clock::now() < next_table)
      continue;
    next_table += std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
    // Resynchronise: the kernel's values are the truth even if events were lost.
    if (tracer.snapshot(listeners) == 0)
      table.apply_snapshot(listeners);
    print_listener_table(table, watched_protocols(options, tracer), lost);
    if (options.count && ++tables >= options.count)
      break;
  }
  return 0;
}

}  // namespace
}  // namespace qwatch

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

  libbpf_set_print(print_libbpf);
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  try {
    return run(options);
  } catch (const SetupError &e) {
    const char *hint = "";
    if (e.code().value() == EPERM || e.code().value() == EACCES)
      hint = " (qwatch needs root: CAP_BPF and CAP_PERFMON)";
    std::fprintf(stderr, "qwatch: %s%s\n", e.what(), hint);
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "qwatch: %s\n", e.what());
    return 1;
  }
}
