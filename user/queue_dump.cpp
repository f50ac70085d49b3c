// SPDX-License-Identifier: GPL-2.0
#include "queue_dump.h"

#include <algorithm>

namespace qwatch {

QueueDump assemble_queue_dump(const std::vector<qwatch_queue_entry> &records, bool lost)
{
  QueueDump dump;
  std::map<uint64_t, bool> tables;        // walked: whether to the end
  std::map<uint64_t, uint64_t> table_of;  // listener -> its table (0: not walked)
  std::map<uint64_t, bool> accept_whole;  // listener -> accept queue walked to the end
  for (const qwatch_queue_entry &record : records) {
    switch (record.type) {
    case QWATCH_QUEUE_SYN:
      dump[record.listener].syn.push_back(record);
      break;
    case QWATCH_QUEUE_ACCEPT:
      dump[record.listener].accept.push_back(record);
      break;
    case QWATCH_QUEUE_LISTENER:
      dump[record.listener];
      table_of[record.listener] = record.table;
      accept_whole[record.listener] = record.flags & QWATCH_ENTRY_COMPLETE;
      break;
    case QWATCH_QUEUE_TABLE:
      tables[record.table] = record.flags & QWATCH_ENTRY_COMPLETE;
      break;
    default:
      break;
    }
  }
  for (auto &[listener, queues] : dump) {
    // The SYN queue's order is that of the first SYN-ACKs; a request that
    // has sent none yet is the newest.
    std::stable_sort(queues.syn.begin(), queues.syn.end(), [](const auto &a, const auto &b) {
      uint64_t first = a.order ? a.order : UINT64_MAX, second = b.order ? b.order : UINT64_MAX;
      return first < second;
    });
    std::stable_sort(queues.accept.begin(), queues.accept.end(),
                     [](const auto &a, const auto &b) { return a.order < b.order; });
    auto table = table_of.find(listener);
    auto walked = table == table_of.end() ? tables.end() : tables.find(table->second);
    queues.complete = !lost && table != table_of.end() && accept_whole[listener] &&
                      walked != tables.end() && walked->second;
  }
  return dump;
}

}  // namespace qwatch
