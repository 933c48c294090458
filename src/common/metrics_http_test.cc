// Tests of the metrics HTTP exporter: a scrape returns our families in the
// Prometheus text format; a taken port is a clean error.
#include "common/metrics_http.h"

#include <gtest/gtest.h>

#include <atomic>

#include "common/testing/prometheus_scrape.h"

namespace cosmos {
namespace {

using testing::HttpBody;
using testing::HttpGet;
using testing::ParsePrometheusText;

MetricsAddress Loopback(uint16_t port) {
  return ParseMetricsAddress("127.0.0.1:" + std::to_string(port)).value();
}

#ifdef COSMOS_HAVE_PROMETHEUS

TEST(MetricsHttpServer, ServesCountersGaugesAndHistogramsAsPrometheusText) {
  MetricCounter ops;
  MetricHistogram latency;
  std::atomic<int> scrapes{0};
  auto server = MetricsHttpServer::Start(Loopback(0), [&](std::vector<MetricFamily>* out) {
    ++scrapes;
    MetricFamily& f =
        AddMetricFamily(out, "cosmos_ops_total", "Ops executed.", MetricType::kCounter);
    AddMetricPoint(f, static_cast<double>(ops.value()), {{"opcode", "write"}});
    AddMetricPoint(AddMetricFamily(out, "cosmos_resyncs_running", "Resyncs.", MetricType::kGauge),
                   2);
    AddMetricHistogram(AddMetricFamily(out, "cosmos_flush_duration_seconds", "Flush latency.",
                                       MetricType::kHistogram),
                       latency);
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_NE((*server)->port(), 0);
  ops.Add(7);
  latency.ObserveNs(30'000);   // <= 50 us
  latency.ObserveNs(700'000);  // <= 1 ms
  auto response = HttpGet((*server)->port(), "/metrics");
  ASSERT_TRUE(response.has_value());
  ASSERT_NE(response->substr(0, response->find("\r\n")).find(" 200 "), std::string::npos)
      << *response;
  const std::string body = HttpBody(*response);
  EXPECT_NE(body.find("# TYPE cosmos_ops_total counter"), std::string::npos) << body;
  EXPECT_NE(body.find("# TYPE cosmos_flush_duration_seconds histogram"), std::string::npos);
  auto samples = ParsePrometheusText(body);
  EXPECT_EQ(samples["cosmos_ops_total{opcode=\"write\"}"], 7);
  EXPECT_EQ(samples["cosmos_resyncs_running"], 2);
  EXPECT_EQ(samples["cosmos_flush_duration_seconds_count"], 2);
  EXPECT_EQ(samples["cosmos_flush_duration_seconds_bucket{le=\"2.5e-05\"}"], 0);
  EXPECT_EQ(samples["cosmos_flush_duration_seconds_bucket{le=\"5e-05\"}"], 1);
  EXPECT_EQ(samples["cosmos_flush_duration_seconds_bucket{le=\"0.001\"}"], 2);
  EXPECT_EQ(samples["cosmos_flush_duration_seconds_bucket{le=\"+Inf\"}"], 2);
  EXPECT_NEAR(samples["cosmos_flush_duration_seconds_sum"], 0.00073, 1e-9);
  EXPECT_GE(scrapes.load(), 1);
}

TEST(MetricsHttpServer, OtherPathsAreNotFound) {
  auto server = MetricsHttpServer::Start(Loopback(0), [](std::vector<MetricFamily>*) {});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto response = HttpGet((*server)->port(), "/other");
  ASSERT_TRUE(response.has_value());
  EXPECT_NE(response->substr(0, response->find("\r\n")).find(" 404 "), std::string::npos)
      << *response;
}

TEST(MetricsHttpServer, APortInUseIsAnIoErrorNotACrash) {
  auto first = MetricsHttpServer::Start(Loopback(0), [](std::vector<MetricFamily>*) {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second =
      MetricsHttpServer::Start(Loopback((*first)->port()), [](std::vector<MetricFamily>*) {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIoError);
  EXPECT_NE(second.status().message().find(std::to_string((*first)->port())), std::string::npos)
      << second.status().ToString();
}

#else

TEST(MetricsHttpServer, ABuildWithoutPrometheusRefusesToStart) {
  auto server = MetricsHttpServer::Start(Loopback(0), [](std::vector<MetricFamily>*) {});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kFailedPrecondition);
}

#endif

}  // namespace
}  // namespace cosmos
