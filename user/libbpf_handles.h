// SPDX-License-Identifier: GPL-2.0
// Owning handles for every libbpf object and file descriptor the reader
// holds, so that each one is released exactly once on every path.
#pragma once

#include "errors.h"
#include "file_descriptor.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstdarg>
#include <memory>
#include <string>
#include <utility>

namespace qwatch {

template <typename Skeleton>
struct SkeletonDeleter {
  void operator()(Skeleton *skel) const noexcept { Skeleton::destroy(skel); }
};
template <typename Skeleton>
using SkeletonPtr = std::unique_ptr<Skeleton, SkeletonDeleter<Skeleton>>;

struct RingBufferDeleter {
  void operator()(ring_buffer *rb) const noexcept { ring_buffer__free(rb); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

struct BtfDeleter {
  void operator()(btf *btf) const noexcept { btf__free(btf); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

struct LinkDeleter {
  void operator()(bpf_link *link) const noexcept { bpf_link__destroy(link); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

// libbpf's warnings since the last check(): when a program fails to load
// they name it and carry the verifier's log. Fed by the print callback
// (noexcept: it runs inside libbpf).
void record_libbpf_warning(const char *format, va_list args) noexcept;
// "program NAME rejected: <the verifier's last words>" for the last
// program that failed to load, or "" if none did; forgets the warnings.
std::string take_load_failure();

// Routes libbpf's messages: recorded for take_load_failure(), and printed
// on stderr only if @verbose (a failure is reported once, in one line, with
// what libbpf warned about it).
void print_libbpf_messages(bool verbose);

// libbpf >= 1.0: int-returning calls give -errno. A program the verifier
// rejected is named with its reason: the errno alone (often EACCES) would
// read as a missing privilege.
inline void check(int err, const std::string &what)
{
  std::string failure = take_load_failure();
  if (err < 0)
    throw SetupError(-err, failure.empty() ? what : what + ": " + failure);
}

// libbpf >= 1.0: pointer-returning calls give NULL and set errno.
template <typename T>
T *check_ptr(T *ptr, const std::string &what)
{
  if (!ptr)
    throw SetupError(errno, what);
  return ptr;
}

}  // namespace qwatch
