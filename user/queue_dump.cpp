// SPDX-License-Identifier: GPL-2.0
#include "queue_dump.h"

#include <algorithm>
#include <set>

namespace qwatch {

namespace {

// What the LISTENER records of one listener said.
struct DumpedListener {
  uint64_t cookie = 0;
  bool accept_whole = true;  // its accept queue walked to the end, each time
  std::set<uint64_t> tables;  // its requests' table (0: not looked for)
};

// Keeps the first record of each socket: a walk can meet one twice.
void append_once(std::vector<qwatch_queue_entry> &list, std::set<uint64_t> &seen,
                 const qwatch_queue_entry &record)
{
  if (seen.insert(record.sock).second)
    list.push_back(record);
}

}  // namespace

QueueDump assemble_queue_dump(const std::vector<qwatch_queue_entry> &records, bool lost)
{
  std::map<uint64_t, DumpedListener> listeners;  // by struct sock address
  std::map<uint64_t, bool> tables;               // walked: whether whole
  for (const qwatch_queue_entry &record : records) {
    if (record.type == QWATCH_QUEUE_LISTENER) {
      DumpedListener &listener = listeners[record.listener];
      listener.cookie = record.cookie;
      listener.accept_whole = listener.accept_whole && (record.flags & QWATCH_ENTRY_COMPLETE);
      listener.tables.insert(record.table);
    } else if (record.type == QWATCH_QUEUE_TABLE) {
      tables[record.table] = record.flags & QWATCH_ENTRY_COMPLETE;
    }
  }

  QueueDump dump{.listeners = {}, .lost = lost};
  std::map<uint64_t, std::set<uint64_t>> seen;  // by cookie: sockets listed
  for (const auto &[address, listener] : listeners) {
    ListenerQueues &queues = dump.listeners[listener.cookie];
    // Table 0 (its requests not looked for) is never walked: not whole.
    bool requests_whole = true;
    for (uint64_t table : listener.tables) {
      auto walked = tables.find(table);
      requests_whole = requests_whole && walked != tables.end() && walked->second;
    }
    queues.complete = !lost && listener.accept_whole && requests_whole;
  }
  for (const qwatch_queue_entry &record : records) {
    auto listener = listeners.find(record.listener);
    if (listener == listeners.end())
      continue;
    uint64_t cookie = listener->second.cookie;
    if (record.type == QWATCH_QUEUE_SYN)
      append_once(dump.listeners[cookie].syn, seen[cookie], record);
    else if (record.type == QWATCH_QUEUE_ACCEPT)
      append_once(dump.listeners[cookie].accept, seen[cookie], record);
  }
  for (auto &[cookie, queues] : dump.listeners) {
    // The SYN queue's order is that of the first SYN-ACKs; a request that
    // has sent none yet is the newest.
    std::stable_sort(queues.syn.begin(), queues.syn.end(), [](const auto &a, const auto &b) {
      uint64_t first = a.order ? a.order : UINT64_MAX, second = b.order ? b.order : UINT64_MAX;
      return first < second;
    });
    std::stable_sort(queues.accept.begin(), queues.accept.end(),
                     [](const auto &a, const auto &b) { return a.order < b.order; });
  }
  return dump;
}

}  // namespace qwatch
