// SPDX-License-Identifier: GPL-2.0
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "output.h"

namespace qwatch {

namespace {

constexpr size_t kMaxClients = 16;
constexpr size_t kMaxRequest = 8192;
constexpr auto kClientTimeout = std::chrono::seconds(5);

class Exposition {
 public:
  explicit Exposition(bool openmetrics) : openmetrics_(openmetrics) {}

  // The # HELP / # TYPE header of a family; counters are named without
  // their _total suffix in OpenMetrics and with it in the 0.0.4 format.
  void family(std::string_view name, std::string_view type, std::string_view help)
  {
    std::string family_name(name);
    if (type == "counter" && !openmetrics_)
      family_name += "_total";
    text_ += "# HELP " + family_name + " " + std::string(help) + "\n";
    text_ += "# TYPE " + family_name + " " + std::string(type) + "\n";
  }

  void sample(std::string_view name, const std::string &labels, uint64_t value)
  {
    text_ += std::string(name) + labels + " " + std::to_string(value) + "\n";
  }

  void sample(std::string_view name, const std::string &labels, double value)
  {
    char number[64];
    std::snprintf(number, sizeof(number), "%.9g", value);
    text_ += std::string(name) + labels + " " + number + "\n";
  }

  std::string finish()
  {
    if (openmetrics_)
      text_ += "# EOF\n";
    return std::move(text_);
  }

 private:
  bool openmetrics_;
  std::string text_;
};

// A label value as the exposition formats quote it.
std::string label_value(std::string_view text)
{
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '\\' || c == '"')
      quoted += '\\';
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += c;
  }
  return quoted + "\"";
}

// Each listener socket is its own series: the cookie tells apart the
// listeners of an SO_REUSEPORT group, which share everything else.
std::string labels_of(const ListenerState &state, const std::string &extra = "")
{
  const qwatch_event &e = state.latest;
  std::string labels = "{netns=\"" + std::to_string(e.netns) + "\",proto=\"" +
                       protocol_name(e) + "\",laddr=\"" +
                       address_string(e.family, e.laddr) + "\",lport=\"" + std::to_string(e.lport) +
                       "\",cookie=\"" + std::to_string(state.cookie) + "\"";
  if (uint32_t pid = listener_pid(state)) {
    labels += ",pid=\"" + std::to_string(pid) + "\"";
    if (auto comm = process_name(pid))
      labels += ",comm=" + label_value(*comm);
  }
  if (!extra.empty())
    labels += "," + extra;
  return labels + "}";
}

// Fixed buckets, 2 us to about 67 s: the same series in every scrape.
constexpr size_t kExportedBuckets = 26;

void histogram(Exposition &out, std::string_view name,
               const std::vector<const ListenerState *> &listeners,
               const Log2Histogram ListenerState::*which)
{
  for (const ListenerState *state : listeners) {
    const Log2Histogram &h = state->*which;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kExportedBuckets; i++) {
      cumulative += h.bucket(i);
      char le[48];
      std::snprintf(le, sizeof(le), "le=\"%.6f\"", Log2Histogram::bucket_limit_us(i) / 1e6);
      out.sample(std::string(name) + "_bucket", labels_of(*state, le), cumulative);
    }
    out.sample(std::string(name) + "_bucket", labels_of(*state, "le=\"+Inf\""), h.count());
    out.sample(std::string(name) + "_count", labels_of(*state), h.count());
    out.sample(std::string(name) + "_sum", labels_of(*state), h.sum_ns() / 1e9);
  }
}

std::string http_response(std::string_view status, std::string_view type, const std::string &body)
{
  return "HTTP/1.0 " + std::string(status) + "\r\nContent-Type: " + std::string(type) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

}  // namespace

std::string render_metrics(const std::vector<const ListenerState *> &listeners,
                           const ReaderCounts &reader, bool openmetrics)
{
  Exposition out(openmetrics);
  struct Gauge {
    const char *name;
    const char *help;
    uint32_t qwatch_event::*field;
  };
  for (const Gauge &gauge : {
           Gauge{"qwatch_syn_queue_length",
                 "Request socks in the SYN queue (icsk_accept_queue.qlen).",
                 &qwatch_event::syn_queue},
           Gauge{"qwatch_syn_queue_max",
                 "Limit of the SYN queue: the listen() backlog (sk_max_ack_backlog).",
                 &qwatch_event::accept_max},
           Gauge{"qwatch_accept_queue_length", "Children waiting for accept() (sk_ack_backlog).",
                 &qwatch_event::accept_queue},
           Gauge{"qwatch_accept_queue_max", "Limit of the accept queue (sk_max_ack_backlog).",
                 &qwatch_event::accept_max},
       }) {
    out.family(gauge.name, "gauge", gauge.help);
    for (const ListenerState *state : listeners)
      out.sample(gauge.name, labels_of(*state),
                 static_cast<uint64_t>(state->latest.*gauge.field));
  }

  // Counted by the kernel while qwatch was attached.
  for (const CounterField &counter : kCounterFields) {
    std::string name = std::string("qwatch_") + counter.name;
    out.family(name, "counter", counter.help);
    for (const ListenerState *state : listeners)
      out.sample(name + "_total", labels_of(*state), uint64_t{state->counters.*counter.member});
  }
  out.family("qwatch_lost_events", "counter",
             "Events dropped because the ring buffer was full; counters and queues are exact.");
  out.sample("qwatch_lost_events_total", "", reader.lost_events);
  out.family("qwatch_uncounted", "counter",
             "Counts and latencies lost because more listeners were counted than qwatch has room for.");
  out.sample("qwatch_uncounted_total", "", reader.uncounted);
  out.family("qwatch_snapshots", "counter", "Resyncs of every listener from the kernel.");
  out.sample("qwatch_snapshots_total", "", reader.snapshots);

  out.family("qwatch_handshake_duration_seconds", "histogram",
             "From SYN queued to child created (the final ACK's arrival).");
  histogram(out, "qwatch_handshake_duration_seconds", listeners, &ListenerState::handshake_time);
  out.family("qwatch_accept_wait_seconds", "histogram", "From child queued to accept() taking it.");
  histogram(out, "qwatch_accept_wait_seconds", listeners, &ListenerState::accept_wait);
  return out.finish();
}

