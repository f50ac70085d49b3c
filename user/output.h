// SPDX-License-Identifier: GPL-2.0
// How events and listeners look to people (tables, event lines) and to
// programs (JSON lines, one object per line; the schema is in
// Documentation/qwatch.schema.json), for the output modes (output_mode.h).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "listener_table.h"
#include "netns.h"
#include "queue_dump.h"
#include "qwatch.h"

namespace qwatch {

const char *event_name(uint8_t type);
// tcp, hsp, or mptcp for the TCP listener of an MPTCP socket.
const char *protocol_name(const qwatch_event &event);
std::string address_string(uint16_t family, const uint8_t *address);

// Each of struct qwatch_counters' fields and its name in JSON (and, with
// _total appended, as a metric).
struct CounterField {
  const char *name;
  __u64 qwatch_counters::*member;
  const char *help;
};
inline constexpr CounterField kCounterFields[] = {
    {"handshakes", &qwatch_counters::handshakes,
     "Children created, by any path (TcpPassiveOpens for TCP)."},
    {"accepts", &qwatch_counters::accepts, "Children accept() took."},
    {"synack_retransmits", &qwatch_counters::synack_retransmits, "SYN-ACKs sent again."},
    {"expired_requests", &qwatch_counters::expired_requests,
     "Requests given up after their last SYN-ACK."},
    {"listen_overflows", &qwatch_counters::listen_overflows,
     "SYNs and final ACKs dropped with the accept queue full (ListenOverflows)."},
    {"listen_drops", &qwatch_counters::listen_drops,
     "SYNs and final ACKs dropped for any reason, overflows included (ListenDrops)."},
    {"syn_queue_full_drops", &qwatch_counters::syn_queue_full_drops,
     "SYNs dropped with the SYN queue full and no syncookies (TCPReqQFullDrop)."},
    {"syn_queue_full_cookies", &qwatch_counters::syn_queue_full_cookies,
     "SYNs answered with a syncookie because the SYN queue was full (TCPReqQFullDoCookies)."},
    {"syncookies_sent", &qwatch_counters::syncookies_sent, "SYN-ACKs carrying a syncookie."},
    {"syncookies_recv", &qwatch_counters::syncookies_recv, "ACKs with a valid syncookie."},
    {"syncookies_failed", &qwatch_counters::syncookies_failed,
     "ACKs for no request sock whose syncookie was invalid."},
    {"tfo_children", &qwatch_counters::tfo_children,
     "Children created at a TCP Fast Open SYN (TCPFastOpenPassive)."},
};

// A process holding the listener (0: none known) and its name: read once
// per pid until forget_process_names() (each resync; a pid may be reused,
// a process may exec).
uint32_t listener_pid(const ListenerState &listener);
std::optional<std::string> process_name(uint32_t pid);
void forget_process_names();

std::string event_json(const qwatch_event &event, uint32_t listener_id);
// With @queues (--queues), its two queues' entries too; @queues_dumped:
// a dump was taken (a listener it did not reach has empty lists, incomplete).
std::string listener_json(const ListenerState &listener, const ListenerQueues *queues = nullptr,
                          bool queues_dumped = false);
std::string lost_events_json(uint64_t ts_ns, uint64_t total);
std::string hsp_module_json(uint64_t ts_ns, bool loaded, bool watched);

struct TableRow {
  const ListenerState *listener;
  double handshakes_per_s;  // over the last interval
  double accepts_per_s;
  double cookies_per_s;  // syncookies sent
};

struct TableOptions {
  bool color;  // ANSI colours for the queue bars
  uint64_t lost_events;
  std::string protocols;  // what the footer says is watched
  const NetnsNames &netns_names;
  // Called after each listener's row (--queues prints its entries there).
  using RowHook = std::function<void(std::FILE *out, const ListenerState &listener)>;
  RowHook after_row = nullptr;
};

// One table of listeners, in the order given (fullest first).
void print_table(std::FILE *out, const std::vector<TableRow> &rows, const TableOptions &options);

// The lines under a listener's row (--queues): its SYN queue, oldest first,
// then its accept queue, head first, each list at most @rows entries and a
// "+N more" line. @queues nullptr: the dump has no lists for it, and one
// line says so, with @why_not_dumped.
void print_queue_rows(std::FILE *out, const ListenerQueues *queues, unsigned long rows,
                      const char *why_not_dumped);

// One line for a transition, for --events: wall-clock time, event,
// listener, peer, queues after it and, where known, its latency.
std::string event_line(const qwatch_event &event, const NetnsNames &netns_names,
                       int64_t realtime_minus_monotonic_ns);

// The two latency histograms of every listener that has samples (--hist).
void print_histograms(std::FILE *out, const std::vector<const ListenerState *> &listeners,
                      const NetnsNames &netns_names);

}  // namespace qwatch
