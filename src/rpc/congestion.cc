// Delay-based AIMD rate control (after Swift) and the token-bucket pacer.
#include "rpc/congestion.h"

#include <algorithm>
#include <cmath>

namespace cosmos::rpc {

RateController::RateController(const CongestionOptions& options)
    : options_(options), rate_(options.max_rate) {}

uint64_t RateController::target_ns() const {
  const double lo = 1.0 / std::sqrt(options_.max_rate);
  const double hi = 1.0 / std::sqrt(options_.min_rate);
  const double x = std::clamp((1.0 / std::sqrt(rate_) - lo) / (hi - lo), 0.0, 1.0);
  return options_.target_delay_ns +
         static_cast<uint64_t>(x * static_cast<double>(options_.flow_scaling_range_ns));
}

uint64_t RateController::Interval() const {
  return std::max(options_.min_update_interval_ns, srtt_ns_);
}

void RateController::OnRttSample(uint64_t rtt_ns, uint64_t now_ns) {
  if (rtt_ns == 0) rtt_ns = 1;
  min_rtt_ns_ = min_rtt_ns_ == 0 ? rtt_ns : std::min(min_rtt_ns_, rtt_ns);
  // One decision per update interval (about one RTT, as estimated before
  // this sample): a window's worth of samples reports the same queue, and
  // reacting to each would multiply the decrease (Swift decreases at most
  // once per RTT for the same reason).
  const uint64_t interval = Interval();
  const uint64_t elapsed = now_ns - last_update_ns_;
  srtt_ns_ = srtt_ns_ == 0 ? rtt_ns : (7 * srtt_ns_ + rtt_ns) / 8;
  if (updated_ && elapsed < interval) return;
  if (rtt_ns <= target_ns()) {
    // A slow session samples less often than once per interval: it gets
    // the increases of the intervals it missed (up to 8), so the increase
    // per unit of time is the same for every session.
    const double missed =
        updated_ ? std::min<double>(8.0, static_cast<double>(elapsed) / interval) : 1.0;
    const double steps =
        1.0 + increases_in_a_row_ / std::max<uint32_t>(1, options_.increase_growth);
    rate_ = std::min(options_.max_rate, rate_ + options_.additive_increase * steps * missed);
    ++increases_in_a_row_;
  } else {
    increases_in_a_row_ = 0;
    const uint64_t target = target_ns();
    const double over = static_cast<double>(rtt_ns - target) / static_cast<double>(rtt_ns);
    const double factor = std::max(1.0 - options_.beta * over, 1.0 - options_.max_decrease);
    rate_ = std::max(options_.min_rate, rate_ * factor);
  }
  last_update_ns_ = now_ns;
  updated_ = true;
}

void RateController::OnUpperBoundSample(uint64_t rtt_ns, uint64_t now_ns) {
  if (rtt_ns > target_ns()) return;
  OnRttSample(rtt_ns, now_ns);
}

void RateController::OnTimeout(uint64_t now_ns) {
  increases_in_a_row_ = 0;
  rate_ = std::max(options_.min_rate, rate_ * (1.0 - options_.max_decrease));
  last_update_ns_ = now_ns;
  updated_ = true;
}

uint64_t Pacer::Reserve(size_t bytes, double rate, size_t burst_bytes, uint64_t now_ns) {
  const double depth = static_cast<double>(std::max(burst_bytes, bytes));
  if (!primed_) {
    tokens_ = depth;
    last_ns_ = now_ns;
    primed_ = true;
  }
  if (now_ns > last_ns_) {
    tokens_ = std::min(depth, tokens_ + rate * static_cast<double>(now_ns - last_ns_) * 1e-9);
    last_ns_ = now_ns;
  }
  const double need = static_cast<double>(bytes);
  if (tokens_ >= need) {
    tokens_ -= need;
    return 0;
  }
  return static_cast<uint64_t>((need - tokens_) / rate * 1e9) + 1;
}

}  // namespace cosmos::rpc
