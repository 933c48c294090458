// cosmosd --metrics-listen on cluster nodes (real etcd + two cosmosd): the
// primary's scrape shows every forwarded batch and its bytes and forward
// latencies, the backup's the forwarded ops it applied; after a SIGKILL of
// the primary the survivor counts the failover, and when the dead node
// returns with an empty pool, the resync and the bytes it copied.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>

#include "cluster/membership.h"
#include "common/testing/prometheus_scrape.h"
#include "cosmos/client.h"
#include "etcd_harness.h"
#include "rpm_harness.h"

namespace {

using cluster_test::EtcdProcess;
using cluster_test::WaitFor;
using cosmos::testing::HttpBody;
using cosmos::testing::HttpGet;
using cosmos::testing::LoopbackTcpPort;
using cosmos::testing::ParsePrometheusText;
using Samples = std::map<std::string, double>;

Samples Scrape(uint16_t port) {
  auto response = HttpGet(port, "/metrics");
  if (!response) return {};
  return ParsePrometheusText(HttpBody(*response));
}

double Value(const Samples& s, const std::string& key) {
  auto it = s.find(key);
  return it == s.end() ? -1 : it->second;
}

class ClusterMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cluster_test::EtcdBinary().empty()) {
      GTEST_SKIP() << "etcd is not installed (scripts/setup.sh installs etcd-server)";
    }
    ASSERT_TRUE(etcd_.Start()) << "etcd did not start; see " << etcd_.log();
    etcd_client_ = etcd_.Client();
    ASSERT_NE(etcd_client_, nullptr);
    for (const char* id : {"n1", "n2"}) ASSERT_NO_FATAL_FAILURE(StartNode(id, /*fresh=*/true));
    ASSERT_TRUE(WaitRegistered(2)) << "the nodes did not register";
  }

  // True once exactly `n` nodes are registered (a killed node stays listed
  // until its lease expires). The deadline only bounds a hang.
  bool WaitRegistered(size_t n) {
    cosmos::cluster::Membership membership(*etcd_client_, cosmos::cluster::ClusterKeys());
    return WaitFor(
        [&] {
          auto list = membership.ListNodes();
          return list.ok() && list->nodes.size() == n;
        },
        std::chrono::seconds(30));
  }

  // Starts node `id` with a metrics endpoint on a free loopback port (a port
  // taken between the probe and the bind is retried); `fresh`: an empty pool.
  void StartNode(const std::string& id, bool fresh) {
    const std::string dir = tmp_.path + "/" + id;
    if (fresh) std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto d = std::make_unique<rpm_test::Daemon>();
      const uint16_t port = LoopbackTcpPort(false).port;
      if (d->Start(dir, {"--pool", dir + "/pool,size=16M,create", "--workers", "1", "--flushers",
                         "1", "--cluster", etcd_.endpoint(), "--node-id", id, "--zone",
                         "zone-" + id, "--metrics-listen", "127.0.0.1:" + std::to_string(port)})) {
        nodes_[id] = std::move(d);
        metrics_port_[id] = port;
        return;
      }
    }
    FAIL() << "cosmosd " << id << " did not start";
  }

  cosmos::ClientOptions ClusterOptions() const {
    cosmos::ClientOptions o;
    o.cluster = etcd_.endpoint();
    o.busy_poll = false;
    o.timeout_ms = 3000;
    o.failover_timeout_ms = 20000;  // bounds a hang; not a speed judgement
    return o;
  }

  rpm_test::TempDir tmp_;
  EtcdProcess etcd_;
  std::unique_ptr<cosmos::cluster::EtcdClient> etcd_client_;
  std::map<std::string, std::unique_ptr<rpm_test::Daemon>> nodes_;
  std::map<std::string, uint16_t> metrics_port_;
};

