// SPDX-License-Identifier: GPL-2.0
// loadgen: K clients in one network namespace doing connect -> close as
// fast as they can against a listener in another that accepts and closes,
// for TCP or HSP, for a fixed time. Prints one JSON line: handshakes in
// total, per second, and per time bucket (for plots). With --rate R the
// clients together start at most R handshakes a second (each paced at R/K,
// never catching up in a burst), so that a watcher can be offered a known
// event rate.
//
// Both sides close abortively (TCP with SO_LINGER 0, HSP always does), so
// no TIME_WAIT piles up and the two protocols do the same work.
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "file_descriptor.h"

namespace {

using qwatch::FileDescriptor;
using Clock = std::chrono::steady_clock;

// HSP's IP protocol number is the loaded module's (its proto= parameter),
// never spelled here: IPPROTO_HSP in kmod/include/uapi/linux/hsp.h is only
// the default.
constexpr char kHspProtoParameter[] = "/sys/module/hsp/parameters/proto";

struct Options {
  int protocol = IPPROTO_TCP;
  std::string server_netns, client_netns;
  std::string address = "10.77.0.1";
  unsigned clients = 4;
  unsigned acceptors = 2;
  double seconds = 5;
  double rate = 0;  // handshakes/s for all clients together; 0: unpaced
  unsigned bucket_ms = 100;
};

[[noreturn]] void usage_error(const std::string &what)
{
  std::fprintf(stderr, "loadgen: %s\n", what.c_str());
  std::exit(2);
}

// The IP protocol number the loaded HSP module serves.
int hsp_protocol()
{
  std::FILE *file = std::fopen(kHspProtoParameter, "re");
  if (!file) {
    std::fprintf(stderr, "loadgen: --proto hsp: %s: %s (is the hsp module loaded?)\n",
                 kHspProtoParameter, std::strerror(errno));
    std::exit(1);
  }
  int protocol = 0;
  bool read = std::fscanf(file, "%d", &protocol) == 1;
  std::fclose(file);
  if (!read || protocol < 1 || protocol > 254) {
    std::fprintf(stderr, "loadgen: %s: no IP protocol number\n", kHspProtoParameter);
    std::exit(1);
  }
  return protocol;
}

// Moves the calling thread into a named network namespace (setns is per thread).
void enter_netns(const std::string &name)
{
  if (name.empty())
    return;
  FileDescriptor ns(open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
  if (ns.get() < 0 || setns(ns.get(), CLONE_NEWNET) != 0)
    throw std::runtime_error("entering netns " + name + ": " + std::strerror(errno));
}

sockaddr_in endpoint(const std::string &address, uint16_t port)
{
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &sin.sin_addr) != 1)
    usage_error("--addr: '" + address + "' is not an IPv4 address");
  return sin;
}

class Listener {
 public:
  Listener(const Options &options) : options_(options)
  {
    std::exception_ptr failed;
    // Created from a thread inside the server namespace.
    std::thread([&] {
      try {
        enter_netns(options.server_netns);
        fd_ = FileDescriptor(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, options.protocol));
        int one = 1;
        sockaddr_in sin = endpoint(options.address, 0);
        socklen_t length = sizeof(sin);
        if (fd_.get() < 0 || setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            bind(fd_.get(), reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) ||
            listen(fd_.get(), 4096) ||
            getsockname(fd_.get(), reinterpret_cast<sockaddr *>(&sin), &length))
          throw std::runtime_error(std::string("listening: ") + std::strerror(errno));
        port_ = ntohs(sin.sin_port);
      } catch (...) {
        failed = std::current_exception();
      }
    }).join();
    if (failed)
      std::rethrow_exception(failed);
    for (unsigned i = 0; i < options.acceptors; i++)
      acceptors_.emplace_back([this] { accept_until_shutdown(); });
  }

  ~Listener()
  {
    shutdown(fd_.get(), SHUT_RDWR);  // blocked accept()s return EINVAL
    for (std::thread &acceptor : acceptors_)
      acceptor.join();
  }

  uint16_t port() const { return port_; }

 private:
  void accept_until_shutdown()
  {
    for (;;) {
      FileDescriptor child(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (child.get() >= 0)
        continue;
      if (errno != EINTR && errno != ECONNABORTED)
        return;
    }
  }

  const Options &options_;
  FileDescriptor fd_;
  uint16_t port_ = 0;
  std::vector<std::thread> acceptors_;
};

struct ClientResult {
  std::vector<uint64_t> buckets;
  uint64_t errors = 0;
  int last_errno = 0;
  std::string failure;
};

