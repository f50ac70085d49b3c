// SPDX-License-Identifier: GPL-2.0
// Log2 latency histograms, printed as the bcc tools print theirs and
// exported as Prometheus histograms.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>

namespace qwatch {

class Log2Histogram {
 public:
  // Bucket i counts values in [2^i, 2^(i+1)) microseconds; bucket 0 also
  // takes everything below 1 us.
  static constexpr size_t kBuckets = 40;

  void record(uint64_t ns);

  uint64_t count() const { return count_; }
  uint64_t sum_ns() const { return sum_ns_; }
  uint64_t bucket(size_t i) const { return buckets_[i]; }
  // Upper bound (exclusive) of bucket i, in microseconds.
  static uint64_t bucket_limit_us(size_t i) { return uint64_t{2} << i; }

  // "     usecs  : count    distribution" lines, like bcc's print_log2_hist.
  void print(std::FILE *out, const std::string &title) const;

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
};

}  // namespace qwatch
