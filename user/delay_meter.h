// SPDX-License-Identifier: GPL-2.0
// --stats: how long events take from the probe to the reader.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qwatch {

class DelayMeter {
 public:
  // An event stamped @event_ts_ns (CLOCK_MONOTONIC) has just been read.
  void record(uint64_t event_ts_ns);

  // The --stats line: events, @lost, @uncounted, @attach and the delays'
  // median and 99th percentile.
  std::string json(uint64_t lost, uint64_t uncounted, const char *attach);

 private:
  static constexpr size_t kMaxSamples = 1 << 22;
  uint64_t events_ = 0;
  std::vector<uint64_t> samples_ns_;
};

}  // namespace qwatch
