// SPDX-License-Identifier: GPL-2.0
// --stats: how long events take from the probe to the reader, and how long
// the reader's resyncs (snapshot of every listener, counters) take.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qwatch {

class DelayMeter {
 public:
  // An event stamped @event_ts_ns (CLOCK_MONOTONIC) has just been read.
  void record(uint64_t event_ts_ns);
  // A resync has just taken @elapsed_ns (CLOCK_MONOTONIC).
  void record_resync(uint64_t elapsed_ns);

  // The --stats line: events, @lost, @uncounted, @attach, the delays'
  // median and 99th percentile, and the resyncs' number, median and maximum.
  std::string json(uint64_t lost, uint64_t uncounted, const char *attach);

 private:
  static constexpr size_t kMaxSamples = 1 << 22;
  uint64_t events_ = 0;
  std::vector<uint64_t> samples_ns_;
  std::vector<uint64_t> resyncs_ns_;
};

}  // namespace qwatch
