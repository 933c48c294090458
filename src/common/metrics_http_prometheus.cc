// MetricsHttpServer backend: prometheus-cpp's pull Exposer (civetweb). Our
// own counters and histograms (common/metrics.h) are converted at scrape time
// by a Collectable, so the data path never touches prometheus-cpp (whose
// Histogram::Observe takes a mutex).
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <exception>
#include <limits>

#include "common/metrics_http.h"

namespace cosmos {
namespace {

prometheus::MetricType ToPrometheus(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return prometheus::MetricType::Counter;
    case MetricType::kGauge:
      return prometheus::MetricType::Gauge;
    case MetricType::kHistogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}

class Collector final : public prometheus::Collectable {
 public:
  explicit Collector(MetricsCollector collect) : collect_(std::move(collect)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<MetricFamily> ours;
    collect_(&ours);
    std::vector<prometheus::MetricFamily> out;
    out.reserve(ours.size());
    for (const MetricFamily& f : ours) {
      prometheus::MetricFamily& pf = out.emplace_back();
      pf.name = f.name;
      pf.help = f.help;
      pf.type = ToPrometheus(f.type);
      for (const MetricPoint& p : f.points) {
        prometheus::ClientMetric& m = pf.metric.emplace_back();
        for (const auto& [name, value] : p.labels) m.label.push_back({name, value});
        switch (f.type) {
          case MetricType::kCounter:
            m.counter.value = p.value;
            break;
          case MetricType::kGauge:
            m.gauge.value = p.value;
            break;
          case MetricType::kHistogram: {
            const MetricHistogram::Snapshot& h = p.histogram;
            m.histogram.sample_count = h.count;
            m.histogram.sample_sum = h.sum_seconds;
            for (size_t i = 0; i < h.bounds_seconds.size(); ++i) {
              m.histogram.bucket.push_back({h.cumulative[i], h.bounds_seconds[i]});
            }
            m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
            break;
          }
        }
      }
    }
    return out;
  }

 private:
  MetricsCollector collect_;
};

class PrometheusHttpServer final : public MetricsHttpServer {
 public:
  PrometheusHttpServer(std::unique_ptr<prometheus::Exposer> exposer,
                       std::shared_ptr<Collector> collector, uint16_t port)
      : exposer_(std::move(exposer)), collector_(std::move(collector)), port_(port) {}
  ~PrometheusHttpServer() override {
    exposer_.reset();  // stops civetweb (joins its threads) before the collector goes
  }
  uint16_t port() const override { return port_; }

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<Collector> collector_;
  uint16_t port_;
};

}  // namespace

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(const MetricsAddress& address,
                                                                    MetricsCollector collect) {
  // civetweb reports a bind failure by throwing from the Exposer's
  // constructor; it stops here (COSMOS code does not throw).
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // One HTTP worker thread: scrapes are rare; it sleeps in between.
    exposer = std::make_unique<prometheus::Exposer>(address.ToString(), /*num_threads=*/1);
  } catch (const std::exception& e) {
    return Status::IoError("metrics: cannot listen on " + address.ToString() + ": " + e.what());
  }
  auto collector = std::make_shared<Collector>(std::move(collect));
  exposer->RegisterCollectable(collector, "/metrics");
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return Status::IoError("metrics: no listening port on " + address.ToString());
  }
  return std::unique_ptr<MetricsHttpServer>(std::make_unique<PrometheusHttpServer>(
      std::move(exposer), std::move(collector), static_cast<uint16_t>(ports.front())));
}

}  // namespace cosmos
