// SPDX-License-Identifier: GPL-2.0
#include "listener_table.h"

#include <algorithm>
#include <cerrno>
#include <iterator>

namespace qwatch {

ListenerState &ListenerTable::upsert(const qwatch_event &event)
{
  auto [it, inserted] = listeners_.try_emplace(event.listener);
  ListenerState &state = it->second;
  // Another socket at a freed listener's address (its close unseen, as
  // without an event stream): nothing of the old one is its.
  // (An MPTCP row's first snapshot replaces its TCP listener's cookie.)
  if (!inserted && event.type == QWATCH_SNAPSHOT && event.cookie && state.cookie &&
      event.cookie != state.cookie && event.mptcp == state.mptcp) {
    state = ListenerState{};
    inserted = true;
  }
  if (inserted)
    state.id = next_id_++;
  state.latest = event;
  // The snapshot's are those of the socket the user holds (an MPTCP
  // socket's, where events come from its TCP listener).
  if (event.type == QWATCH_SNAPSHOT) {
    state.mptcp = event.mptcp;
    state.cookie = event.cookie;
  } else if (!state.cookie) {
    state.cookie = event.cookie;
  }
  state.latest.mptcp = state.mptcp;
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
    event.cookie = it->second.cookie;
    uint32_t id = it->second.id;
    listeners_.erase(it);
    return id;
  }
  ListenerState &state = upsert(event);
  // Printed as the row it belongs to.
  if (state.cookie)
    event.cookie = state.cookie;
  event.mptcp = state.mptcp;
  return state.id;
}

void ListenerTable::begin_resync(const std::vector<qwatch_event> &snapshot)
{
  resync_.clear();
  resync_.reserve(snapshot.size());
  resync_order_.clear();
  for (const qwatch_event &event : snapshot) {
    if (resync_.try_emplace(event.listener, event).second)
      resync_order_.push_back(event.listener);
    if (auto known = listeners_.find(event.listener); known != listeners_.end() && event.pid)
      known->second.pids.insert(event.pid);
  }
}

namespace {

const qwatch_counters &counters_in(const CountersByListener &all, uint64_t listener)
{
  static const qwatch_counters none{};
  auto it = all.find(listener);
  return it == all.end() ? none : it->second;
}

}  // namespace

void ListenerTable::finish_resync(const CountersByListener &after, bool accepts_probed)
{
  std::unordered_map<uint64_t, ListenerState> current;
  current.reserve(std::max(resync_.size(), listeners_.size()));
  // In the snapshot's order: new listeners are numbered as it found them.
  for (uint64_t sock : resync_order_) {
    const qwatch_event &event = resync_.at(sock);
    ListenerState &state = upsert(event);
    // Children leave the accept queue through accept() (or the close),
    // so queued - accepted - the queue is constant, and grows by one per
    // accept() no probe saw. Each term is taken so that a child or an
    // accept counted while the snapshot reads the queue only ever makes
    // the estimate smaller, and the highest estimate stands: the children
    // counted as the snapshot read the queue, before it (a child is
    // counted after it is queued), the accepts read after it. An accept
    // whose caller has dequeued its child but not yet reached the probe
    // is counted in none of the three: see below.
    const qwatch_counters &late = counters_in(after, sock);
    int64_t now = static_cast<int64_t>(event.children_queued) -
                  static_cast<int64_t>(late.accepts) - event.accept_queue;
    if (!state.has_baseline) {
      // Listening before the first resync: what its queue held then was
      // queued unseen (the terms the other way round: the highest
      // baseline). Listening after it: the probes counted all of its
      // children.
      if (!resynced_)
        state.baseline = static_cast<int64_t>(late.children_queued) -
                         static_cast<int64_t>(event.accepts) - event.accept_queue;
      state.has_baseline = true;
    }
    int64_t unseen = now - state.baseline;
    // Where a probe counts accepts, one counted after this read (its
    // caller between the dequeue and the probe) is one too many here:
    // only what two resyncs in a row show is unseen. Counting only, what
    // left the queue is the accept.
    if (accepts_probed) {
      int64_t shown = unseen;
      unseen = std::min(unseen, state.unseen_last_resync);
      state.unseen_last_resync = shown;
    }
    if (unseen > static_cast<int64_t>(state.unseen_accepts))
      state.unseen_accepts = static_cast<uint64_t>(unseen);
    current.emplace(sock, std::move(state));
  }
  for (auto &[sock, state] : listeners_) {
    if (!current.contains(sock) && after.contains(sock))
      current.emplace(sock, std::move(state));
  }
  listeners_ = std::move(current);
  resync_.clear();
  resync_order_.clear();
  resynced_ = true;
}

int ListenerTable::refresh_counters(
    const std::function<int(uint64_t listener, qwatch_counters &counters)> &read,
    const std::function<int(uint64_t listener, qwatch_latencies &latencies)> &read_latencies)
{
  // No entry: the listener stopped listening since the last resync (which
  // will drop it) or nothing was counted for it: what was read stands.
  for (auto &[sock, state] : listeners_) {
    qwatch_counters counters{};
    int err = read(sock, counters);
    if (err == -ENOENT)
      continue;
    if (err < 0)
      return err;
    state.counters = counters;
    if (read_latencies) {
      qwatch_latencies latencies{};
      err = read_latencies(sock, latencies);
      if (err < 0 && err != -ENOENT)
        return err;
      if (!err) {
        state.handshake_time.assign(latencies.handshake);
        state.accept_wait.assign(latencies.accept_wait);
      }
    }
    state.counters.accepts += state.unseen_accepts;
    // The kernel side's peaks are those no event brought (or none did).
    state.peak_syn_queue = static_cast<uint32_t>(
        std::max<uint64_t>(state.peak_syn_queue, state.counters.peak_syn_queue));
    state.peak_accept_queue = static_cast<uint32_t>(
        std::max<uint64_t>(state.peak_accept_queue, state.counters.peak_accept_queue));
  }
  return 0;
}

std::vector<uint64_t> ListenerTable::listeners() const
{
  std::vector<uint64_t> keys;
  keys.reserve(listeners_.size() + resync_.size());
  for (const auto &[sock, state] : listeners_)
    keys.push_back(sock);
  for (const auto &[sock, event] : resync_) {
    if (!listeners_.contains(sock))
      keys.push_back(sock);
  }
  return keys;
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
  rows.reserve(listeners_.size());
  for (const auto &[sock, state] : listeners_)
    rows.push_back(&state);
  std::sort(rows.begin(), rows.end(), [](const auto *a, const auto *b) {
    double fuller = fullness(a->latest), other = fullness(b->latest);
    return fuller != other ? fuller > other : a->id < b->id;
  });
  return rows;
}

}  // namespace qwatch
