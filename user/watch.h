// SPDX-License-Identifier: GPL-2.0
// The watch: the tracer's events, resyncs and checks in one loop, shown by
// the chosen output mode and served to --metrics.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "delay_meter.h"
#include "listener_table.h"
#include "metrics.h"
#include "netns.h"
#include "output_mode.h"
#include "tracer.h"

namespace qwatch {

class Watch {
 public:
  // Loads and attaches the BPF side; throws SetupError when it cannot.
  explicit Watch(const Options &options);

  // Until the output is done, --once has its listeners, or a signal of
  // stop_on_signals() comes; returns the exit status.
  int run();

  // SIGINT and SIGTERM end run() as the output's natural end would.
  static void stop_on_signals();

 private:
  // A failure inside the loop (see errors.h): what failed, with its errno.
  struct Failure {
    const char *what;
    int err;
  };

  bool selected(const ListenerState *state) const;
  WatchView view() const;
  void on_event(qwatch_event event);
  void signal_ready();
  std::optional<std::string> render_metrics_now(bool openmetrics);

  // These return false after fail() when a read failed.
  bool resync();
  bool refresh_counters();
  // From counters already read (a resync's).
  bool refresh_counters(const CountersByListener &counters);
  bool check_reader();
  bool fail(const char *what, int err);

  void report_hsp_failure();

  const Options &options_;
  int64_t realtime_minus_monotonic_ns_;
  ListenerTable table_;
  NetnsNames netns_names_;
  std::unique_ptr<Output> output_;
  uint64_t lost_events_ = 0;  // as last read
  uint64_t lost_reported_ = 0;
  std::string hsp_failure_reported_;
  uint64_t snapshots_ = 0;
  QueueDump queues_;  // --queues: as of the last resync
  DelayMeter delays_;
  std::optional<Failure> failure_;  // the first one: it ends the loop
  Tracer tracer_;                   // after what its callback uses
  std::optional<MetricsServer> metrics_;
};

}  // namespace qwatch
