// SPDX-License-Identifier: GPL-2.0
#include "histogram.h"

#include <algorithm>

namespace qwatch {

void Log2Histogram::assign(const qwatch_log2_histogram &histogram)
{
  histogram_ = histogram;
  count_ = 0;
  for (uint64_t n : histogram_.buckets)
    count_ += n;
}

void Log2Histogram::print(std::FILE *out, const std::string &title) const
{
  constexpr int kStars = 40;
  size_t last = 0;
  uint64_t most = 0;
  for (size_t i = 0; i < kBuckets; i++) {
    if (histogram_.buckets[i]) {
      last = i;
      most = std::max<uint64_t>(most, histogram_.buckets[i]);
    }
  }
  std::fprintf(out, "%s\n%24s : %-8s |%-*s|\n", title.c_str(), "usecs", "count", kStars,
               "distribution");
  for (size_t i = 0; i <= last; i++) {
    uint64_t low = i ? uint64_t{1} << i : 0;
    uint64_t high = bucket_limit_us(i) - 1;
    int stars = most ? static_cast<int>(histogram_.buckets[i] * kStars / most) : 0;
    std::fprintf(out, "%10llu -> %-10llu : %-8llu |%-*s|\n", static_cast<unsigned long long>(low),
                 static_cast<unsigned long long>(high),
                 static_cast<unsigned long long>(histogram_.buckets[i]), kStars,
                 std::string(static_cast<size_t>(stars), '*').c_str());
  }
}

}  // namespace qwatch
