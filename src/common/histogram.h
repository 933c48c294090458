// LatencyHistogram: fixed-memory log-linear histogram of non-negative integer
// samples (nanoseconds by convention) with ~1.6% relative precision, for
// p50/p99/p999 reporting in counters, tools and benchmarks.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cosmos {

// Records values in [0, 2^48). Larger values are clamped into the top bucket.
// Thread-safety: none; use one histogram per thread and Merge().
class LatencyHistogram {
 public:
  LatencyHistogram() { Reset(); }

  void Record(uint64_t value);
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }

  // Value at quantile q in [0, 1] (0.5 = median, 0.99 = p99); 0 if empty.
  // Returns the upper bound of the bucket holding the q-th sample, clamped
  // to [min, max], so the error is at most one bucket width (~1.6%).
  uint64_t Percentile(double q) const;

  // "n=.. min=.. p50=.. p99=.. p999=.. max=.." with values divided by `scale`
  // (e.g. 1000 for ns -> us) and the given unit suffix.
  std::string Summary(double scale = 1.0, const char* unit = "ns") const;

 private:
  static constexpr int kSubBucketBits = 6;  // 64 linear sub-buckets per power of two
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  static constexpr int kMaxBits = 48;
  static constexpr int kBuckets = (kMaxBits - kSubBucketBits + 1) * kSubBuckets;

  static int BucketOf(uint64_t value);
  static uint64_t UpperBoundOf(int bucket);

  std::array<uint64_t, kBuckets> buckets_;
  uint64_t count_;
  uint64_t sum_;
  uint64_t min_;
  uint64_t max_;
};

}  // namespace cosmos
