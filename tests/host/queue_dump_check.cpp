// SPDX-License-Identifier: GPL-2.0
// Feeds user/queue_dump.cpp the records of one dump, one per line on
// standard input ("TYPE LISTENER COOKIE SOCK TABLE ORDER FLAGS", TYPE one of
// syn, accept, listener, table; "lost" alone: records were lost), and
// prints what assemble_queue_dump() makes of them, one listener per line:
// "COOKIE complete|incomplete syn=SOCK,... accept=SOCK,...".
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "queue_dump.h"

int main()
{
  const std::map<std::string, uint8_t> types = {{"syn", QWATCH_QUEUE_SYN},
                                                {"accept", QWATCH_QUEUE_ACCEPT},
                                                {"listener", QWATCH_QUEUE_LISTENER},
                                                {"table", QWATCH_QUEUE_TABLE}};
  std::vector<qwatch_queue_entry> records;
  bool lost = false;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream fields(line);
    std::string type;
    unsigned flags = 0;
    qwatch_queue_entry record{};
    if (!(fields >> type))
      continue;
    if (type == "lost") {
      lost = true;
      continue;
    }
    if (!types.count(type) || !(fields >> record.listener >> record.cookie >> record.sock >>
                                record.table >> record.order >> flags)) {
      std::fprintf(stderr, "bad record: %s\n", line.c_str());
      return 2;
    }
    record.type = types.at(type);
    record.flags = static_cast<uint8_t>(flags);
    records.push_back(record);
  }
  for (const auto &[cookie, queues] : qwatch::assemble_queue_dump(records, lost).listeners) {
    std::printf("%llu %s syn=", static_cast<unsigned long long>(cookie),
                queues.complete ? "complete" : "incomplete");
    for (size_t i = 0; i < queues.syn.size(); i++)
      std::printf("%s%llu", i ? "," : "", static_cast<unsigned long long>(queues.syn[i].sock));
    std::printf(" accept=");
    for (size_t i = 0; i < queues.accept.size(); i++)
      std::printf("%s%llu", i ? "," : "", static_cast<unsigned long long>(queues.accept[i].sock));
    std::printf("\n");
  }
  return 0;
}
