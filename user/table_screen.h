// SPDX-License-Identifier: GPL-2.0
// The screen the table modes print at each interval (the default table,
// --queues): a time stamp, the table of listeners with their rates, and
// what --hist adds.
#pragma once

#include <chrono>
#include <unordered_map>
#include <vector>

#include "output.h"
#include "output_mode.h"

namespace qwatch {

class TableScreen {
 public:
  explicit TableScreen(const OutputContext &context) : context_(context) {}

  // One screen; @after_row prints under each listener's row, @footer after
  // the table's own footer.
  void print(const WatchView &view, const TableOptions::RowHook &after_row = nullptr,
             const std::string &footer = "");

 private:
  // Handshakes, accepts and syncookies sent per second of each listener
  // over the last interval.
  std::vector<TableRow> rates(const std::vector<const ListenerState *> &listeners);

  const OutputContext context_;
  std::unordered_map<uint64_t, qwatch_counters> previous_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace qwatch
