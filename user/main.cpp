// SPDX-License-Identifier: GPL-2.0
// qwatch: live SYN-queue and accept-queue occupancy of every TCP and HSP
// listener, from BPF probes on the kernel's inet_connection_sock layer.
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "listener_table.h"
#include "metrics.h"
#include "netns.h"
#include "output.h"
#include "tracer.h"

namespace qwatch {
namespace {

volatile std::sig_atomic_t exiting = 0;
bool verbose = false;

// kQuiet prints nothing: the metrics endpoint is the output (a service).
enum class Mode { kTable, kJson, kEvents, kQuiet };

struct Options {
  Mode mode = Mode::kTable;
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

// A command line qwatch cannot act on.
class UsageError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char kUsage[] =
    "usage: qwatch [-h] [-v] [--json | --events | --quiet] [--once] [--hist] [--no-color]\n"
    "              [-i SECONDS] [-p PORT] [--proto tcp|hsp|all] [--netns INODE|NAME]\n"
    "              [--pid PID] [--metrics ADDR:PORT] [--attach fentry|kprobe|auto]\n"
    "              [--stats] [--ready-fd FD] [--ring-buffer KIB]\n"
    "              [interval [count]]\n"
    "\n"
    "Show the SYN queue and accept queue of every TCP and HSP listener, live.\n"
    "\n"
    "  -i, --interval S   seconds between tables and resyncs (default 1)\n"
    "      --json         one JSON object per queue transition, per line\n"
    "      --events       one human-readable line per queue transition\n"
    "      --quiet        print nothing; serve --metrics only (as a service)\n"
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
    "      --ring-buffer KIB  size of the event ring buffer (power of two, default 1024)\n"
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
  if (auto inode = netns_by_name(text))
    return *inode;
  throw UsageError(std::string("--netns: no network namespace named '") + text +
                   "' (see 'ip netns list')");
}

Options parse_options(int argc, char **argv)
{
  enum {
    OPT_JSON = 256,
    OPT_EVENTS,
    OPT_QUIET,
    OPT_ONCE,
    OPT_HIST,
    OPT_NO_COLOR,
    OPT_PROTO,
    OPT_NETNS,
    OPT_PID,
    OPT_METRICS,
    OPT_ATTACH,
    OPT_STATS,
    OPT_READY_FD,
    OPT_RING_BUFFER
  };
  static const option long_options[] = {
      {"help", no_argument, nullptr, 'h'},
      {"verbose", no_argument, nullptr, 'v'},
      {"interval", required_argument, nullptr, 'i'},
      {"port", required_argument, nullptr, 'p'},
      {"json", no_argument, nullptr, OPT_JSON},
      {"events", no_argument, nullptr, OPT_EVENTS},
      {"quiet", no_argument, nullptr, OPT_QUIET},
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
      {nullptr, 0, nullptr, 0},
  };
  Options options;
  bool json = false, events = false, quiet = false;
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
      options.interval_given = true;
      break;
    case 'p':
      options.tracer.lport = static_cast<uint16_t>(parse_unsigned(optarg, 65535, "--port"));
      break;
    case OPT_JSON:
      json = true;
      break;
    case OPT_EVENTS:
      events = true;
      break;
    case OPT_QUIET:
      quiet = true;
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

  if (json + events + quiet > 1)
    throw UsageError("--json, --events and --quiet are different outputs: pick one");
  if (quiet && options.metrics.empty())
    throw UsageError("--quiet prints nothing: it needs --metrics ADDR:PORT to serve");
  if (quiet && options.count)
    throw UsageError("--quiet prints no tables to count: it runs until stopped");
  if (quiet && options.histograms)
    throw UsageError("--hist prints text; with --quiet, the metrics carry the histograms");
  options.mode = json ? Mode::kJson : events ? Mode::kEvents : quiet ? Mode::kQuiet : Mode::kTable;
  if (options.once && (events || options.histograms || !options.metrics.empty()))
    throw UsageError("--once prints the listeners as they are now; --events, --hist and "
                     "--metrics need a live run");
  if (json && options.histograms)
    throw UsageError("--hist prints text; with --json, read latency_ns from the events");
  // The plain table shows no latency: spare the probes their bookkeeping.
  options.tracer.track_latency =
      options.mode != Mode::kTable || options.histograms || !options.metrics.empty();
  const char *term = std::getenv("TERM");
  if (!isatty(STDOUT_FILENO) || std::getenv("NO_COLOR") || (term && !std::strcmp(term, "dumb")))
    options.color = false;
  return options;
}

// Quiet unless -v: a failure is reported once, in one line, by main(),
// with what libbpf warned about it.
int print_libbpf(libbpf_print_level level, const char *format, va_list args)
{
  if (level == LIBBPF_WARN) {
    va_list copy;
    va_copy(copy, args);
    record_libbpf_warning(format, copy);
    va_end(copy);
  }
  return verbose ? std::vfprintf(stderr, format, args) : 0;
}

void on_signal(int)
{
  exiting = 1;
}

uint64_t clock_ns(clockid_t clock)
{
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string watched_protocols(const Options &options, const Tracer &tracer)
{
  std::string hsp = "hsp";
  if (!tracer.hsp_failure().empty())
    hsp += " (probes not attached: listeners only)";
  else if (!tracer.watching_hsp())
    hsp += tracer.hsp_loaded() ? " (loaded after qwatch started: listeners only)"
                               : " (module not loaded: listeners only)";
  std::string how =
      tracer.attach_mode() == AttachMode::kFentry ? "; probes: fentry" : "; probes: kprobes";
  if (!tracer.fentry_failure().empty())
    how += " (fentry failed: " + tracer.fentry_failure() + ")";
  if (!options.want_hsp)
    return "tcp" + how;
  return (options.want_tcp ? "tcp, " + hsp : hsp) + how;
}

// Handshakes, accepts and syncookies sent per second of each listener over
// the last interval.
class RateMeter {
 public:
  std::vector<TableRow> rows(const std::vector<const ListenerState *> &listeners)
  {
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - last_).count();
    auto rate = [elapsed](uint64_t now_count, uint64_t before) {
      return elapsed > 0 && now_count >= before ? (now_count - before) / elapsed : 0;
    };
    std::vector<TableRow> rows;
    std::map<uint64_t, qwatch_counters> counts;
    for (const ListenerState *state : listeners) {
      const qwatch_counters &before = previous_[state->latest.listener];
      const qwatch_counters &c = state->counters;
      counts[state->latest.listener] = c;
      rows.push_back({state, rate(c.handshakes, before.handshakes),
                      rate(c.accepts, before.accepts),
                      rate(c.syncookies_sent, before.syncookies_sent)});
    }
    previous_ = std::move(counts);
    last_ = now;
    return rows;
  }

 private:
  std::map<uint64_t, qwatch_counters> previous_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// How long events take from the probe to the reader, for --stats.
class DelayMeter {
 public:
  void record(uint64_t event_ts_ns)
  {
    events_++;
    if (samples_ns_.size() < kMaxSamples)
      samples_ns_.push_back(clock_ns(CLOCK_MONOTONIC) - event_ts_ns);
  }

  std::string json(uint64_t lost, uint64_t uncounted, const char *attach)
  {
    std::sort(samples_ns_.begin(), samples_ns_.end());
    auto percentile = [this](double p) {
      return samples_ns_.empty() ? 0
                                 : samples_ns_[static_cast<size_t>(p * (samples_ns_.size() - 1))];
    };
    char line[256];
    std::snprintf(line, sizeof(line),
                  "{\"events\":%llu,\"lost\":%llu,\"uncounted\":%llu,\"attach\":\"%s\","
                  "\"delay_p50_ns\":%llu,\"delay_p99_ns\":%llu}",
                  static_cast<unsigned long long>(events_), static_cast<unsigned long long>(lost),
                  static_cast<unsigned long long>(uncounted), attach, static_cast<unsigned long long>(percentile(0.5)),
                  static_cast<unsigned long long>(percentile(0.99)));
    return line;
  }

 private:
  static constexpr size_t kMaxSamples = 1 << 22;
  uint64_t events_ = 0;
  std::vector<uint64_t> samples_ns_;
};

// How often queued events are read without a wakeup, and the hsp module and
// the lost-event counter are checked.
constexpr std::chrono::milliseconds kDrainEvery{10};
constexpr std::chrono::milliseconds kCheckEvery{100};

class Watch {
 public:
  explicit Watch(const Options &options)
      : options_(options),
        realtime_minus_monotonic_ns_(static_cast<int64_t>(clock_ns(CLOCK_REALTIME)) -
                                     static_cast<int64_t>(clock_ns(CLOCK_MONOTONIC))),
        tracer_(options.tracer, [this](const qwatch_event &event) { on_event(event); })
  {
    if (verbose && !tracer_.fentry_failure().empty())
      std::fprintf(stderr, "qwatch: fentry failed, using kprobes: %s\n",
                   tracer_.fentry_failure().c_str());
    report_hsp_failure();
    netns_names_.refresh();
    if (!options.metrics.empty())
      metrics_.emplace(options.metrics, options.metrics_address, options.metrics_length);
  }

  int run();

 private:
  bool selected(const ListenerState *state) const
  {
    return state && (!options_.pid || state->pids.contains(options_.pid));
  }

  std::vector<const ListenerState *> shown_listeners() const
  {
    std::vector<const ListenerState *> shown;
    for (const ListenerState *state : table_.by_fullness()) {
      if (selected(state))
        shown.push_back(state);
    }
    return shown;
  }

  void on_event(qwatch_event event)
  {
    if (options_.stats)
      delays_.record(event.ts_ns);
    // Only --pid needs the listener looked up (before: a close removes it).
    bool was_selected = !options_.pid || selected(table_.find(event.listener));
    uint32_t id = table_.apply_event(event);
    // --once prints listeners only: transitions drained while the snapshot
    // is taken update them but are not output.
    if (options_.once || !id || !(was_selected || selected(table_.find(event.listener))))
      return;
    if (options_.mode == Mode::kJson)
      std::puts(event_json(event, id).c_str());
    else if (options_.mode == Mode::kEvents)
      std::puts(event_line(event, netns_names_, realtime_minus_monotonic_ns_).c_str());
    else
      return;
    std::fflush(stdout);
  }

  // The kernel's values are the truth even when events were lost.
  void resync()
  {
    CountersByListener before = tracer_.all_counters();
    std::vector<qwatch_event> snapshot;
    if (int err = tracer_.snapshot(snapshot); err < 0)
      throw SetupError(-err, "listing the listeners");
    table_.begin_resync(snapshot);
    tracer_.drain();
    table_.finish_resync(before, tracer_.all_counters());
    snapshots_++;
    refresh_counters();
    netns_names_.refresh();
  }

  void refresh_counters()
  {
    table_.refresh_counters([this](uint64_t listener) { return tracer_.counters(listener); });
  }

  void print_listener_table()
  {
    if (isatty(STDOUT_FILENO))
      std::fputs("\033[H\033[2J", stdout);
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%H:%M:%S", std::localtime(&now));
    std::printf("qwatch %s\n", stamp);
    print_table(stdout, rates_.rows(shown_listeners()),
                {.color = options_.color,
                 .lost_events = tracer_.lost_events(),
                 .protocols = watched_protocols(options_, tracer_),
                 .netns_names = netns_names_});
    if (options_.histograms)
      print_histograms(stdout, shown_listeners(), netns_names_);
    if (!isatty(STDOUT_FILENO))
      std::putchar('\n');
    std::fflush(stdout);
  }

  void print_once();

  // Once per failure, on stderr: the footer only says that HSP is listed
  // without its probes.
  void report_hsp_failure()
  {
    if (tracer_.hsp_failure() != hsp_failure_reported_ && !tracer_.hsp_failure().empty())
      std::fprintf(stderr, "qwatch: %s; HSP listeners are shown without them\n",
                   tracer_.hsp_failure().c_str());
    hsp_failure_reported_ = tracer_.hsp_failure();
  }

  // Lines about qwatch itself; --once prints listeners only.
  void report_changes()
  {
    report_hsp_failure();
    bool json_lines = options_.mode == Mode::kJson && !options_.once;
    if (tracer_.follow_hsp_module() && json_lines) {
      std::puts(
          hsp_module_json(clock_ns(CLOCK_MONOTONIC), tracer_.hsp_loaded(), tracer_.watching_hsp())
              .c_str());
      std::fflush(stdout);
    }
    uint64_t lost = tracer_.lost_events();
    if (lost != lost_reported_ && json_lines) {
      std::puts(lost_events_json(clock_ns(CLOCK_MONOTONIC), lost).c_str());
      std::fflush(stdout);
    }
    lost_reported_ = lost;
  }

  const Options &options_;
  int64_t realtime_minus_monotonic_ns_;
  ListenerTable table_;
  NetnsNames netns_names_;
  RateMeter rates_;
  uint64_t lost_reported_ = 0;
  std::string hsp_failure_reported_;
  uint64_t snapshots_ = 0;
  DelayMeter delays_;
  Tracer tracer_;  // after what its callback uses
  std::optional<MetricsServer> metrics_;
};

void Watch::print_once()
{
  if (options_.mode == Mode::kJson) {
    for (const ListenerState *listener : shown_listeners())
      std::puts(listener_json(*listener).c_str());
    std::fflush(stdout);
  } else {
    print_listener_table();
  }
}

int Watch::run()
{
  // Attached before the snapshot, so no transition falls between the two.
  resync();
  if (options_.once && !options_.interval_given) {
    print_once();
    return 0;
  }
  if (options_.mode == Mode::kJson && !options_.once) {
    for (const ListenerState *listener : shown_listeners())
      std::puts(event_json(listener->latest, listener->id).c_str());
    std::fflush(stdout);
  }
  if (options_.ready_fd >= 0) {
    char ready = '\n';
    if (write(options_.ready_fd, &ready, 1) != 1 || close(options_.ready_fd) != 0)
      throw SetupError(errno, "writing to --ready-fd");
  }

  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options_.interval_s));
  auto next_resync = std::chrono::steady_clock::now() + interval;
  unsigned long tables = 0;
  auto next_check = std::chrono::steady_clock::now();
  auto render_metrics_now = [this](bool openmetrics) {
    refresh_counters();
    return render_metrics(shown_listeners(),
                          {.lost_events = tracer_.lost_events(),
                           .uncounted = tracer_.uncounted(),
                           .snapshots = snapshots_},
                          openmetrics);
  };
  std::vector<pollfd> fds;
  while (!exiting) {
    fds.assign(1, {.fd = tracer_.event_fd(), .events = POLLIN, .revents = 0});
    if (metrics_)
      metrics_->append_poll_fds(fds);
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_resync - std::chrono::steady_clock::now());
    // The BPF side wakes us only for a batch; events trickling in wait
    // at most kDrainEvery.
    int timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, kDrainEvery.count()));
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      std::fprintf(stderr, "qwatch: waiting for events: %s\n", std::strerror(errno));
      return 1;
    }
    if (int err = tracer_.drain(); err < 0 && err != -EINTR) {
      std::fprintf(stderr, "qwatch: reading events: %s\n", std::strerror(-err));
      return 1;
    }
    if (metrics_)
      metrics_->serve(fds, render_metrics_now);
    if (auto now = std::chrono::steady_clock::now(); now >= next_check) {
      report_changes();
      next_check = now + kCheckEvery;
    }
    if (std::chrono::steady_clock::now() < next_resync)
      continue;
    if (options_.once)
      break;
    next_resync += interval;
    resync();
    if (options_.mode != Mode::kTable)
      continue;
    print_listener_table();
    if (options_.count && ++tables >= options_.count)
      break;
  }
  // Counted over the interval, or until interrupted.
  if (options_.once) {
    resync();
    print_once();
  }
  if (options_.mode == Mode::kEvents && options_.histograms)
    print_histograms(stdout, shown_listeners(), netns_names_);
  if (options_.stats)
    std::fprintf(stderr, "%s\n",
                 delays_
                     .json(tracer_.lost_events(), tracer_.uncounted(),
                           tracer_.attach_mode() == AttachMode::kFentry ? "fentry" : "kprobe")
                     .c_str());
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
    Watch watch(options);
    return watch.run();
  } catch (const SetupError &e) {
    // EPERM is the kernel refusing an unprivileged caller; EACCES from a
    // program load is the verifier's verdict, named in the message.
    const char *hint = "";
    if (e.code().value() == EPERM && geteuid() != 0)
      hint = " (qwatch needs root: CAP_BPF and CAP_PERFMON)";
    std::fprintf(stderr, "qwatch: %s%s\n", e.what(), hint);
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "qwatch: %s\n", e.what());
    return 1;
  }
}
