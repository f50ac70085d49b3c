// SPDX-License-Identifier: GPL-2.0
#include "table_screen.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "cli.h"

namespace qwatch {

namespace {

// The footer's "watching ...": the protocols selected, how far HSP is
// watched, and how the probes attached.
std::string watched_protocols(const ReaderStatus &status)
{
  std::string hsp = "hsp";
  if (status.hsp_state != HspState::kWatched)
    hsp += " (" + status.hsp_reason + ")";
  std::string how = status.attach == AttachMode::kFentry ? "; probes: fentry" : "; probes: kprobes";
  if (!status.fentry_failure.empty())
    how += " (fentry failed: " + status.fentry_failure + ")";
  if (!status.hsp)
    return "tcp" + how;
  return (status.tcp ? "tcp, " + hsp : hsp) + how;
}

}  // namespace

std::vector<TableRow> TableScreen::rates(const std::vector<const ListenerState *> &listeners)
{
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - last_).count();
  auto rate = [elapsed](uint64_t now_count, uint64_t before) {
    return elapsed > 0 && now_count >= before ? (now_count - before) / elapsed : 0;
  };
  std::vector<TableRow> rows;
  std::unordered_map<uint64_t, qwatch_counters> counts;
  counts.reserve(listeners.size());
  for (const ListenerState *state : listeners) {
    const qwatch_counters &before = previous_[state->latest.listener];
    const qwatch_counters &c = state->counters;
    counts[state->latest.listener] = c;
    rows.push_back({state, rate(c.handshakes, before.handshakes), rate(c.accepts, before.accepts),
                    rate(c.syncookies_sent, before.syncookies_sent)});
  }
  previous_ = std::move(counts);
  last_ = now;
  return rows;
}

void TableScreen::print(const WatchView &view, const TableOptions::RowHook &after_row,
                        const std::string &footer)
{
  if (isatty(STDOUT_FILENO))
    std::fputs("\033[H\033[2J", stdout);
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", std::localtime(&now));
  std::printf("qwatch %s\n", stamp);
  print_table(stdout, rates(view.listeners),
              {.color = context_.options.color,
               .lost_events = view.status.lost_events,
               .protocols = watched_protocols(view.status),
               .netns_names = context_.netns_names,
               .after_row = after_row});
  if (!footer.empty())
    std::printf("%s\n", footer.c_str());
  if (context_.options.histograms)
    print_histograms(stdout, view.listeners, context_.netns_names);
  if (!isatty(STDOUT_FILENO))
    std::putchar('\n');
  std::fflush(stdout);
}

}  // namespace qwatch