TEST_F(ClusterMetricsTest, ForwardingFailoverAndResyncAreCounted) {
  auto client = cosmos::Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 2;
  ASSERT_TRUE((*client)->CreateRegion("r", 1 << 20, ro).ok());
  auto region = (*client)->OpenRegion("r");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  cosmos::Region& r = **region;
  const std::string primary = r.info().primary;
  const std::string backup = primary == "n1" ? "n2" : "n1";

  const Samples p0 = Scrape(metrics_port_[primary]);
  const Samples b0 = Scrape(metrics_port_[backup]);
  ASSERT_FALSE(p0.empty());
  ASSERT_FALSE(b0.empty());
  constexpr int kBatches = 4;
  constexpr size_t kBlock = 4096;
  std::vector<std::byte> data(kBlock, std::byte{0x3c});
  for (int i = 0; i < kBatches; ++i) {
    ASSERT_TRUE(r.Write(i * kBlock, data).ok());
    ASSERT_TRUE(r.Flush(i * kBlock, kBlock).ok());  // one batch, forwarded to the backup
  }
  const Samples p1 = Scrape(metrics_port_[primary]);
  const Samples b1 = Scrape(metrics_port_[backup]);
  auto delta = [](const Samples& a, const Samples& b, const std::string& key) {
    return Value(b, key) - Value(a, key);
  };
  EXPECT_EQ(delta(p0, p1, "cosmos_replication_forwarded_batches_total"), kBatches);
  // Op payloads: each WRITE's bytes and each FLUSH's one 16-byte range.
  EXPECT_EQ(delta(p0, p1, "cosmos_replication_forwarded_bytes_total"), kBatches * (kBlock + 16));
  EXPECT_EQ(delta(p0, p1, "cosmos_replication_forward_duration_seconds_count"), kBatches);
  EXPECT_EQ(delta(p0, p1, "cosmos_replication_forward_failures_total"), 0);
  EXPECT_EQ(delta(p0, p1, "cosmos_write_flush_batch_duration_seconds_count"), kBatches);
  EXPECT_EQ(delta(b0, b1, "cosmos_ops_total{opcode=\"epoch\"}"), kBatches);
  EXPECT_EQ(delta(b0, b1, "cosmos_ops_total{opcode=\"write\"}"), kBatches);
  EXPECT_EQ(delta(b0, b1, "cosmos_written_bytes_total"), kBatches * kBlock);
  EXPECT_EQ(Value(b1, "cosmos_replication_forwarded_batches_total"),
            0);  // a backup forwards nothing

  // SIGKILL of the primary: the backup removes it and becomes the primary.
  nodes_.at(primary)->Stop(SIGKILL);
  ASSERT_TRUE(r.Write(kBatches * kBlock, data).ok());
  ASSERT_TRUE(r.Flush(kBatches * kBlock, kBlock).ok());
  EXPECT_EQ(r.info().primary, backup);
  // The failover is counted by the node that made it (waits bound a hang).
  ASSERT_TRUE(WaitFor([&] {
    return Value(Scrape(metrics_port_[backup]), "cosmos_replication_failovers_total") == 1;
  })) << "the survivor did not count the failover";
  const Samples b2 = Scrape(metrics_port_[backup]);
  EXPECT_EQ(Value(b2, "cosmos_replication_replicas_removed_total"), 1);
  EXPECT_EQ(Value(b2, "cosmos_replication_resyncs_running"), 0);

  // The dead node returns with an empty pool: the new primary resyncs it,
  // copying the blocks that differ (the five written ones at least).
  ASSERT_TRUE(WaitRegistered(1)) << "the killed node's lease did not expire";
  ASSERT_NO_FATAL_FAILURE(StartNode(primary, /*fresh=*/true));
  ASSERT_TRUE(WaitFor(
      [&] {
        return Value(Scrape(metrics_port_[backup]), "cosmos_replication_resyncs_completed_total") ==
               1;
      },
      std::chrono::seconds(90)))
      << "no completed resync counted";
  const Samples b3 = Scrape(metrics_port_[backup]);
  EXPECT_GE(Value(b3, "cosmos_replication_resyncs_started_total"), 1);
  EXPECT_GE(Value(b3, "cosmos_replication_resync_copied_bytes_total"), (kBatches + 1) * kBlock);
  EXPECT_LE(Value(b3, "cosmos_replication_resync_copied_bytes_total"),
            Value(b3, "cosmos_replication_resyncs_started_total") * (1 << 20));
  EXPECT_EQ(Value(b3, "cosmos_replication_resyncs_running"), 0);
}

}  // namespace
