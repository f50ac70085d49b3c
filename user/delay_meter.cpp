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

void DelayMeter::record_resync(uint64_t elapsed_ns)
{
  if (resyncs_ns_.size() < kMaxSamples)
    resyncs_ns_.push_back(elapsed_ns);
}

std::string DelayMeter::json(uint64_t lost, uint64_t uncounted, const char *attach)
{
  std::sort(samples_ns_.begin(), samples_ns_.end());
  std::sort(resyncs_ns_.begin(), resyncs_ns_.end());
  auto percentile = [](const std::vector<uint64_t> &sorted, double p) {
    return sorted.empty() ? 0 : sorted[static_cast<size_t>(p * (sorted.size() - 1))];
  };
  return JsonObject()
      .number("events", events_)
      .number("lost", lost)
      .number("uncounted", uncounted)
      .string("attach", attach)
      .number("delay_p50_ns", percentile(samples_ns_, 0.5))
      .number("delay_p99_ns", percentile(samples_ns_, 0.99))
      .number("resyncs", resyncs_ns_.size())
      .number("resync_p50_ns", percentile(resyncs_ns_, 0.5))
      .number("resync_max_ns", percentile(resyncs_ns_, 1.0))
      .str();
}

}  // namespace qwatch
