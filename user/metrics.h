// SPDX-License-Identifier: GPL-2.0
// --metrics: Prometheus / OpenMetrics text at http://ADDR:PORT/metrics,
// served from qwatch's own event loop (no thread: the table is not shared).
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "file_descriptor.h"
#include "listener_table.h"
#include "netns.h"

namespace qwatch {

// What qwatch itself counted, exported without labels.
struct ReaderCounts {
  uint64_t lost_events;  // to a full ring buffer
  uint64_t uncounted;    // counts lost to a full counters map
  uint64_t snapshots;    // resyncs from the listener iterator
};

// The exposition of every listener; @openmetrics selects OpenMetrics 1.0
// over the Prometheus 0.0.4 text format.
std::string render_metrics(const std::vector<const ListenerState *> &listeners,
                           const ReaderCounts &reader, bool openmetrics);

// "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" (every address); false if malformed.
bool parse_endpoint(const std::string &text, sockaddr_storage &address, socklen_t &length);

class MetricsServer {
 public:
  // The exposition, or nullopt when what it shows could not be read.
  using Renderer = std::function<std::optional<std::string>(bool openmetrics)>;

  // Listens on @address; throws SetupError naming @text when it cannot.
  MetricsServer(const std::string &text, const sockaddr_storage &address, socklen_t length);

  // The descriptors to poll for: the listening socket and each client.
  void append_poll_fds(std::vector<pollfd> &fds) const;
  // Serves whatever of them @fds says is ready; never throws.
  void serve(const std::vector<pollfd> &fds, const Renderer &render) noexcept;

 private:
  struct Client {
    FileDescriptor fd;
    std::string request;
    std::string response;
    size_t sent = 0;
    std::chrono::steady_clock::time_point since;
  };

  void accept_clients() noexcept;
  // false once the client is done with (answered or broken).
  bool read_request(Client &client, const Renderer &render);
  bool write_response(Client &client);

  FileDescriptor listener_;
  std::list<Client> clients_;
};

}  // namespace qwatch
