// Metrics primitives: histogram buckets, snapshot helpers, address parsing.
#include "common/metrics.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace cosmos {

void MetricHistogram::ObserveNs(uint64_t ns) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(kBoundsNs.begin(), kBoundsNs.end(), ns) - kBoundsNs.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
}

MetricHistogram::Snapshot MetricHistogram::Snap() const {
  Snapshot s;
  uint64_t running = 0;
  for (size_t i = 0; i < kBoundsNs.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.bounds_seconds.push_back(static_cast<double>(kBoundsNs[i]) / 1e9);
    s.cumulative.push_back(running);
  }
  running += buckets_[kBoundsNs.size()].load(std::memory_order_relaxed);
  s.count = running;
  s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

MetricFamily& AddMetricFamily(std::vector<MetricFamily>* out, std::string name, std::string help,
                              MetricType type) {
  MetricFamily& f = out->emplace_back();
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void AddMetricPoint(MetricFamily& family, double value, MetricLabels labels) {
  MetricPoint& p = family.points.emplace_back();
  p.labels = std::move(labels);
  p.value = value;
}

void AddMetricHistogram(MetricFamily& family, const MetricHistogram& histogram,
                        MetricLabels labels) {
  MetricPoint& p = family.points.emplace_back();
  p.labels = std::move(labels);
  p.histogram = histogram.Snap();
}

std::string MetricsAddress::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<MetricsAddress> ParseMetricsAddress(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("metrics listen address '" + std::string(text) +
                                   "': " + std::string(why) +
                                   " (expected HOST:PORT with an IPv4 address, or [IPv6]:PORT, "
                                   "e.g. 127.0.0.1:9464 or [::1]:9464)");
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  MetricsAddress a;
  a.host = std::string(host);
  in_addr v4{};
  in6_addr v6{};
  if (bracketed ? inet_pton(AF_INET6, a.host.c_str(), &v6) != 1
                : inet_pton(AF_INET, a.host.c_str(), &v4) != 1) {
    return bad(bracketed ? "not an IPv6 address" : "not an IPv4 address");
  }
  uint32_t port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("port is not a number in 0..65535");
  }
  a.port = static_cast<uint16_t>(port);
  return a;
}

}  // namespace cosmos
