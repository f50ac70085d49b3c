// SPDX-License-Identifier: GPL-2.0
#include "delay_meter.h"

#include <algorithm>

#include "clock.h"
#include "json.h"

namespace qwatch {

void DelayMeter::record(uint64_t event_ts_ns)
{
  events_++;
  if (samples_ns_.size() < kMaxSamples)
    samples_ns_.push_back(clock_ns(CLOCK_MONOTONIC) - event_ts_ns);
}

std::string DelayMeter::json(uint64_t lost, uint64_t uncounted, const char *attach)
{
  std::sort(samples_ns_.begin(), samples_ns_.end());
  auto percentile = [this](double p) {
    return samples_ns_.empty() ? 0 : samples_ns_[static_cast<size_t>(p * (samples_ns_.size() - 1))];
  };
  return JsonObject()
      .number("events", events_)
      .number("lost", lost)
      .number("uncounted", uncounted)
      .string("attach", attach)
      .number("delay_p50_ns", percentile(0.5))
      .number("delay_p99_ns", percentile(0.99))
      .str();
}

}  // namespace qwatch
