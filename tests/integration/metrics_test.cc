// cosmosd --metrics-listen as a process: a scrape of /metrics shows the ops,
// bytes, errors, flush latencies and RPC sessions the client caused, by the
// exact amounts; a bad or taken address stops the start with an error.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>

#include "common/testing/prometheus_scrape.h"
#include "cosmos/client.h"
#include "rpm_harness.h"

namespace {

using cosmos::testing::HttpBody;
using cosmos::testing::HttpGet;
using cosmos::testing::LoopbackTcpPort;
using cosmos::testing::ParsePrometheusText;
using Samples = std::map<std::string, double>;

// Starts `d` serving metrics on a free loopback port; returns the port. A
// port another process took between the probe and the bind is retried.
std::optional<uint16_t> StartWithMetrics(rpm_test::Daemon& d, const std::string& dir,
                                         std::vector<std::string> args) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    uint16_t port = LoopbackTcpPort(false).port;
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--metrics-listen", "127.0.0.1:" + std::to_string(port)});
    if (d.Start(dir, a)) return port;
  }
  return std::nullopt;
}

Samples Scrape(uint16_t port) {
  auto response = HttpGet(port, "/metrics");
  EXPECT_TRUE(response.has_value()) << "no answer from the metrics port " << port;
  if (!response) return {};
  EXPECT_NE(response->find(" 200 "), std::string::npos) << response->substr(0, 200);
  return ParsePrometheusText(HttpBody(*response));
}

// after[key] - before[key]; a key missing after the workload fails the test.
double Delta(const Samples& before, const Samples& after, const std::string& key) {
  auto a = after.find(key);
  EXPECT_NE(a, after.end()) << "no sample " << key;
  if (a == after.end()) return -1;
  auto b = before.find(key);
  return a->second - (b == before.end() ? 0 : b->second);
}

TEST(Metrics, ScrapeShowsTheClientsOpsBytesErrorsAndFlushLatencies) {
  rpm_test::TempDir dir;
  rpm_test::Daemon d;
  auto port = StartWithMetrics(d, dir.path, {"--pool", dir.path + "/main.pool,size=16M,create"});
  ASSERT_TRUE(port.has_value()) << "cosmosd did not start";
  const Samples before = Scrape(*port);
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(before.at("cosmos_rpc_workers_reporting"), 2);

  cosmos::ClientOptions o;
  o.server = d.address();
  auto c = cosmos::Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->CreateRegion("r", 1 << 20).ok());
  auto r = (*c)->OpenRegion("r");
  ASSERT_TRUE(r.ok()) << r.status();
  constexpr int kFlushes = 5;
  constexpr size_t kBlock = 4096;
  std::vector<std::byte> data(kBlock, std::byte{0x5a});
  for (int i = 0; i < kFlushes; ++i) {
    ASSERT_TRUE((*r)->Write(i * kBlock, data).ok());
    ASSERT_TRUE((*r)->Flush(i * kBlock, kBlock).ok());  // one WRITE+FLUSH batch
  }
  std::vector<std::byte> got(1000);
  ASSERT_TRUE((*r)->Read(0, got).ok());
  ASSERT_TRUE((*r)->Read(kBlock, got).ok());
  // Checked by the node (the client cannot know the name is absent).
  auto absent = (*c)->OpenRegion("absent");
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.status().code(), cosmos::StatusCode::kNotFound) << absent.status();

  const Samples after = Scrape(*port);
  auto delta = [&](const std::string& key) { return Delta(before, after, key); };
  EXPECT_EQ(delta("cosmos_ops_total{opcode=\"create_region\"}"), 1);
  EXPECT_EQ(delta("cosmos_ops_total{opcode=\"open_region\"}"), 2);
  EXPECT_EQ(delta("cosmos_ops_total{opcode=\"write\"}"), kFlushes);
  EXPECT_EQ(delta("cosmos_ops_total{opcode=\"flush\"}"), kFlushes);
  EXPECT_EQ(delta("cosmos_ops_total{opcode=\"read\"}"), 2);
  EXPECT_EQ(delta("cosmos_ops_total{opcode=\"verify\"}"), 0);
  EXPECT_EQ(delta("cosmos_written_bytes_total"), kFlushes * kBlock);
  EXPECT_EQ(delta("cosmos_read_bytes_total"), 2000);
  EXPECT_EQ(delta("cosmos_op_errors_total{code=\"not_found\"}"), 1);
  EXPECT_EQ(delta("cosmos_op_errors_total{code=\"out_of_range\"}"), 0);
  EXPECT_EQ(delta("cosmos_op_errors_total{code=\"io_error\"}"), 0);
  EXPECT_EQ(delta("cosmos_flush_duration_seconds_count"), kFlushes);
  EXPECT_EQ(delta("cosmos_flush_duration_seconds_bucket{le=\"+Inf\"}"), kFlushes);
  EXPECT_GT(delta("cosmos_flush_duration_seconds_sum"), 0);
  EXPECT_EQ(delta("cosmos_write_flush_batch_duration_seconds_count"), kFlushes);
  EXPECT_EQ(after.at("cosmos_rpc_workers_reporting"), 2);
  EXPECT_GE(after.at("cosmos_rpc_sessions"), 1);
  EXPECT_GE(delta("cosmos_rpc_sessions_connected_total"), 1);
  EXPECT_GT(delta("cosmos_rpc_packets_received_total"), 2 * kFlushes);
  EXPECT_GE(delta("cosmos_rpc_received_bytes_total"), kFlushes * kBlock);
  EXPECT_TRUE(after.count("cosmos_rpc_retransmissions_total"));
  // No cluster: no replication families.
  EXPECT_FALSE(after.count("cosmos_replication_forwarded_batches_total"));

  r->reset();
  c->reset();
  int status = d.Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Metrics, RefusesAMalformedMetricsAddressBeforeCreatingAnything) {
  rpm_test::TempDir dir;
  for (const char* bad : {"localhost:9464", "127.0.0.1", "127.0.0.1:99999", "::1:9464"}) {
    rpm_test::Daemon d;
    EXPECT_FALSE(d.Start(
        dir.path, {"--pool", dir.path + "/main.pool,size=16M,create", "--metrics-listen", bad}))
        << bad;
    int status = d.Stop();
    ASSERT_TRUE(WIFEXITED(status)) << bad;
    EXPECT_EQ(WEXITSTATUS(status), 2) << bad;  // usage error
    EXPECT_FALSE(std::filesystem::exists(dir.path + "/main.pool")) << bad;
  }
}

TEST(Metrics, RefusesATakenMetricsPortAndRemovesThePoolItCreated) {
  rpm_test::TempDir dir;
  LoopbackTcpPort taken(/*listening=*/true);
  ASSERT_NE(taken.port, 0);
  rpm_test::Daemon d;
  EXPECT_FALSE(d.Start(dir.path, {"--pool", dir.path + "/main.pool,size=16M,create",
                                  "--metrics-listen", "127.0.0.1:" + std::to_string(taken.port)}));
  int status = d.Stop();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/main.pool"));
}

}  // namespace
