// SPDX-License-Identifier: GPL-2.0
#include "histogram.h"

#include <algorithm>
#include <bit>

namespace qwatch {

void Log2Histogram::record(uint64_t ns)
{
  uint64_t us = ns / 1000;
  size_t slot = us ? static_cast<size_t>(std::bit_width(us) - 1) : 0;
  if (slot >= kBuckets)
    slot = kBuckets - 1;
  buckets_[slot]++;
  count_++;
  sum_ns_ += ns;
}

void Log2Histogram::print(std::FILE *out, const std::string &title) const
{
  constexpr int kStars = 40;
  size_t last = 0;
  uint64_t most = 0;
  for (size_t i = 0; i < kBuckets; i++) {
    if (buckets_[i]) {
      last = i;
      most = std::max(most, buckets_[i]);
    }
  }
  std::fprintf(out, "%s\n%24s : %-8s |%-*s|\n", title.c_str(), "usecs", "count", kStars,
               "distribution");
  for (size_t i = 0; i <= last; i++) {
    uint64_t low = i ? uint64_t{1} << i : 0;
    uint64_t high = bucket_limit_us(i) - 1;
    int stars = most ? static_cast<int>(buckets_[i] * kStars / most) : 0;
    std::fprintf(out, "%10llu -> %-10llu : %-8llu |%-*s|\n", static_cast<unsigned long long>(low),
                 static_cast<unsigned long long>(high),
                 static_cast<unsigned long long>(buckets_[i]), kStars,
                 std::string(static_cast<size_t>(stars), '*').c_str());
  }
}

}  // namespace qwatch
