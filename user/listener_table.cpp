// SPDX-License-Identifier: GPL-2.0
#include "listener_table.h"

#include <algorithm>
#include <iterator>

namespace qwatch {

ListenerState &ListenerTable::upsert(const qwatch_event &event)
{
  auto [it, inserted] = listeners_.try_emplace(event.listener);
  ListenerState &state = it->second;
  if (inserted) {
    state.id = next_id_++;
    state.synced_accept_queue = event.accept_queue;
  }
  state.latest = event;
  state.peak_syn_queue = std::max(state.peak_syn_queue, event.syn_queue);
  state.peak_accept_queue = std::max(state.peak_accept_queue, event.accept_queue);
  if (event.pid)
    state.pids.insert(event.pid);
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
  bool known = listeners_.contains(event.listener);
  ListenerState &state = upsert(event);
  int queue_change = 0;
  switch (event.type) {
  case QWATCH_ACK_COMPLETE:
    state.handshakes++;
    queue_change = 1;
    if (event.latency_ns)
      state.handshake_time.record(event.latency_ns);
    break;
  case QWATCH_ACCEPT:
    state.accepts++;
    queue_change = -1;
    if (event.latency_ns)
      state.accept_wait.record(event.latency_ns);
    break;
  case QWATCH_SYNACK_RETRANSMIT:
    state.synack_retransmits++;
    break;
  default:
    break;
  }
  if (!known && queue_change) {
    // First heard of through this very change: its value already holds it.
    state.synced_accept_queue = event.accept_queue;
  } else if (state.sync_ts_ns && event.ts_ns >= state.sync_ts_ns) {
    state.queue_change_after_sync += queue_change;
  } else {
    state.queue_change_before_sync += queue_change;
  }
  return state.id;
}

void ListenerTable::begin_resync(const std::vector<qwatch_event> &snapshot)
{
  resync_.clear();
  for (const qwatch_event &event : snapshot) {
    auto [it, inserted] = resync_.try_emplace(event.listener, event);
    if (auto known = listeners_.find(event.listener); known != listeners_.end()) {
      if (inserted)
        known->second.sync_ts_ns = event.ts_ns;
      known->second.pids.insert(event.pid);
    }
  }
}

void ListenerTable::finish_resync()
{
  std::map<uint64_t, ListenerState> current;
  for (const auto &[sock, event] : resync_) {
    bool known = listeners_.contains(sock);
    ListenerState &state = upsert(event);
    if (known) {
      int64_t expected = state.synced_accept_queue + state.queue_change_before_sync;
      if (expected > static_cast<int64_t>(event.accept_queue))
        state.accepts += static_cast<uint64_t>(expected - event.accept_queue);
    }
    state.synced_accept_queue = event.accept_queue;
    state.queue_change_before_sync = state.queue_change_after_sync;
    state.queue_change_after_sync = 0;
    state.sync_ts_ns = 0;
    current.emplace(sock, std::move(state));
  }
  listeners_ = std::move(current);
  resync_.clear();
}

const ListenerState *ListenerTable::find(uint64_t listener) const
{
  auto it = listeners_.find(listener);
  return it == listeners_.end() ? nullptr : &it->second;
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
