// SPDX-License-Identifier: GPL-2.0
// How events and listeners look to people (tables) and to programs (JSON
// lines, one object per line; the schema is in Documentation/qwatch.rst).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "listener_table.h"
#include "qwatch.h"

namespace qwatch {

const char *event_name(uint8_t type);
const char *protocol_name(uint8_t protocol);
std::string address_string(uint16_t family, const uint8_t *address);

std::string event_json(const qwatch_event &event, uint32_t listener_id);
std::string listener_json(const ListenerState &listener);
std::string lost_events_json(uint64_t ts_ns, uint64_t total);
std::string hsp_module_json(uint64_t ts_ns, bool loaded, bool watched);

struct TableFooter {
  uint64_t lost_events;
  const char *protocols;
};

// One table of listeners, fullest first.
void print_table(std::FILE *out, const std::vector<const ListenerState *> &rows,
                 const TableFooter &footer);

}  // namespace qwatch
