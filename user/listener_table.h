// SPDX-License-Identifier: GPL-2.0
// What the reader knows about each listener: the kernel's latest absolute
// queue values plus what the reader itself counted since it started.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "qwatch.h"

namespace qwatch {

struct ListenerState {
  uint32_t id;                  // small, stable number for this run
  qwatch_event latest;          // the kernel's values at the last event or snapshot
  uint32_t peak_syn_queue = 0;  // highest value seen since the reader started
  uint32_t peak_accept_queue = 0;
  uint64_t accepts = 0;
  uint64_t synack_retransmits = 0;
};

class ListenerTable {
 public:
  // Takes the event's values for its listener; returns the listener's id,
  // or 0 for the close of a listener the table never knew. A close event
  // gets the local address the listener had (the kernel may have released
  // its port already).
  uint32_t apply_event(qwatch_event &event);

  // Replaces every listener's values with the snapshot's, keeping the
  // reader's own counters; listeners absent from it are gone.
  void apply_snapshot(const std::vector<qwatch_event> &listeners);

  // Fullest first: by the fuller of the two queues relative to its limit.
  std::vector<const ListenerState *> by_fullness() const;

 private:
  ListenerState &upsert(const qwatch_event &event);

  std::map<uint64_t, ListenerState> listeners_;  // keyed by struct sock address
  uint32_t next_id_ = 1;
};

}  // namespace qwatch
