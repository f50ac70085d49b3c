// SPDX-License-Identifier: GPL-2.0
// Log2 latency histograms the probes keep (struct qwatch_log2_histogram),
// printed as the bcc tools print theirs and exported as Prometheus
// histograms.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "qwatch.h"

namespace qwatch {

class Log2Histogram {
 public:
  // The probes' layout (struct qwatch_log2_histogram): bucket i counts
  // values in [2^i, 2^(i+1)) microseconds; bucket 0 also everything below
  // 1 us, the last everything above.
  static constexpr size_t kBuckets = QWATCH_LOG2_BUCKETS;

  // The probes' histogram as just read from their map.
  void assign(const qwatch_log2_histogram &histogram);

  // The buckets' sum: read one by one while the probes add to them, a
  // separate count could be smaller than their sum.
  uint64_t count() const { return count_; }
  uint64_t sum_ns() const { return histogram_.sum_ns; }
  uint64_t bucket(size_t i) const { return histogram_.buckets[i]; }
  // Upper bound (exclusive) of bucket i, in microseconds.
  static uint64_t bucket_limit_us(size_t i) { return uint64_t{2} << i; }

  // "     usecs  : count    distribution" lines, like bcc's print_log2_hist.
  void print(std::FILE *out, const std::string &title) const;

 private:
  qwatch_log2_histogram histogram_{};
  uint64_t count_ = 0;
};

}  // namespace qwatch
