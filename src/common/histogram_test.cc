// Tests for LatencyHistogram percentiles and merging.
#include "common/histogram.h"

#include <gtest/gtest.h>

namespace cosmos {
namespace {

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 50; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(0.5), 25u);
  EXPECT_EQ(h.Percentile(1.0), 50u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 25.5);
}

TEST(LatencyHistogram, LargeValuesWithinRelativePrecision) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);
  const double p50 = static_cast<double>(h.Percentile(0.5));
  const double p99 = static_cast<double>(h.Percentile(0.99));
  EXPECT_NEAR(p50, 50000.0 * 1000, 50000.0 * 1000 * 0.02);
  EXPECT_NEAR(p99, 99000.0 * 1000, 99000.0 * 1000 * 0.02);
  EXPECT_EQ(h.Percentile(1.0), 100000u * 1000);
}

TEST(LatencyHistogram, HugeValuesAreClampedNotLost) {
  LatencyHistogram h;
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.max(), UINT64_MAX);
}

TEST(LatencyHistogram, MergeAddsCounts) {
  LatencyHistogram a, b;
  for (int i = 0; i < 10; ++i) a.Record(10);
  for (int i = 0; i < 10; ++i) b.Record(1000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 20u);
  EXPECT_EQ(a.min(), 10u);
  EXPECT_EQ(a.max(), 1000u);
  EXPECT_EQ(a.Percentile(0.25), 10u);
  EXPECT_NE(a.Summary(1000.0, "us").find("n=20"), std::string::npos);
}

}  // namespace
}  // namespace cosmos
