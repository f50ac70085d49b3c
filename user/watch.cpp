// SPDX-License-Identifier: GPL-2.0
#include "watch.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "clock.h"
#include "errors.h"
#include "output.h"

namespace qwatch {

namespace {

volatile std::sig_atomic_t exiting = 0;

void on_signal(int)
{
  exiting = 1;
}

// How often queued events are read without a wakeup, and, while events
// stream, the hsp module and the lost-event counter are checked (without
// events, once per interval: nothing shows them sooner, and each check of
// the module costs two path lookups).
constexpr std::chrono::milliseconds kDrainEvery{10};
constexpr std::chrono::milliseconds kCheckEvery{100};

}  // namespace

void Watch::stop_on_signals()
{
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

Watch::Watch(const Options &options)
    : options_(options),
      realtime_minus_monotonic_ns_(static_cast<int64_t>(clock_ns(CLOCK_REALTIME)) -
                                   static_cast<int64_t>(clock_ns(CLOCK_MONOTONIC))),
      output_(
          options.output->create({.options = options,
                                  .netns_names = netns_names_,
                                  .realtime_minus_monotonic_ns = realtime_minus_monotonic_ns_})),
      tracer_(options.tracer, [this](const qwatch_event &event) { on_event(event); })
{
  if (options.verbose && !tracer_.fentry_failure().empty())
    std::fprintf(stderr, "qwatch: fentry failed, using kprobes: %s\n",
                 tracer_.fentry_failure().c_str());
  report_hsp_failure();
  netns_names_.refresh();
  if (!options.metrics.empty())
    metrics_.emplace(options.metrics, options.metrics_address, options.metrics_length);
}

bool Watch::selected(const ListenerState *state) const
{
  return state && (!options_.pid || state->pids.contains(options_.pid));
}

WatchView Watch::view() const
{
  WatchView view{.listeners = {},
                 .status = {.lost_events = lost_events_,
                            .tcp = options_.want_tcp,
                            .hsp = options_.want_hsp,
                            .hsp_state = tracer_.hsp_state(),
                            .hsp_reason = tracer_.hsp_reason(),
                            .attach = tracer_.attach_mode(),
                            .fentry_failure = tracer_.fentry_failure()},
                 .queues = options_.tracer.queue_dump ? &queues_ : nullptr};
  for (const ListenerState *state : table_.by_fullness()) {
    if (selected(state))
      view.listeners.push_back(state);
  }
  return view;
}

void Watch::on_event(qwatch_event event)
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
  output_->event(event, id);
}

bool Watch::fail(const char *what, int err)
{
  if (!failure_)
    failure_ = Failure{what, err};
  return false;
}

// The kernel's values are the truth even when events were lost.
bool Watch::resync()
{
  uint64_t started_ns = clock_ns(CLOCK_MONOTONIC);
  CountersByListener after;
  std::vector<qwatch_event> snapshot;
  if (int err = tracer_.snapshot(snapshot, options_.tracer.queue_dump ? &queues_ : nullptr);
      err < 0)
    return fail("listing the listeners", err);
  table_.begin_resync(snapshot);
  if (int err = tracer_.drain(); err < 0 && err != -EINTR)
    return fail("reading events", err);
  if (int err = tracer_.counters(table_.listeners(), after); err < 0)
    return fail("reading the counters", err);
  table_.finish_resync(after, tracer_.accepts_probed());
  forget_process_names();
  snapshots_++;
  netns_names_.refresh();
  if (int err = tracer_.lost_events(lost_events_); err < 0)
    return fail("reading the lost-event counter", err);
  if (!refresh_counters(after))
    return false;
  if (options_.stats)
    delays_.record_resync(clock_ns(CLOCK_MONOTONIC) - started_ns);
  return true;
}

bool Watch::refresh_counters()
{
  CountersByListener counters;
  if (int err = tracer_.counters(table_.listeners(), counters); err < 0)
    return fail("reading the counters", err);
  return refresh_counters(counters);
}

bool Watch::refresh_counters(const CountersByListener &counters)
{
  std::unordered_map<uint64_t, qwatch_latencies> latencies;
  std::function<int(uint64_t, qwatch_latencies &)> read_latencies;
  if (options_.tracer.track_latency) {
    if (int err = tracer_.latencies(table_.listeners(), latencies); err < 0)
      return fail("reading the latency histograms", err);
    read_latencies = [&latencies](uint64_t listener, qwatch_latencies &histograms) {
      auto it = latencies.find(listener);
      if (it == latencies.end())
        return -ENOENT;
      histograms = it->second;
      return 0;
    };
  }
  int err = table_.refresh_counters(
      [&counters](uint64_t listener, qwatch_counters &found) {
        auto it = counters.find(listener);
        if (it == counters.end())
          return -ENOENT;
        found = it->second;
        return 0;
      },
      read_latencies);
  return err < 0 ? fail("reading the counters", err) : true;
}

// Once per failure, on stderr: the footer only says that HSP is not
// (fully) watched.
void Watch::report_hsp_failure()
{
  if (tracer_.hsp_failure() != hsp_failure_reported_ && !tracer_.hsp_failure().empty())
    std::fprintf(stderr, "qwatch: %s\n", tracer_.hsp_failure().c_str());
  hsp_failure_reported_ = tracer_.hsp_failure();
}

// What changed about qwatch itself; --once prints listeners only.
bool Watch::check_reader()
{
  ModuleChange change = tracer_.follow_hsp_module();
  report_hsp_failure();
  if (change != ModuleChange::kNone && !options_.once) {
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    // Unloaded and loaded again since the last check: both are news.
    if (change == ModuleChange::kReloaded)
      output_->hsp_module(now, false, false);
    output_->hsp_module(now, tracer_.hsp_state() != HspState::kNotLoaded,
                        tracer_.hsp_state() == HspState::kWatched);
  }
  if (int err = tracer_.lost_events(lost_events_); err < 0)
    return fail("reading the lost-event counter", err);
  if (lost_events_ != lost_reported_ && !options_.once)
    output_->lost_events(clock_ns(CLOCK_MONOTONIC), lost_events_);
  lost_reported_ = lost_events_;
  return true;
}

std::optional<std::string> Watch::render_metrics_now(bool openmetrics)
{
  uint64_t uncounted = 0;
  if (!refresh_counters())
    return std::nullopt;
  if (int err = tracer_.lost_events(lost_events_); err < 0) {
    fail("reading the lost-event counter", err);
    return std::nullopt;
  }
  if (int err = tracer_.uncounted(uncounted); err < 0) {
    fail("reading the uncounted counter", err);
    return std::nullopt;
  }
  return render_metrics(
      view().listeners,
      {.lost_events = lost_events_, .uncounted = uncounted, .snapshots = snapshots_}, openmetrics);
}

void Watch::signal_ready()
{
  if (options_.ready_fd < 0)
    return;
  char ready = '\n';
  if (write(options_.ready_fd, &ready, 1) != 1 || close(options_.ready_fd) != 0)
    throw SetupError(errno, "writing to --ready-fd");
}

int Watch::run()
{
  // Attached before the snapshot, so no transition falls between the two.
  if (!resync())
    return report_failure(failure_->what, failure_->err);
  if (options_.once && !options_.interval_given) {
    output_->listeners(view());
    return 0;
  }
  if (!options_.once)
    output_->start(view());
  signal_ready();

  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options_.interval_s));
  auto next_resync = std::chrono::steady_clock::now() + interval;
  auto next_check = std::chrono::steady_clock::now();
  const auto check_every = options_.tracer.stream_events
                               ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     kCheckEvery)
                               : interval;
  auto render = [this](bool openmetrics) { return render_metrics_now(openmetrics); };
  std::vector<pollfd> fds;
  while (!exiting) {
    fds.assign(1, {.fd = tracer_.event_fd(), .events = POLLIN, .revents = 0});
    if (metrics_)
      metrics_->append_poll_fds(fds);
    // Rounded up: a poll() that returns before the resync is due spins.
    // None when it is overdue (a resync longer than the interval): a
    // negative timeout would wait for an event that may never come.
    int64_t due_in_ms = std::max<int64_t>(
        0, std::chrono::ceil<std::chrono::milliseconds>(next_resync -
                                                        std::chrono::steady_clock::now())
               .count());
    // The BPF side wakes us only for a batch; events trickling in wait
    // at most kDrainEvery. Without events, only the resync is due.
    int timeout_ms = static_cast<int>(
        options_.tracer.stream_events ? std::min<int64_t>(due_in_ms, kDrainEvery.count())
                                      : due_in_ms);
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      fail("waiting for events", errno);
      break;
    }
    if (int err = tracer_.drain(); err < 0 && err != -EINTR) {
      fail("reading events", err);
      break;
    }
    if (metrics_)
      metrics_->serve(fds, render);
    if (failure_)
      break;
    if (auto now = std::chrono::steady_clock::now(); now >= next_check) {
      if (!check_reader())
        break;
      next_check = now + check_every;
    }
    if (std::chrono::steady_clock::now() < next_resync)
      continue;
    if (options_.once)
      break;
    // Due times stay on the interval's grid; one a long resync overran is
    // skipped rather than caught up with back to back.
    auto now = std::chrono::steady_clock::now();
    next_resync += (now - next_resync) / interval * interval + interval;
    if (!resync() || !output_->tick(view()))
      break;
  }
  if (failure_)
    return report_failure(failure_->what, failure_->err);

  if (options_.once) {
    // Counted over the interval, or until interrupted.
    if (!resync())
      return report_failure(failure_->what, failure_->err);
    output_->listeners(view());
  } else {
    // The latency histograms are the probes': read them to the end.
    if (!refresh_counters())
      return report_failure(failure_->what, failure_->err);
    output_->finish(view());
  }
  if (options_.stats) {
    uint64_t uncounted = 0;
    if (int err = tracer_.lost_events(lost_events_); err < 0)
      return report_failure("reading the lost-event counter", err);
    if (int err = tracer_.uncounted(uncounted); err < 0)
      return report_failure("reading the uncounted counter", err);
    std::fprintf(stderr, "%s\n",
                 delays_
                     .json(lost_events_, uncounted,
                           tracer_.attach_mode() == AttachMode::kFentry ? "fentry" : "kprobe")
                     .c_str());
  }
  return 0;
}

}  // namespace qwatch
