// SPDX-License-Identifier: GPL-2.0
#include "output.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <string_view>

namespace qwatch {

namespace {

constexpr std::array<const char *, QWATCH_EVENT_TYPES> kEventNames = {
    "snapshot",     "listen",   "close",    "syn_recv", "syn_drop",          "overflow",
    "ack_complete", "ack_drop", "req_drop", "expire",   "synack_retransmit", "accept",
};

// Builds one JSON object; keys are ours, string values are escaped.
class JsonObject {
 public:
  JsonObject &number(std::string_view key, uint64_t value)
  {
    return raw(key, std::to_string(value));
  }
  JsonObject &string(std::string_view key, std::string_view value)
  {
    std::string quoted = "\"";
    for (char c : value) {
      if (c == '"' || c == '\\')
        quoted += '\\';
      if (static_cast<unsigned char>(c) < 0x20)
        continue;
      quoted += c;
    }
    return raw(key, quoted + "\"");
  }
  JsonObject &null(std::string_view key) { return raw(key, "null"); }
  JsonObject &boolean(std::string_view key, bool value)
  {
    return raw(key, value ? "true" : "false");
  }
  std::string str() const { return body_ + "}"; }

 private:
  JsonObject &raw(std::string_view key, const std::string &value)
  {
    body_ += body_.size() > 1 ? ",\"" : "\"";
    body_ += key;
    body_ += "\":";
    body_ += value;
    return *this;
  }
  std::string body_ = "{";
};

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
      .string("proto", protocol_name(e.protocol))
      .string("family", e.family == AF_INET6 ? "inet6" : "inet")
      .number("netns", e.netns)
      .string("laddr", address_string(e.family, e.laddr))
      .number("lport", e.lport)
      .number("syn_queue", e.syn_queue)
      .number("syn_young", e.syn_young)
      .number("accept_queue", e.accept_queue)
      .number("accept_max", e.accept_max)
      .number("drops", e.drops);
}

std::string bar(uint32_t value, uint32_t limit, size_t width)
{
  size_t filled = limit ? (static_cast<uint64_t>(value) * width + limit - 1) / limit : 0;
  if (filled > width)
    filled = width;
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

std::string queue_cell(uint32_t value, uint32_t limit)
{
  char cell[64];
  std::string fraction = std::to_string(value) + "/" + std::to_string(limit);
  std::snprintf(cell, sizeof(cell), "%-9s %s", fraction.c_str(), bar(value, limit, 10).c_str());
  return cell;
}

}  // namespace

const char *event_name(uint8_t type)
{
  return type < kEventNames.size() ? kEventNames[type] : "unknown";
}

const char *protocol_name(uint8_t protocol)
{
  switch (protocol) {
  case IPPROTO_TCP:
    return "tcp";
  case QWATCH_IPPROTO_HSP:
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
    json.string("stage", stage);
  if (e.pid)
    json.number("pid", e.pid);
  return json.str();
}

std::string listener_json(const ListenerState &listener)
{
  JsonObject json;
  listener_fields(json, listener.latest, listener.id);
  json.number("pid", listener.latest.pid)
      .number("peak_syn_queue", listener.peak_syn_queue)
      .number("peak_accept_queue", listener.peak_accept_queue);
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

void print_table(std::FILE *out, const std::vector<const ListenerState *> &rows,
                 const TableFooter &footer)
{
  std::fprintf(out, "%-10s %-5s %-24s %-22s %-22s %7s %7s %7s\n", "NETNS", "PROTO", "LOCAL",
               "SYN-Q CUR/MAX", "ACCEPT-Q CUR/MAX", "DROPS", "SYNACK", "ACCEPTS");
  for (const ListenerState *row : rows) {
    const qwatch_event &e = row->latest;
    std::string local = address_string(e.family, e.laddr);
    if (e.family == AF_INET6)
      local = "[" + local + "]";
    local += ":" + std::to_string(e.lport);
    std::fprintf(out, "%-10u %-5s %-24s %-22s %-22s %7u %7llu %7llu\n", e.netns,
                 protocol_name(e.protocol), local.c_str(),
                 queue_cell(e.syn_queue, e.accept_max).c_str(),
                 queue_cell(e.accept_queue, e.accept_max).c_str(), e.drops,
                 static_cast<unsigned long long>(row->synack_retransmits),
                 static_cast<unsigned long long>(row->accepts));
  }
  std::fprintf(out, "%zu listeners, %llu lost events, watching %s\n", rows.size(),
               static_cast<unsigned long long>(footer.lost_events), footer.protocols);
}

}  // namespace qwatch
