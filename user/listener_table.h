// SPDX-License-Identifier: GPL-2.0
// What the reader knows about each listener: the kernel's latest absolute
// queue values plus what the reader itself counted since it started.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "histogram.h"
#include "qwatch.h"

namespace qwatch {

struct ListenerState {
  uint32_t id = 0;              // small, stable number for this run
  qwatch_event latest{};        // the kernel's values at the last event or snapshot
  uint32_t peak_syn_queue = 0;  // highest values seen since the reader started
  uint32_t peak_accept_queue = 0;
  uint64_t handshakes = 0;  // requests that became children (ack_complete)
  uint64_t accepts = 0;     // children accept() took, seen or inferred
  uint64_t synack_retransmits = 0;
  std::set<uint32_t> pids;  // processes seen holding it, calling listen() or accept()
  Log2Histogram handshake_time;
  Log2Histogram accept_wait;

  // Accepts no event reported (an accept() already blocked when qwatch
  // attached, or a lost event) show as the accept queue being shorter at a
  // resync than the events since the last one explain.
  uint32_t synced_accept_queue = 0;
  int64_t queue_change_before_sync = 0;  // +1 per ack_complete, -1 per accept
  int64_t queue_change_after_sync = 0;
  uint64_t sync_ts_ns = 0;  // the pending resync's snapshot time; 0: none
};

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
  // keeping the reader's own counters; listeners absent from it are gone.
  void begin_resync(const std::vector<qwatch_event> &snapshot);
  void finish_resync();

  const ListenerState *find(uint64_t listener) const;
  // Fullest first: by the fuller of the two queues relative to its limit.
  std::vector<const ListenerState *> by_fullness() const;

 private:
  ListenerState &upsert(const qwatch_event &event);

  std::map<uint64_t, ListenerState> listeners_;  // keyed by struct sock address
  std::map<uint64_t, qwatch_event> resync_;      // the pending snapshot
  uint32_t next_id_ = 1;
};

}  // namespace qwatch
