// SPDX-License-Identifier: GPL-2.0
// --queues: the table, and under each listener's row what its two queues
// hold (its SYN queue's request socks, its accept queue's children), read
// from the kernel at each interval; with --once --json, the listener
// objects with both lists.
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli.h"
#include "output.h"
#include "output_mode.h"
#include "table_screen.h"

namespace qwatch {

namespace {

constexpr unsigned long kQueueRowsMax = 1000000;

// --queue-rows N: a number from 0 to kQueueRowsMax.
std::string check_queue_rows(const char *value)
{
  unsigned long rows = 0;
  const char *end = value + std::strlen(value);
  auto [at, error] = std::from_chars(value, end, rows);
  if (error != std::errc() || at != end || at == value || rows > kQueueRowsMax)
    return std::string("--queue-rows: '") + value + "' is not a number from 0 to " +
           std::to_string(kQueueRowsMax);
  return "";
}

const ModeOption kQueueRows{
    .name = "queue-rows",
    .value_name = "N",
    .help = "--queues: entries shown per queue (default 8)",
    .check = check_queue_rows,
};

// Entries shown per list: --queue-rows, checked by check_queue_rows().
unsigned long queue_rows(const Options &options)
{
  auto given = options.mode_options.find(kQueueRows.name);
  return given == options.mode_options.end() ? 8 : std::stoul(given->second);
}

const ListenerQueues *queues_of(const WatchView &view, const ListenerState &listener)
{
  if (!view.queues)
    return nullptr;
  // A listener the dump did not reach (no process holds it now) has no
  // entry; one no snapshot ever found has no cookie either.
  const auto &dumped = view.queues->listeners;
  auto it = listener.cookie ? dumped.find(listener.cookie) : dumped.end();
  return it == dumped.end() ? nullptr : &it->second;
}

class QueuesOutput : public Output {
 public:
  explicit QueuesOutput(const OutputContext &context) : context_(context), screen_(context) {}

  bool tick(const WatchView &view) override
  {
    print(view);
    return !context_.options.count || ++screens_ < context_.options.count;
  }
  void listeners(const WatchView &view) override
  {
    if (context_.options.format != "json") {
      print(view);
      return;
    }
    for (const ListenerState *listener : view.listeners)
      std::puts(listener_json(*listener, queues_of(view, *listener), true).c_str());
    std::fflush(stdout);
  }

 private:
  void print(const WatchView &view)
  {
    size_t incomplete = 0;
    const bool lost = view.queues && view.queues->lost;
    for (const ListenerState *listener : view.listeners) {
      // One not dumped says why in its own line; with records lost, the
      // reason may be that.
      const ListenerQueues *queues = queues_of(view, *listener);
      incomplete += queues ? !queues->complete : lost;
    }
    const char *why_not_dumped = lost ? "no process holds this listener, or its records were "
                                        "lost to a full ring buffer"
                                      : "no process holds this listener";
    std::string footer;
    if (incomplete)
      footer = "queue dump incomplete for " + std::to_string(incomplete) + " of " +
               std::to_string(view.listeners.size()) +
               " listeners: lists may miss entries (see qwatch(8), --queues)";
    unsigned long rows = queue_rows(context_.options);
    screen_.print(
        view,
        [&view, rows, why_not_dumped](std::FILE *out, const ListenerState &listener) {
          print_queue_rows(out, queues_of(view, listener), rows, why_not_dumped);
        },
        footer);
  }

  const OutputContext context_;
  TableScreen screen_;
  unsigned long screens_ = 0;
};

std::string refuse_queues(const Options &options)
{
  if (options.format == "json" && !options.once)
    return "--queues --json prints one dump: add --once (live, --json prints transitions)";
  return "";
}

const RegisterOutputMode kQueues{{
    .option = "queues",
    .help = "the table, and under each listener what its queues hold",
    .rank = 40,
    .live_only = false,
    .needs_latency = false,
    .refuse = refuse_queues,
    .create = [](const OutputContext &context) -> std::unique_ptr<Output> {
      return std::make_unique<QueuesOutput>(context);
    },
    .dumps_queues = true,
    .takes_format = "json",
    .own_option = &kQueueRows,
}};

}  // namespace

}  // namespace qwatch
