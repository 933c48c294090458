// Tests of the metrics primitives: histogram buckets, snapshots, addresses.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace cosmos {
namespace {

TEST(MetricHistogram, CountsEachSampleInTheFirstBucketAtOrAboveIt) {
  MetricHistogram h;
  h.ObserveNs(5'000);           // <= 10 us
  h.ObserveNs(10'000);          // <= 10 us (bounds are inclusive)
  h.ObserveNs(10'001);          // <= 25 us
  h.ObserveNs(3'000'000);       // <= 5 ms
  h.ObserveNs(60'000'000'000);  // above 10 s: only in +Inf
  MetricHistogram::Snapshot s = h.Snap();
  ASSERT_EQ(s.bounds_seconds.size(), MetricHistogram::kBoundsNs.size());
  EXPECT_DOUBLE_EQ(s.bounds_seconds[0], 10e-6);
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.cumulative[1], 3u);
  EXPECT_EQ(s.cumulative[7], 3u);  // <= 2.5 ms
  EXPECT_EQ(s.cumulative[8], 4u);  // <= 5 ms
  EXPECT_EQ(s.cumulative.back(), 4u);
  EXPECT_EQ(s.count, 5u);
  EXPECT_NEAR(s.sum_seconds, 60.003025001, 1e-6);
}

TEST(MetricHistogram, ConcurrentObserversLoseNoSample) {
  MetricHistogram h;
  MetricCounter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) {
        h.ObserveNs(static_cast<uint64_t>(i) * 1000);
        c.Add();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.Snap().count, 40'000u);
  EXPECT_EQ(c.value(), 40'000u);
}

TEST(MetricFamily, HelpersBuildPointsWithLabels) {
  std::vector<MetricFamily> out;
  MetricFamily& f = AddMetricFamily(&out, "cosmos_ops_total", "ops", MetricType::kCounter);
  AddMetricPoint(f, 3, {{"opcode", "write"}});
  MetricHistogram h;
  h.ObserveNs(1);
  MetricFamily& g = AddMetricFamily(&out, "cosmos_x_seconds", "x", MetricType::kHistogram);
  AddMetricHistogram(g, h);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].points[0].labels[0].second, "write");
  EXPECT_EQ(out[0].points[0].value, 3);
  EXPECT_EQ(out[1].points[0].histogram.count, 1u);
}

TEST(MetricsAddress, ParsesIpv4AndBracketedIpv6) {
  auto a = ParseMetricsAddress("127.0.0.1:9464");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9464);
  EXPECT_EQ(a->ToString(), "127.0.0.1:9464");
  auto b = ParseMetricsAddress("[::1]:0");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  EXPECT_EQ(b->ToString(), "[::1]:0");
}

TEST(MetricsAddress, RefusesMalformedAddresses) {
  for (const char* bad :
       {"", "9464", "localhost:9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536",
        "127.0.0.1:-1", "::1:9464", "[::1]", "[127.0.0.1]:1", "256.0.0.1:80", "127.0.0.1:80x"}) {
    auto a = ParseMetricsAddress(bad);
    EXPECT_FALSE(a.ok()) << "accepted '" << bad << "'";
    if (!a.ok()) {
      EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace cosmos
