// Tests of the rate controller and the pacer with a fake clock, and of
// convergence and fairness of many controllers on a simulated bottleneck
// (a fluid queue model, no real time anywhere).
#include "rpc/congestion.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace cosmos::rpc {
namespace {

constexpr uint64_t kUs = 1000;

TEST(RateController, StartsUnlimitedAndStaysThereBelowTheTarget) {
  CongestionOptions o;
  RateController rc(o);
  EXPECT_TRUE(rc.unlimited());
  uint64_t now = 0;
  for (int i = 0; i < 1000; ++i) {
    now += 50 * kUs;
    rc.OnRttSample(40 * kUs + (i % 7) * kUs, now);  // jitter well inside the target
  }
  EXPECT_TRUE(rc.unlimited());
  EXPECT_EQ(rc.rate(), o.max_rate);
  EXPECT_EQ(rc.min_rtt_ns(), 40 * kUs);
}

TEST(RateController, DecreasesOncePerIntervalInProportionToTheExcessDelay) {
  CongestionOptions o;
  RateController rc(o);
  uint64_t now = 1'000'000;
  rc.OnRttSample(100 * kUs, now);
  ASSERT_EQ(rc.target_ns(), 150 * kUs);  // at the ceiling: no flow scaling
  const double before = rc.rate();
  now += 200 * kUs;
  rc.OnRttSample(300 * kUs, now);  // 150 us over target: factor 1 - 0.8 * 150/300 = 0.6
  EXPECT_DOUBLE_EQ(rc.rate(), before * 0.6);
  // Further samples within the same interval (srtt) report the same queue: no change.
  const double after_one = rc.rate();
  rc.OnRttSample(300 * kUs, now + 10 * kUs);
  rc.OnRttSample(900 * kUs, now + 20 * kUs);
  EXPECT_DOUBLE_EQ(rc.rate(), after_one);
  // A huge delay decreases by at most max_decrease.
  now += 10'000 * kUs;
  rc.OnRttSample(100'000 * kUs, now);
  EXPECT_DOUBLE_EQ(rc.rate(), after_one * (1 - o.max_decrease));
  EXPECT_FALSE(rc.unlimited());
}

TEST(RateController, NeverFallsBelowTheFloorAndClimbsBackToUnlimited) {
  CongestionOptions o;
  RateController rc(o);
  uint64_t now = 0;
  rc.OnRttSample(50 * kUs, now);
  for (int i = 0; i < 200; ++i) {
    now += 100'000 * kUs;
    rc.OnTimeout(now);
  }
  EXPECT_EQ(rc.rate(), o.min_rate);
  // Back below target: increases whose step grows with the run length.
  int intervals = 0;
  while (!rc.unlimited()) {
    now += 60 * kUs;
    rc.OnRttSample(55 * kUs, now);
    ASSERT_LT(++intervals, 100'000);
  }
  // From 1 Mbit/s to 10 Gbit/s: steps of 0.5 Mbit/s growing by one every 8
  // increases take about sqrt(2 x 8 x 20000) ~ 566 intervals, not 20000.
  EXPECT_LT(intervals, 1000);
  EXPECT_GT(intervals, 100);
}

// Round trips that include server work (single-packet requests) bound the
// network delay from above: below the target they prove the path idle and
// let a session cut by timeouts climb back; above it they say nothing.
TEST(RateController, UpperBoundSamplesRaiseTheRateOnlyBelowTheTarget) {
  CongestionOptions o;
  RateController rc(o);
  uint64_t now = 0;
  for (int i = 0; i < 200; ++i) {
    now += 100'000 * kUs;
    rc.OnTimeout(now);
  }
  ASSERT_EQ(rc.rate(), o.min_rate);
  for (int i = 0; i < 1000; ++i) {
    now += 3000 * kUs;
    rc.OnUpperBoundSample(2000 * kUs, now);  // far above target: maybe server time
  }
  EXPECT_EQ(rc.rate(), o.min_rate);
  int intervals = 0;
  while (!rc.unlimited()) {
    now += 60 * kUs;
    rc.OnUpperBoundSample(55 * kUs, now);
    ASSERT_LT(++intervals, 100'000);
  }
  EXPECT_LT(intervals, 1000);
}

TEST(Pacer, SendsABurstAtOnceThenSpacesPacketsAtTheRate) {
  Pacer p;
  const double rate = 1e6;  // 1 MB/s: 1000 bytes per ms
  uint64_t now = 5'000'000;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(p.Reserve(1000, rate, 4000, now), 0u) << i;
  const uint64_t wait = p.Reserve(1000, rate, 4000, now);
  EXPECT_NEAR(static_cast<double>(wait), 1e6, 1e3);  // one packet's worth: 1 ms
  now += wait;
  EXPECT_EQ(p.Reserve(1000, rate, 4000, now), 0u);
  // Idle for long: the bucket refills to its depth only.
  now += 1'000'000'000;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(p.Reserve(1000, rate, 4000, now), 0u);
  EXPECT_GT(p.Reserve(1000, rate, 4000, now), 0u);
}

// A fluid model of one bottleneck: flows send at their controller's rate
// into a FIFO queue drained at `capacity` bytes/s; a full buffer drops
// (the flow sees a timeout); each packet a flow delivers yields an RTT
// sample of base + queue / capacity. Flows start one after another.
struct LinkResult {
  double jain = 0;
  double utilization = 0;
  double max_queue_delay_us = 0;  // over the measured window
  uint64_t drops_in_window = 0;
};

LinkResult SimulateLink(int flows, double capacity, uint64_t base_rtt_ns, double buffer_bytes,
                        uint64_t duration_ns, uint64_t start_gap_ns) {
  CongestionOptions o;
  std::vector<RateController> rc(flows, RateController(o));
  std::vector<double> to_next_sample(flows, 0), delivered(flows, 0);
  const double packet = 1472;
  const uint64_t dt = 10'000;  // 10 us steps
  const uint64_t window_start = duration_ns * 2 / 3;
  double queue = 0;
  LinkResult r;
  for (uint64_t now = 0; now < duration_ns; now += dt) {
    const bool measuring = now >= window_start;
    double offered = 0;
    std::vector<double> sent(flows, 0);
    for (int i = 0; i < flows; ++i) {
      if (now < static_cast<uint64_t>(i) * start_gap_ns) continue;
      sent[i] = rc[i].rate() * dt * 1e-9;
      offered += sent[i];
    }
    const double drained = capacity * dt * 1e-9;
    const double space = buffer_bytes - queue;
    const double accepted = std::min(offered, space + drained);
    queue = std::max(0.0, queue + accepted - drained);
    const uint64_t rtt = base_rtt_ns + static_cast<uint64_t>(queue / capacity * 1e9);
    if (measuring) r.max_queue_delay_us = std::max(r.max_queue_delay_us, queue / capacity * 1e6);
    for (int i = 0; i < flows; ++i) {
      if (sent[i] == 0) continue;
      const double share = offered > 0 ? sent[i] / offered : 0;
      if (accepted < offered) {  // the buffer overflowed: every sender loses packets
        rc[i].OnTimeout(now);
        if (measuring) ++r.drops_in_window;
      }
      const double got = std::min(drained, offered + queue) * share;
      if (measuring) delivered[i] += got;
      to_next_sample[i] += sent[i];
      while (to_next_sample[i] >= packet) {
        to_next_sample[i] -= packet;
        rc[i].OnRttSample(rtt, now);
      }
    }
  }
  double sum = 0, sum_sq = 0;
  for (double d : delivered) {
    sum += d;
    sum_sq += d * d;
  }
  r.jain = sum * sum / (flows * sum_sq);
  r.utilization = sum / (capacity * (duration_ns - window_start) * 1e-9);
  return r;
}

class SimulatedBottleneck : public ::testing::TestWithParam<int> {};

TEST_P(SimulatedBottleneck, FlowsConvergeToAFairShareWithAShortQueue) {
  const int flows = GetParam();
  const double capacity = 25e6;  // 200 Mbit/s
  // 256 KB buffer (10 ms at this rate), 60 us base RTT; flows join 20 ms apart.
  LinkResult r = SimulateLink(flows, capacity, 60'000, 256 * 1024, 3'000'000'000ull, 20'000'000);
  SCOPED_TRACE(testing::Message() << flows << " flows: jain " << r.jain << ", utilization "
                                  << r.utilization << ", max queue " << r.max_queue_delay_us
                                  << " us, drops " << r.drops_in_window);
  EXPECT_GE(r.jain, 0.9) << flows << " flows";
  EXPECT_GE(r.utilization, 0.8) << flows << " flows";
  EXPECT_EQ(r.drops_in_window, 0u) << flows << " flows";
  // Queueing stays near the target (150-300 us) instead of filling the 10 ms buffer.
  EXPECT_LT(r.max_queue_delay_us, 1000) << flows << " flows";
}

INSTANTIATE_TEST_SUITE_P(Flows, SimulatedBottleneck, ::testing::Values(2, 8, 16, 32));

}  // namespace
}  // namespace cosmos::rpc
