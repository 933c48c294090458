// Metrics: counters and latency histograms cheap enough for the data path
// (one relaxed atomic add each, no lock), and the neutral snapshot a scrape
// turns them into (MetricFamily), which an exporter (common/metrics_http.h)
// serves in the Prometheus text format. No exporter header is included here.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cosmos/result.h"

namespace cosmos {

// A monotonic count. Thread-safe; Add is one relaxed atomic add.
class MetricCounter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (e.g. resyncs running). Thread-safe.
class MetricGauge {
 public:
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Latency histogram with fixed buckets from 10 us to 10 s (Prometheus style:
// cumulative at snapshot time). Thread-safe; Observe is a short search over
// 19 bounds plus two relaxed atomic adds. A snapshot taken while others
// observe is not an atomic cut, but its count always equals its +Inf bucket.
class MetricHistogram {
 public:
  // Upper bounds in nanoseconds, ascending; one more bucket holds the rest.
  static constexpr std::array<uint64_t, 19> kBoundsNs = {
      10'000,        25'000,        50'000,        100'000,       250'000,
      500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
      25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
      1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

  struct Snapshot {
    std::vector<double> bounds_seconds;  // kBoundsNs in seconds
    std::vector<uint64_t> cumulative;    // samples <= bounds_seconds[i]
    uint64_t count = 0;                  // all samples (the +Inf bucket)
    double sum_seconds = 0;
  };

  void ObserveNs(uint64_t ns);
  Snapshot Snap() const;

 private:
  std::array<std::atomic<uint64_t>, kBoundsNs.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

enum class MetricType { kCounter, kGauge, kHistogram };

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// One time series of a family: its labels and value (counter, gauge) or
// histogram.
struct MetricPoint {
  MetricLabels labels;
  double value = 0;
  MetricHistogram::Snapshot histogram;  // kHistogram only
};

// A metric family as a scrape reports it. `name` follows the Prometheus
// conventions (cosmos_ prefix, unit suffix, _total for counters).
struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<MetricPoint> points;
};

// Appends an empty family to `out` and returns it (valid until `out` grows).
MetricFamily& AddMetricFamily(std::vector<MetricFamily>* out, std::string name, std::string help,
                              MetricType type);
// Appends one point (counter or gauge value) to `family`.
void AddMetricPoint(MetricFamily& family, double value, MetricLabels labels = {});
// Appends one histogram point to `family`.
void AddMetricHistogram(MetricFamily& family, const MetricHistogram& histogram,
                        MetricLabels labels = {});

// Where the metrics HTTP endpoint listens (cosmosd --metrics-listen).
struct MetricsAddress {
  std::string host;  // an IPv4 or IPv6 literal (IPv6 without brackets)
  uint16_t port = 0;
  // "HOST:PORT" with an IPv6 host in brackets (civetweb's and URLs' form).
  std::string ToString() const;
};

// Parses "HOST:PORT" (IPv4 literal) or "[IPv6]:PORT"; PORT 0..65535, 0 = an
// ephemeral port. InvalidArgument naming the text and the expected form.
Result<MetricsAddress> ParseMetricsAddress(std::string_view text);

}  // namespace cosmos
