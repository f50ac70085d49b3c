// SPDX-License-Identifier: GPL-2.0
// How events and listeners look to people (tables) and to programs (JSON
// lines, one object per line; the schema is in Documentation/qwatch.rst).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "listener_table.h"
#include "netns.h"
#include "qwatch.h"

namespace qwatch {

const char *event_name(uint8_t type);
const char *protocol_name(uint8_t protocol);
std::string address_string(uint16_t family, const uint8_t *address);

std::string event_json(const qwatch_event &event, uint32_t listener_id);
std::string listener_json(const ListenerState &listener);
std::string lost_events_json(uint64_t ts_ns, uint64_t total);
std::string hsp_module_json(uint64_t ts_ns, bool loaded, bool watched);

struct TableRow {
  const ListenerState *listener;
  double handshakes_per_s;  // over the last interval
  double accepts_per_s;
};

struct TableOptions {
  bool color;  // ANSI colours for the queue bars
  uint64_t lost_events;
  std::string protocols;  // what the footer says is watched
  const NetnsNames &netns_names;
};

// One table of listeners, in the order given (fullest first).
void print_table(std::FILE *out, const std::vector<TableRow> &rows, const TableOptions &options);

// One line for a transition, for --events: wall-clock time, event,
// listener, peer, queues after it and, where known, its latency.
std::string event_line(const qwatch_event &event, const NetnsNames &netns_names,
                       int64_t realtime_minus_monotonic_ns);

// The two latency histograms of every listener that has samples (--hist).
void print_histograms(std::FILE *out, const std::vector<const ListenerState *> &listeners,
                      const NetnsNames &netns_names);

}  // namespace qwatch
