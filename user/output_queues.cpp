// SPDX-License-Identifier: GPL-2.0
// --queues: the table, and under each listener's row what its two queues
// hold (its SYN queue's request socks, its accept queue's children), read
// from the kernel at each interval; with --once --json, the listener
// objects with both lists.
#include <cstdio>
#include <string>

#include "cli.h"
#include "output.h"
#include "output_mode.h"
#include "table_screen.h"

namespace qwatch {

namespace {

const ListenerQueues *queues_of(const WatchView &view, const ListenerState &listener)
{
  if (!view.queues)
    return nullptr;
  auto it = view.queues->find(listener.latest.listener);
  return it == view.queues->end() ? nullptr : &it->second;
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
    for (const ListenerState *listener : view.listeners) {
      const ListenerQueues *queues = queues_of(view, *listener);
      incomplete += !queues || !queues->complete;
    }
    std::string footer;
    if (incomplete)
      footer = "queue dump incomplete for " + std::to_string(incomplete) + " of " +
               std::to_string(view.listeners.size()) +
               " listeners: lists may miss entries (see qwatch(8), --queues)";
    unsigned long rows = context_.options.queue_rows;
    screen_.print(
        view,
        [&view, rows](std::FILE *out, const ListenerState &listener) {
          print_queue_rows(out, queues_of(view, listener), rows);
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
}};

}  // namespace

}  // namespace qwatch
