// Log-linear bucketing: values below 64 map 1:1; above, each power of two is
// split into 64 equal sub-buckets.
#include "common/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

namespace cosmos {

int LatencyHistogram::BucketOf(uint64_t value) {
  const uint64_t max_value = (uint64_t{1} << kMaxBits) - 1;
  if (value > max_value) value = max_value;
  if (value < kSubBuckets) return static_cast<int>(value);
  const int msb = 63 - std::countl_zero(value);                    // >= kSubBucketBits
  const int shift = msb - kSubBucketBits;                          // >= 0
  const int sub = static_cast<int>(value >> shift) - kSubBuckets;  // [0, 64)
  return (shift + 1) * kSubBuckets + sub;
}

uint64_t LatencyHistogram::UpperBoundOf(int bucket) {
  if (bucket < kSubBuckets) return static_cast<uint64_t>(bucket);
  const int shift = bucket / kSubBuckets - 1;
  const uint64_t sub = static_cast<uint64_t>(bucket % kSubBuckets) + kSubBuckets;
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t value) {
  ++buckets_[BucketOf(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::Reset() {
  buckets_.fill(0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(UpperBoundOf(i), min(), max_);
  }
  return max_;
}

std::string LatencyHistogram::Summary(double scale, const char* unit) const {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "n=%llu min=%.2f%s p50=%.2f%s p99=%.2f%s p999=%.2f%s max=%.2f%s",
                static_cast<unsigned long long>(count_), min() / scale, unit,
                Percentile(0.5) / scale, unit, Percentile(0.99) / scale, unit,
                Percentile(0.999) / scale, unit, max() / scale, unit);
  return buf;
}

}  // namespace cosmos
