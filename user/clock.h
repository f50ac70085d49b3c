// SPDX-License-Identifier: GPL-2.0
#pragma once

#include <time.h>

#include <cstdint>

namespace qwatch {

// @clock now, in ns: CLOCK_MONOTONIC is the clock of the events' ts_ns.
inline uint64_t clock_ns(clockid_t clock)
{
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace qwatch