void run_client(const Options &options, unsigned index, uint16_t port,
                Clock::time_point start, ClientResult &result)
{
  try {
    enter_netns(options.client_netns);
  } catch (const std::exception &e) {
    result.failure = e.what();
    return;
  }
  sockaddr_in server = endpoint(options.address, port);
  auto bucket = std::chrono::milliseconds(options.bucket_ms);
  auto end = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.seconds));
  result.buckets.assign(static_cast<size_t>((end - start) / bucket) + 1, 0);
  linger abortive = {.l_onoff = 1, .l_linger = 0};
  // --rate: this client's share, one handshake every K/R seconds, the
  // clients staggered over the period rather than starting together.
  auto period = options.rate > 0 ? std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(options.clients / options.rate))
                                 : Clock::duration::zero();
  auto next = start + period * index / options.clients;
  for (auto now = Clock::now(); now < end; now = Clock::now()) {
    if (options.rate > 0) {
      // Behind by more than a period (the machine is saturated): start
      // from now rather than bursting to make up for it.
      if (now - next > period)
        next = now;
      if (next > now)
        std::this_thread::sleep_until(next);
      next += period;
      if (Clock::now() >= end)
        break;
    }
    FileDescriptor fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, options.protocol));
    if (fd.get() < 0) {
      result.failure = std::string("socket: ") + std::strerror(errno);
      return;
    }
    if (options.protocol == IPPROTO_TCP)
      setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
    // HSP closes abortively: when the server accepts and closes before
    // this thread is scheduled again, connect() reports the reset of the
    // connection it did establish.
    if (connect(fd.get(), reinterpret_cast<sockaddr *>(&server), sizeof(server)) != 0 &&
        errno != ECONNRESET) {
      result.errors++;
      result.last_errno = errno;
      continue;
    }
    // A connect that began before the end may finish a bucket or more
    // after it (a SYN retransmission): it counts, in the last bucket.
    auto index = static_cast<size_t>((Clock::now() - start) / bucket);
    result.buckets[std::min(index, result.buckets.size() - 1)]++;
  }
}

Options parse(int argc, char **argv)
{
  static const option long_options[] = {
      {"proto", required_argument, nullptr, 'P'},
      {"server-netns", required_argument, nullptr, 'S'},
      {"client-netns", required_argument, nullptr, 'C'},
      {"addr", required_argument, nullptr, 'a'},
      {"clients", required_argument, nullptr, 'k'},
      {"seconds", required_argument, nullptr, 't'},
      {"rate", required_argument, nullptr, 'r'},
      {"bucket-ms", required_argument, nullptr, 'b'},
      {nullptr, 0, nullptr, 0},
  };
  Options options;
  int opt;
  while ((opt = getopt_long(argc, argv, "", long_options, nullptr)) != -1) {
    switch (opt) {
    case 'P':
      if (!std::strcmp(optarg, "tcp"))
        options.protocol = IPPROTO_TCP;
      else if (!std::strcmp(optarg, "hsp"))
        options.protocol = hsp_protocol();
      else
        usage_error(std::string("--proto: '") + optarg + "' is not tcp or hsp");
      break;
    case 'S':
      options.server_netns = optarg;
      break;
    case 'C':
      options.client_netns = optarg;
      break;
    case 'a':
      options.address = optarg;
      break;
    case 'k':
      options.clients = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10));
      if (options.clients < 1 || options.clients > 1024)
        usage_error("--clients: from 1 to 1024");
      break;
    case 't':
      options.seconds = std::strtod(optarg, nullptr);
      if (!(options.seconds > 0 && options.seconds <= 3600))
        usage_error("--seconds: more than 0, at most 3600");
      break;
    case 'r':
      options.rate = std::strtod(optarg, nullptr);
      if (!(options.rate > 0 && options.rate <= 10000000))
        usage_error("--rate: handshakes/s, more than 0, at most 10000000");
      break;
    case 'b':
      options.bucket_ms = static_cast<unsigned>(std::strtoul(optarg, nullptr, 10));
      if (options.bucket_ms < 10)
        usage_error("--bucket-ms: at least 10");
      break;
    default:
      usage_error("usage: loadgen [--proto tcp|hsp] [--server-netns NS] "
                  "[--client-netns NS] "
                  "[--addr A] [--clients K] [--seconds S] [--rate R] [--bucket-ms MS]");
    }
  }
  return options;
}

}  // namespace

int main(int argc, char **argv)
{
  Options options = parse(argc, argv);
  try {
    Listener listener(options);
    std::vector<ClientResult> results(options.clients);
    std::vector<std::thread> clients;
    auto start = Clock::now();
    for (unsigned i = 0; i < options.clients; i++)
      clients.emplace_back(run_client, std::cref(options), i, listener.port(), start,
                           std::ref(results[i]));
    for (std::thread &client : clients)
      client.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

    std::vector<uint64_t> buckets;
    uint64_t total = 0, errors = 0;
    int last_errno = 0;
    for (const ClientResult &result : results) {
      if (!result.failure.empty())
        throw std::runtime_error(result.failure);
      buckets.resize(std::max(buckets.size(), result.buckets.size()), 0);
      for (size_t i = 0; i < result.buckets.size(); i++) {
        buckets[i] += result.buckets[i];
        total += result.buckets[i];
      }
      errors += result.errors;
      if (result.last_errno)
        last_errno = result.last_errno;
    }
    std::printf("{\"proto\":\"%s\",\"clients\":%u,\"rate\":%.1f,\"seconds\":%.3f,\"handshakes\":%llu,"
                "\"per_second\":%.1f,\"errors\":%llu,\"last_error\":\"%s\",\"bucket_ms\":%u,"
                "\"buckets\":[",
                options.protocol == IPPROTO_TCP ? "tcp" : "hsp", options.clients, options.rate, elapsed,
                static_cast<unsigned long long>(total), total / elapsed,
                static_cast<unsigned long long>(errors),
                last_errno ? std::strerror(last_errno) : "", options.bucket_ms);
    for (size_t i = 0; i < buckets.size(); i++)
      std::printf("%s%llu", i ? "," : "", static_cast<unsigned long long>(buckets[i]));
    std::printf("]}\n");
  } catch (const std::exception &e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 1;
  }
  return 0;
}
