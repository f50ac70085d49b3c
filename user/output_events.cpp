// SPDX-License-Identifier: GPL-2.0
// --events: one line of text per queue transition, as it happens.
#include <cstdio>

#include "cli.h"
#include "output.h"
#include "output_mode.h"

namespace qwatch {

namespace {

class EventsOutput : public Output {
 public:
  explicit EventsOutput(const OutputContext &context) : context_(context) {}

  void event(const qwatch_event &event, uint32_t) override
  {
    std::puts(
        event_line(event, context_.netns_names, context_.realtime_minus_monotonic_ns).c_str());
    std::fflush(stdout);
  }
  // The histograms of the whole run, after its events.
  void finish(const WatchView &view) override
  {
    if (context_.options.histograms)
      print_histograms(stdout, view.listeners, context_.netns_names);
  }

 private:
  const OutputContext context_;
};

const RegisterOutputMode kEvents{{
    .option = "events",
    .help = "one human-readable line per queue transition",
    .rank = 20,
    .live_only = true,
    .needs_latency = true,
    .refuse = nullptr,
    .create = [](const OutputContext &context) -> std::unique_ptr<Output> {
      return std::make_unique<EventsOutput>(context);
    },
    .shows_transitions = true,
}};

}  // namespace

}  // namespace qwatch