bool parse_endpoint(const std::string &text, sockaddr_storage &address, socklen_t &length)
{
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size())
    return false;
  std::string host = text.substr(0, colon), port_text = text.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5)
    return false;
  unsigned long port = std::stoul(port_text);
  if (port == 0 || port > 65535)
    return false;

  std::memset(&address, 0, sizeof(address));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto *v6 = reinterpret_cast<sockaddr_in6 *>(&address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(*v6);
    return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6->sin6_addr) == 1;
  }
  auto *v4 = reinterpret_cast<sockaddr_in *>(&address);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<uint16_t>(port));
  length = sizeof(*v4);
  if (host.empty()) {
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    return true;
  }
  return inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1;
}

MetricsServer::MetricsServer(const std::string &text, const sockaddr_storage &address,
                             socklen_t length)
    : listener_(socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0))
{
  if (listener_.get() < 0)
    throw SetupError(errno, "--metrics " + text);
  int one = 1;
  setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listener_.get(), reinterpret_cast<const sockaddr *>(&address), length) != 0 ||
      listen(listener_.get(), 16) != 0)
    throw SetupError(errno, "--metrics " + text);
}

void MetricsServer::append_poll_fds(std::vector<pollfd> &fds) const
{
  fds.push_back({.fd = listener_.get(), .events = POLLIN, .revents = 0});
  for (const Client &client : clients_)
    fds.push_back({.fd = client.fd.get(),
                   .events = static_cast<short>(client.response.empty() ? POLLIN : POLLOUT),
                   .revents = 0});
}

void MetricsServer::accept_clients() noexcept
{
  for (;;) {
    FileDescriptor fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.get() < 0)
      return;
    if (clients_.size() >= kMaxClients)
      continue;  // closed at once: a scraper retries
    Client client;
    client.fd = std::move(fd);
    client.since = std::chrono::steady_clock::now();
    clients_.push_back(std::move(client));
  }
}

bool MetricsServer::read_request(Client &client, const Renderer &render)
{
  char buffer[2048];
  ssize_t n = read(client.fd.get(), buffer, sizeof(buffer));
  if (n < 0)
    return errno == EAGAIN || errno == EINTR;
  if (n == 0)
    return false;
  client.request.append(buffer, static_cast<size_t>(n));
  size_t end = client.request.find("\r\n\r\n");
  if (end == std::string::npos)
    return client.request.size() < kMaxRequest;

  std::string_view request(client.request);
  std::string_view line = request.substr(0, request.find("\r\n"));
  bool openmetrics =
      request.substr(0, end).find("application/openmetrics-text") != std::string_view::npos;
  if (line.starts_with("GET /metrics ") || line == "GET /metrics") {
    if (std::optional<std::string> body = render(openmetrics))
      client.response =
          http_response("200 OK",
                        openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                    : "text/plain; version=0.0.4; charset=utf-8",
                        *body);
    else
      client.response = http_response("503 Service Unavailable", "text/plain",
                                      "qwatch could not read the kernel's counters\n");
  } else if (line.starts_with("GET ")) {
    client.response = http_response("404 Not Found", "text/plain", "qwatch serves /metrics\n");
  } else {
    client.response =
        http_response("405 Method Not Allowed", "text/plain", "qwatch serves GET /metrics\n");
  }
  return write_response(client);
}

bool MetricsServer::write_response(Client &client)
{
  while (client.sent < client.response.size()) {
    ssize_t n = write(client.fd.get(), client.response.data() + client.sent,
                      client.response.size() - client.sent);
    if (n < 0)
      return errno == EAGAIN || errno == EINTR;
    client.sent += static_cast<size_t>(n);
  }
  return false;  // all written: done with this client
}

void MetricsServer::serve(const std::vector<pollfd> &fds, const Renderer &render) noexcept
{
  auto now = std::chrono::steady_clock::now();
  for (const pollfd &fd : fds) {
    if (fd.fd == listener_.get() && (fd.revents & POLLIN))
      accept_clients();
  }
  for (auto it = clients_.begin(); it != clients_.end();) {
    bool keep = now - it->since < kClientTimeout;
    for (const pollfd &fd : fds) {
      if (fd.fd != it->fd.get() || !fd.revents || !keep)
        continue;
      try {
        keep = it->response.empty() ? read_request(*it, render) : write_response(*it);
      } catch (...) {
        keep = false;  // out of memory rendering: drop this scrape only
      }
    }
    it = keep ? std::next(it) : clients_.erase(it);
  }
}

}  // namespace qwatch
