// SPDX-License-Identifier: GPL-2.0
// What the reader knows about each listener: the kernel's latest absolute
// queue values and counters, and the peaks and latencies the reader saw.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <unordered_map>
#include <vector>

#include "histogram.h"
#include "qwatch.h"

namespace qwatch {

struct ListenerState {
  uint32_t id = 0;              // small, stable number for this run
  uint64_t cookie = 0;          // the socket cookie, once something gave it one
  bool mptcp = false;           // the TCP listener of an MPTCP socket (snapshot)
  qwatch_event latest{};        // the kernel's values at the last event or snapshot
  qwatch_counters counters{};   // the kernel's counts, as last read from the BPF map
  // Highest values since the reader started: events', snapshots' and the
  // probes' own (qwatch_counters::peak_*).
  uint32_t peak_syn_queue = 0;
  uint32_t peak_accept_queue = 0;
  std::set<uint32_t> pids;  // processes seen holding it, calling listen() or accept()
  Log2Histogram handshake_time;  // the probes' (qwatch_latencies), as last read
  Log2Histogram accept_wait;

  // accept()s no probe saw return (already asleep when qwatch attached):
  // children queued - accepts seen - the accept queue grows by one for
  // each (see ListenerTable::finish_resync).
  uint64_t unseen_accepts = 0;
  // With accept() probed, that difference at the last resync: an accept
  // between its dequeue and its probe is in neither the queue nor the
  // accepts, and looks unseen for that one resync.
  int64_t unseen_last_resync = 0;
  bool has_baseline = false;
  // That difference when qwatch first saw it, if it was listening before
  // the first resync (0 for one that listened later: all of its children
  // were counted).
  int64_t baseline = 0;
};

using CountersByListener = std::unordered_map<uint64_t, qwatch_counters>;

class ListenerTable {
 public:
  // Takes the event's values for its listener; returns the listener's id,
  // or 0 for the close of a listener the table never knew. A close event
  // gets the local address the listener had (the kernel may have released
  // its port already).
  uint32_t apply_event(qwatch_event &event);

  // A resync in two steps: begin_resync() with the snapshot (one record per
  // listener and process holding it), then the events still in the ring
  // buffer are applied, then finish_resync() takes the snapshot's values,
  // keeping peaks and histograms. Listeners absent from it that are still
  // listening (their counters exist: held by no process, in flight in an
  // SCM_RIGHTS message, kernel-owned) stay; the others are gone.
  // @after: the counters read after the snapshot's events were applied.
  // @accepts_probed: a probe counts accept()s (else every accept is one
  // that left the accept queue, see finish_resync()).
  void begin_resync(const std::vector<qwatch_event> &snapshot);
  void finish_resync(const CountersByListener &after, bool accepts_probed);

  // Sets every listener's counters to what @read gives for its key
  // (accepts: plus those no probe saw), and its latency histograms to what
  // @read_latencies gives (if not empty). Returns 0, or the first negative
  // errno either returned.
  int refresh_counters(
      const std::function<int(uint64_t listener, qwatch_counters &counters)> &read,
      const std::function<int(uint64_t listener, qwatch_latencies &latencies)> &read_latencies);

  // Every listener the table holds, and those of a pending snapshot.
  std::vector<uint64_t> listeners() const;
  const ListenerState *find(uint64_t listener) const;
  // Fullest first: by the fuller of the two queues relative to its limit,
  // then in the order the table first saw them.
  std::vector<const ListenerState *> by_fullness() const;

 private:
  ListenerState &upsert(const qwatch_event &event);

  // Hashed, not ordered: a resync of 10 000 listeners costs each one
  // lookup, not a tree's descent (rows are ordered by by_fullness()).
  std::unordered_map<uint64_t, ListenerState> listeners_;  // keyed by struct sock address
  std::unordered_map<uint64_t, qwatch_event> resync_;      // the pending snapshot
  std::vector<uint64_t> resync_order_;  // its listeners, in the order it found them
  uint32_t next_id_ = 1;
  bool resynced_ = false;  // the first resync is done
};

}  // namespace qwatch
