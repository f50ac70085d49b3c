// SPDX-License-Identifier: GPL-2.0
// --json: one JSON object per line, for programs (the schema is
// Documentation/qwatch.schema.json).
#include <cstdio>

#include "cli.h"
#include "output.h"
#include "output_mode.h"

namespace qwatch {

namespace {

void print_line(const std::string &line)
{
  std::puts(line.c_str());
  std::fflush(stdout);
}

class JsonOutput : public Output {
 public:
  // Every listener as the first snapshot has it: what the events change.
  void start(const WatchView &view) override
  {
    for (const ListenerState *listener : view.listeners)
      std::puts(event_json(listener->latest, listener->id).c_str());
    std::fflush(stdout);
  }
  void event(const qwatch_event &event, uint32_t listener_id) override
  {
    print_line(event_json(event, listener_id));
  }
  void lost_events(uint64_t ts_ns, uint64_t total) override
  {
    print_line(lost_events_json(ts_ns, total));
  }
  void hsp_module(uint64_t ts_ns, bool loaded, bool watched) override
  {
    print_line(hsp_module_json(ts_ns, loaded, watched));
  }
  void listeners(const WatchView &view) override
  {
    for (const ListenerState *listener : view.listeners)
      std::puts(listener_json(*listener).c_str());
    std::fflush(stdout);
  }
};

std::string refuse_json(const Options &options)
{
  if (options.histograms)
    return "--hist prints text; with --json, read latency_ns from the events";
  return "";
}

const RegisterOutputMode kJson{{
    .option = "json",
    .help = "one JSON object per queue transition, per line",
    .rank = 10,
    .live_only = false,
    .needs_latency = true,
    .refuse = refuse_json,
    .create = [](const OutputContext &) -> std::unique_ptr<Output> {
      return std::make_unique<JsonOutput>();
    },
    .shows_transitions = true,
    .prints_every_counter = true,
}};

}  // namespace

}  // namespace qwatch
