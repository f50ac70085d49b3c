// SPDX-License-Identifier: GPL-2.0
// The default output: a table of every listener at each interval.
#include "cli.h"
#include "output_mode.h"
#include "table_screen.h"

namespace qwatch {

namespace {

class TableOutput : public Output {
 public:
  explicit TableOutput(const OutputContext &context) : context_(context), screen_(context) {}

  bool tick(const WatchView &view) override
  {
    screen_.print(view);
    return !context_.options.count || ++tables_ < context_.options.count;
  }
  void listeners(const WatchView &view) override { screen_.print(view); }

 private:
  const OutputContext context_;
  TableScreen screen_;
  unsigned long tables_ = 0;
};

const RegisterOutputMode kTable{{
    .option = nullptr,
    .help = nullptr,
    .rank = 0,
    .live_only = false,
    .needs_latency = false,
    .refuse = nullptr,
    .create = [](const OutputContext &context) -> std::unique_ptr<Output> {
      return std::make_unique<TableOutput>(context);
    },
}};

}  // namespace

}  // namespace qwatch
