// SPDX-License-Identifier: GPL-2.0
#include "listener_table.h"

#include <algorithm>
#include <iterator>

namespace qwatch {

ListenerState &ListenerTable::upsert(const qwatch_event &event)
{
  auto [it, inserted] = listeners_.try_emplace(event.listener);
  ListenerState &state = it->second;
  if (inserted)
    state = ListenerState{.id = next_id_++, .latest = event};
  state.latest = event;
  state.peak_syn_queue = std::max(state.peak_syn_queue, event.syn_queue);
  state.peak_accept_queue = std::max(state.peak_accept_queue, event.accept_queue);
  return state;
}

uint32_t ListenerTable::apply_event(qwatch_event &event)
{
  if (event.type == QWATCH_CLOSE) {
    auto it = listeners_.find(event.listener);
    if (it == listeners_.end())
      return 0;
    const qwatch_event &known = it->second.latest;
    std::copy(std::begin(known.laddr), std::end(known.laddr), std::begin(event.laddr));
    event.lport = known.lport;
    uint32_t id = it->second.id;
    listeners_.erase(it);
    return id;
  }
  ListenerState &state = upsert(event);
  switch (event.type) {
  case QWATCH_ACCEPT:
    state.accepts++;
    break;
  case QWATCH_SYNACK_RETRANSMIT:
    state.synack_retransmits++;
    break;
  default:
    break;
  }
  return state.id;
}

void ListenerTable::apply_snapshot(const std::vector<qwatch_event> &listeners)
{
  std::map<uint64_t, ListenerState> current;
  for (const qwatch_event &event : listeners) {
    ListenerState &state = upsert(event);
    current.emplace(event.listener, state);
  }
  listeners_ = std::move(current);
}

static double fullness(const qwatch_event &e)
{
  // Both queues are bounded by the listen() backlog on Linux.
  double limit = e.accept_max ? e.accept_max : 1;
  return std::max(e.syn_queue, e.accept_queue) / limit;
}

std::vector<const ListenerState *> ListenerTable::by_fullness() const
{
  std::vector<const ListenerState *> rows;
  for (const auto &[sock, state] : listeners_)
    rows.push_back(&state);
  std::stable_sort(rows.begin(), rows.end(), [](const auto *a, const auto *b) {
    return fullness(a->latest) > fullness(b->latest);
  });
  return rows;
}

}  // namespace qwatch
