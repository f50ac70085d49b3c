// SPDX-License-Identifier: GPL-2.0
// --queues: what a queue dump found in each listener's two queues, from the
// records the dump iterator writes (struct qwatch_queue_entry).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "qwatch.h"

namespace qwatch {

// One listener's queues as the kernel held them during the dump.
struct ListenerQueues {
  std::vector<qwatch_queue_entry> syn;     // request socks, oldest first
  std::vector<qwatch_queue_entry> accept;  // children, head first: accept()'s order
  // Both lists are whole: its accept queue was walked to the end, its
  // ehash table was walked with no bucket over the bounds, and no record
  // was lost to a full ring buffer.
  bool complete = false;
};

struct QueueDump {
  // By the listener's socket cookie (ListenerState::cookie, the
  // snapshot's). A listener no process holds was not dumped and is not
  // here; nor is one whose records were lost.
  std::map<uint64_t, ListenerQueues> listeners;
  bool lost = false;  // records found no room in the ring buffer
};

// The records of one dump, in the order they were written, as lists per
// listener, each entry once; @lost: some records found no room in the ring
// buffer.
QueueDump assemble_queue_dump(const std::vector<qwatch_queue_entry> &records, bool lost);

}  // namespace qwatch
