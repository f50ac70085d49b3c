// SPDX-License-Identifier: GPL-2.0
#include "output.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string_view>
#include <unordered_map>

#include "json.h"

namespace qwatch {

namespace {

// Indexed by enum qwatch_event_type: generated from the one list of events.
#define QWATCH_EVENT_NAME(type, name) name,
constexpr const char *kEventNames[] = {QWATCH_EVENT_LIST(QWATCH_EVENT_NAME)};
#undef QWATCH_EVENT_NAME
static_assert(std::size(kEventNames) == QWATCH_EVENT_TYPES, "a name for every event type");

const char *stage_name(uint8_t stage)
{
  switch (stage) {
  case QWATCH_STAGE_SYN:
    return "syn";
  case QWATCH_STAGE_ACK:
    return "ack";
  default:
    return nullptr;
  }
}

// The fields every object about a listener shares.
void listener_fields(JsonObject &json, const qwatch_event &e, uint32_t id)
{
  json.number("id", id)
      .string("proto", protocol_name(e))
      .string("family", e.family == AF_INET6 ? "inet6" : "inet")
      .number("netns", e.netns)
      .string("laddr", address_string(e.family, e.laddr))
      .number("lport", e.lport)
      .number("syn_queue", e.syn_queue)
      .number("syn_young", e.syn_young)
      .number("accept_queue", e.accept_queue)
      .number("accept_max", e.accept_max)
      .number("drops", e.drops)
      .number("cookie", e.cookie);
}

const char *cause_name(uint8_t cause)
{
  switch (cause) {
  case QWATCH_CAUSE_LISTEN_OVERFLOW:
    return "listen_overflows";
  case QWATCH_CAUSE_SYN_QUEUE_FULL:
    return "syn_queue_full_drops";
  default:
    return "listen_drops";
  }
}

const char *path_name(uint8_t path)
{
  switch (path) {
  case QWATCH_PATH_SYNCOOKIE:
    return "syncookie";
  case QWATCH_PATH_FASTOPEN:
    return "fastopen";
  default:
    return "handshake";
  }
}

std::string bar(uint32_t value, uint32_t limit, size_t width)
{
  size_t filled = limit ? (static_cast<uint64_t>(value) * width + limit - 1) / limit : 0;
  if (filled > width)
    filled = width;
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

// "3/64      [#.........]", the bar green, yellow from half full, red
// from 90 %: 20 visible characters either way.
std::string queue_cell(uint32_t value, uint32_t limit, bool color)
{
  char cell[64];
  std::string fraction = std::to_string(value) + "/" + std::to_string(limit);
  std::snprintf(cell, sizeof(cell), "%-9s ", fraction.c_str());
  std::string text = cell;
  if (!color)
    return text + bar(value, limit, 8);
  double full = limit ? static_cast<double>(value) / limit : 0;
  const char *hue = full >= 0.9 ? "\033[31m" : full >= 0.5 ? "\033[33m" : "\033[32m";
  return text + hue + bar(value, limit, 8) + "\033[0m";
}

}  // namespace

const char *event_name(uint8_t type)
{
  return type < std::size(kEventNames) ? kEventNames[type] : "unknown";
}

const char *protocol_name(const qwatch_event &e)
{
  if (e.mptcp)
    return "mptcp";
  switch (e.protocol) {
  case QWATCH_PROTO_TCP:
    return "tcp";
  case QWATCH_PROTO_HSP:
    return "hsp";
  default:
    return "unknown";
  }
}

std::string address_string(uint16_t family, const uint8_t *address)
{
  char text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, address, text, sizeof(text));
  return text;
}

std::string event_json(const qwatch_event &e, uint32_t listener_id)
{
  JsonObject json;
  json.number("ts_ns", e.ts_ns).string("event", event_name(e.type));
  listener_fields(json, e, listener_id);
  if (e.rport)
    json.string("raddr", address_string(e.family, e.raddr)).number("rport", e.rport);
  else
    json.null("raddr").null("rport");
  if (const char *stage = stage_name(e.stage))
    json.string("stage", stage).string("cause", cause_name(e.cause));
  if (e.type == QWATCH_ACK_COMPLETE)
    json.string("path", path_name(e.path));
  if (e.pid)
    json.number("pid", e.pid);
  if (e.type == QWATCH_ACK_COMPLETE || e.type == QWATCH_ACCEPT) {
    if (e.latency_ns)
      json.number("latency_ns", e.latency_ns);
    else
      json.null("latency_ns");
  }
  return json.str();
}

namespace {

// What each pid was called when first asked since the last resync: a table
// or a scrape of 10 000 listeners one process holds reads /proc once, not
// once per row or sample (an open() and a zeroed page each).
std::unordered_map<uint32_t, std::optional<std::string>> &known_process_names()
{
  static std::unordered_map<uint32_t, std::optional<std::string>> names;
  return names;
}

}  // namespace

std::optional<std::string> process_name(uint32_t pid)
{
  if (!pid)
    return std::nullopt;
  auto [known, inserted] = known_process_names().try_emplace(pid);
  if (!inserted)
    return known->second;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (std::getline(comm, name))
    known->second = name;
  return known->second;
}

void forget_process_names()
{
  known_process_names().clear();
}

uint32_t listener_pid(const ListenerState &listener)
{
  return listener.pids.empty() ? 0 : *listener.pids.begin();
}

namespace {

std::string peer_address(const qwatch_queue_entry &entry)
{
  return address_string(entry.family ? entry.family : AF_INET, entry.raddr);
}

double microseconds_to_ms(uint64_t us)
{
  return static_cast<double>(us) / 1000.0;
}

// Members both lists' entries have: the peer and, where known, the age.
void peer_and_age_json(JsonObject &json, const qwatch_queue_entry &entry)
{
  json.string("raddr", peer_address(entry)).number("rport", entry.rport);
  if (entry.flags & QWATCH_ENTRY_AGE)
    json.real("age_ms", microseconds_to_ms(entry.age_us));
  else
    json.null("age_ms");
}

JsonObject syn_entry_json(const qwatch_queue_entry &entry)
{
  JsonObject json;
  peer_and_age_json(json, entry);
  json.number("synack_retransmits", entry.synack_retransmits)
      .number("timeouts", entry.timeouts)
      .boolean("young", entry.flags & QWATCH_ENTRY_YOUNG);
  if (entry.flags & QWATCH_ENTRY_TIMER)
    json.real("timer_ms", static_cast<double>(entry.timer_us) / 1000.0);
  else
    json.null("timer_ms");
  return json;
}

JsonObject accept_entry_json(const qwatch_queue_entry &entry)
{
  JsonObject json;
  peer_and_age_json(json, entry);
  if (entry.flags & QWATCH_ENTRY_RX)
    json.number("rx_bytes", entry.rx_bytes);
  else
    json.null("rx_bytes");
  return json;
}

}  // namespace

std::string listener_json(const ListenerState &listener, const ListenerQueues *queues,
                          bool queues_dumped)
{
  JsonObject json;
  qwatch_event latest = listener.latest;
  latest.cookie = listener.cookie;
  listener_fields(json, latest, listener.id);
  uint32_t pid = listener_pid(listener);
  json.number("pid", pid);
  if (auto comm = process_name(pid))
    json.string("comm", *comm);
  else
    json.null("comm");
  json.number("peak_syn_queue", listener.peak_syn_queue)
      .number("peak_accept_queue", listener.peak_accept_queue);
  for (const CounterField &field : kCounterFields)
    json.number(field.name, listener.counters.*field.member);
  if (queues_dumped && !queues) {
    // No process holds it (kernel-owned, or in flight in SCM_RIGHTS): the
    // dump walks the listeners of files, so its lists are unknown.
    json.null("syn_queue_entries").null("accept_queue_entries").boolean("queue_dump_complete",
                                                                        false);
  } else if (queues_dumped) {
    // Whole lists: --queue-rows caps the screen only.
    std::vector<JsonObject> syn, accept;
    for (const qwatch_queue_entry &entry : queues->syn)
      syn.push_back(syn_entry_json(entry));
    for (const qwatch_queue_entry &entry : queues->accept)
      accept.push_back(accept_entry_json(entry));
    json.objects("syn_queue_entries", syn)
        .objects("accept_queue_entries", accept)
        .boolean("queue_dump_complete", queues->complete);
  }
  return json.str();
}

std::string lost_events_json(uint64_t ts_ns, uint64_t total)
{
  return JsonObject()
      .number("ts_ns", ts_ns)
      .string("event", "lost_events")
      .number("total", total)
      .str();
}

std::string hsp_module_json(uint64_t ts_ns, bool loaded, bool watched)
{
  return JsonObject()
      .number("ts_ns", ts_ns)
      .string("event", "hsp_module")
      .boolean("loaded", loaded)
      .boolean("watched", watched)
      .str();
}

static std::string local_endpoint(const qwatch_event &e)
{
  std::string address = address_string(e.family, e.laddr);
  if (e.family == AF_INET6)
    address = "[" + address + "]";
  return address + ":" + std::to_string(e.lport);
}

static std::string peer_endpoint(const qwatch_event &e)
{
  if (!e.rport)
    return "-";
  std::string address = address_string(e.family, e.raddr);
  if (e.family == AF_INET6)
    address = "[" + address + "]";
  return address + ":" + std::to_string(e.rport);
}

static std::string entry_endpoint(const qwatch_queue_entry &entry)
{
  std::string address = peer_address(entry);
  if (entry.family == AF_INET6)
    address = "[" + address + "]";
  return address + ":" + std::to_string(entry.rport);
}

// "5.28s", or "-" when unknown.
static std::string seconds(bool known, double us)
{
  if (!known)
    return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.2fs", us / 1e6);
  return text;
}

void print_queue_rows(std::FILE *out, const ListenerQueues *queues, unsigned long rows,
                      const char *why_not_dumped)
{
  if (!queues) {
    std::fprintf(out, "    %-8s (not dumped: %s)\n", "QUEUES", why_not_dumped);
    return;
  }
  const ListenerQueues &q = *queues;
  auto list = [out, rows](const char *name, const std::vector<qwatch_queue_entry> &entries,
                          auto &&print_entry) {
    if (entries.empty()) {
      std::fprintf(out, "    %-8s (empty)\n", name);
      return;
    }
    for (size_t k = 0; k < entries.size() && k < rows; k++) {
      std::fprintf(out, "    %-8s #%-4zu%-26s ", name, k + 1, entry_endpoint(entries[k]).c_str());
      print_entry(entries[k]);
      std::fputc('\n', out);
    }
    if (entries.size() > rows)
      std::fprintf(out, "    %-8s +%zu more\n", name, entries.size() - rows);
  };
  list("SYN-Q", q.syn, [out](const qwatch_queue_entry &e) {
    std::fprintf(out, "age %8s  synack %3u  timer %8s%s",
                 seconds(e.flags & QWATCH_ENTRY_AGE, static_cast<double>(e.age_us)).c_str(),
                 e.synack_retransmits,
                 seconds(e.flags & QWATCH_ENTRY_TIMER, static_cast<double>(e.timer_us)).c_str(),
                 e.flags & QWATCH_ENTRY_YOUNG ? "  young" : "");
  });
  list("ACCEPT-Q", q.accept, [out](const qwatch_queue_entry &e) {
    std::fprintf(out, "age %8s",
                 seconds(e.flags & QWATCH_ENTRY_AGE, static_cast<double>(e.age_us)).c_str());
    if (e.flags & QWATCH_ENTRY_RX)
      std::fprintf(out, "  rx %llu", static_cast<unsigned long long>(e.rx_bytes));
  });
}

void print_table(std::FILE *out, const std::vector<TableRow> &rows, const TableOptions &options)
{
  std::fprintf(out, "%-12s %-5s %-22s %-20s %5s %-20s %5s %6s %6s %7s %7s %9s %s\n", "NETNS",
               "PROTO", "LOCAL", "SYN-Q CUR/MAX", "PEAK", "ACCEPT-Q CUR/MAX", "PEAK", "DROPS",
               "SYNACK", "HS/S", "ACC/S", "COOKIES/S", "PROCESS");
  for (const TableRow &row : rows) {
    const ListenerState &state = *row.listener;
    const qwatch_event &e = state.latest;
    uint32_t pid = listener_pid(state);
    std::string process = "-";
    if (pid)
      process = process_name(pid).value_or("?") + "[" + std::to_string(pid) + "]";
    std::fprintf(out, "%-12s %-5s %-22s %s %5u %s %5u %6llu %6llu %7.1f %7.1f %9.1f %s\n",
                 options.netns_names.label(e.netns).c_str(), protocol_name(e),
                 local_endpoint(e).c_str(),
                 queue_cell(e.syn_queue, e.accept_max, options.color).c_str(), state.peak_syn_queue,
                 queue_cell(e.accept_queue, e.accept_max, options.color).c_str(),
                 state.peak_accept_queue,
                 static_cast<unsigned long long>(state.counters.listen_drops),
                 static_cast<unsigned long long>(state.counters.synack_retransmits),
                 row.handshakes_per_s, row.accepts_per_s, row.cookies_per_s, process.c_str());
    if (options.after_row)
      options.after_row(out, state);
  }
  std::fprintf(out, "%zu listeners, %llu lost events, watching %s\n", rows.size(),
               static_cast<unsigned long long>(options.lost_events), options.protocols.c_str());
}

std::string event_line(const qwatch_event &e, const NetnsNames &netns_names,
                       int64_t realtime_minus_monotonic_ns)
{
  int64_t wall_ns = static_cast<int64_t>(e.ts_ns) + realtime_minus_monotonic_ns;
  std::time_t seconds = static_cast<std::time_t>(wall_ns / 1000000000);
  std::tm local{};
  localtime_r(&seconds, &local);
  char clock[16];
  std::strftime(clock, sizeof(clock), "%H:%M:%S", &local);

  char line[320];
  int n = std::snprintf(
      line, sizeof(line),
      "%s.%06lld %-17s %-12s %-4s %-22s peer %-22s "
      "syn %u/%u accept %u/%u",
      clock, static_cast<long long>(wall_ns % 1000000000 / 1000), event_name(e.type),
      netns_names.label(e.netns).c_str(), protocol_name(e), local_endpoint(e).c_str(),
      peer_endpoint(e).c_str(), e.syn_queue, e.accept_max, e.accept_queue, e.accept_max);
  std::string text(line, static_cast<size_t>(std::max(n, 0)));
  if (const char *stage = stage_name(e.stage))
    text += std::string(" at ") + stage;
  if (e.latency_ns) {
    std::snprintf(line, sizeof(line), " %s %.3f ms",
                  e.type == QWATCH_ACCEPT ? "waited" : "handshake", e.latency_ns / 1e6);
    text += line;
  }
  return text;
}

void print_histograms(std::FILE *out, const std::vector<const ListenerState *> &listeners,
                      const NetnsNames &netns_names)
{
  for (const ListenerState *state : listeners) {
    const qwatch_event &e = state->latest;
    std::string name = std::string(protocol_name(e)) + " " + local_endpoint(e) +
                       " (netns " + netns_names.label(e.netns) + ")";
    if (state->handshake_time.count())
      state->handshake_time.print(out, "\nhandshake time, SYN queued -> child created: " + name);
    if (state->accept_wait.count())
      state->accept_wait.print(out, "\naccept-queue wait, child queued -> accepted: " + name);
  }
}

}  // namespace qwatch
