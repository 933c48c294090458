// Secure replicated regions end to end (issue 12): a real etcd and three
// secure cosmosd processes (each with its own platform key and simulated
// enclave) on loopback, the secure cluster client, SIGKILL of the primary
// twice. Every acknowledged flush survives on the backups' enclaves, which
// received it only over attested peer channels: no node's pool file holds
// any written byte in clear.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <memory>

#include "cluster/membership.h"
#include "cluster/placement.h"
#include "cosmos/client.h"
#include "etcd_harness.h"
#include "kv_test_util.h"
#include "rpm_harness.h"
#include "sec/key_files.h"

namespace {

using cluster_test::EtcdProcess;
using cluster_test::WaitFor;
using cosmos::Client;
using cosmos::ClientOptions;
using cosmos::Region;

// Blocks full of a recognisable marker, so a plaintext leak into a pool file
// is found by a plain substring search.
std::vector<std::byte> Marked(size_t n, int i) {
  std::string text;
  while (text.size() < n) text += "COSMOS-REPLICA-SECRET-" + std::to_string(i) + "|";
  text.resize(n);
  std::vector<std::byte> v(n);
  std::memcpy(v.data(), text.data(), n);
  return v;
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ClusterSecureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cluster_test::EtcdBinary().empty()) {
      GTEST_SKIP() << "etcd is not installed (scripts/setup.sh installs etcd-server)";
    }
    // Each node its own platform key; the cluster's trust list holds them all.
    std::string trust;
    for (const char* id : {"n1", "n2", "n3"}) {
      ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(tmp_.path + "/keys-" + id).ok());
      trust += FileBytes(tmp_.path + "/keys-" + id + "/platform.pub");
    }
    std::ofstream(tmp_.path + "/cluster.pub") << trust;
    ASSERT_TRUE(cosmos::sec::GenerateClientCredentials(tmp_.path + "/clients", "alice").ok());
    ASSERT_TRUE(etcd_.Start()) << "etcd did not start; see " << etcd_.log();
    etcd_client_ = etcd_.Client();
    ASSERT_NE(etcd_client_, nullptr);
    for (const char* id : {"n1", "n2", "n3"}) StartNode(id);
    cosmos::cluster::Membership membership(*etcd_client_, cosmos::cluster::ClusterKeys());
    ASSERT_TRUE(WaitFor([&] {
      auto list = membership.ListNodes();
      return list.ok() && list->nodes.size() == 3;
    })) << "the three nodes did not register";
  }

  void StartNode(const std::string& id) {
    const std::string dir = tmp_.path + "/" + id;
    std::filesystem::create_directories(dir);
    auto d = std::make_unique<rpm_test::Daemon>();
    ASSERT_TRUE(d->Start(
        dir, {"--pool", dir + "/pool,size=16M,create", "--workers", "1", "--flushers", "1",
              "--cluster", etcd_.endpoint(), "--node-id", id, "--platform-keys",
              tmp_.path + "/keys-" + id, "--allow", tmp_.path + "/clients/alice.pub",
              "--peer-platform-keys", tmp_.path + "/cluster.pub", "--counter-delay-ms", "2"}))
        << "cosmosd " << id << " did not start";
    nodes_[id] = std::move(d);
  }

  ClientOptions SecureClusterOptions() const {
    ClientOptions o;
    o.cluster = etcd_.endpoint();
    o.busy_poll = false;  // three nodes and this client share two cores
    o.timeout_ms = 5000;
    o.failover_timeout_ms = 20000;  // bounds a hang; not a speed judgement
    o.platform_public_key_file = tmp_.path + "/cluster.pub";  // any node of the cluster
    o.measurement_file = tmp_.path + "/keys-n1/measurement";  // the same code everywhere
    o.client_key_file = tmp_.path + "/clients/alice.key";
    return o;
  }

  cosmos::cluster::RegionPlacement Placement(const std::string& region) const {
    cosmos::cluster::PlacementStore store(*etcd_client_, cosmos::cluster::ClusterKeys());
    auto vp = store.Get(region);
    EXPECT_TRUE(vp.ok()) << vp.status().ToString();
    return vp.ok() ? vp->placement : cosmos::cluster::RegionPlacement{};
  }

  rpm_test::TempDir tmp_;
  EtcdProcess etcd_;
  std::unique_ptr<cosmos::cluster::EtcdClient> etcd_client_;
  std::map<std::string, std::unique_ptr<rpm_test::Daemon>> nodes_;
};

TEST_F(ClusterSecureTest, AcknowledgedFlushesSurviveTwoPrimaryKillsAndNoPoolHoldsPlaintext) {
  auto client = Client::Connect(SecureClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  ro.secure = true;
  auto info = (*client)->CreateRegion("vault", 1 << 20, ro);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->secure);
  EXPECT_EQ(info->replicas.size(), 3u);
  auto region = (*client)->OpenRegion("vault");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  Region& r = **region;
  EXPECT_TRUE(r.info().secure);

  constexpr size_t kBlock = 4096;
  constexpr int kPerRound = 12;
  constexpr uint64_t kCounter = 900 * 1024;
  int written = 0;
  auto write_round = [&](const std::string& when) {
    for (int i = 0; i < kPerRound; ++i, ++written) {
      auto data = Marked(kBlock, written);
      ASSERT_TRUE(r.Write(written * kBlock, data).ok()) << when << " block " << written;
      auto s = r.Flush(written * kBlock, kBlock);
      ASSERT_TRUE(s.ok()) << when << " block " << written << ": " << s.ToString();
    }
    auto c = r.FetchAdd(kCounter, 1);
    ASSERT_TRUE(c.ok()) << when << ": " << c.status().ToString();
  };
  auto check_all = [&](const std::string& when) {
    std::vector<std::byte> got(kBlock);
    for (int i = 0; i < written; ++i) {
      auto s = r.Read(i * kBlock, got);
      ASSERT_TRUE(s.ok()) << when << " block " << i << ": " << s.ToString();
      ASSERT_EQ(got, Marked(kBlock, i)) << when << " block " << i;
    }
  };

  write_round("epoch 1");
  std::vector<std::string> killed;
  for (int kill = 0; kill < 2; ++kill) {
    const std::string primary = r.info().primary;
    nodes_.at(primary)->Stop(SIGKILL);
    killed.push_back(primary);
    // The client fails over to a backup, whose enclave holds every
    // acknowledged write: it received them from the primary's enclave.
    write_round("after killing " + primary);
    EXPECT_NE(r.info().primary, primary);
    check_all("after killing " + primary);
  }
  auto counter = r.FetchAdd(kCounter, 0);
  ASSERT_TRUE(counter.ok()) << counter.status().ToString();
  EXPECT_EQ(*counter, 3u);  // one FetchAdd per round, none lost or doubled
  const auto placement = Placement("vault");
  EXPECT_EQ(placement.replicas.size(), 1u);
  EXPECT_EQ(placement.primary, r.info().primary);

  // No pool file (live or killed node) holds a written byte in clear.
  for (const auto& [id, d] : nodes_) {
    const std::string pool = FileBytes(tmp_.path + "/" + id + "/pool");
    ASSERT_FALSE(pool.empty()) << id;
    EXPECT_EQ(pool.find("COSMOS-REPLICA-SECRET"), std::string::npos)
        << "plaintext in node " << id << "'s pool";
  }
}

TEST_F(ClusterSecureTest, PlainBatchesAndPlainClientsCannotBypassTheSealedPath) {
  auto client = Client::Connect(SecureClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 2;
  ro.secure = true;
  ASSERT_TRUE((*client)->CreateRegion("vault", 1 << 20, ro).ok());
  // A plain cluster client does not even find the secure region on a node.
  ClientOptions plain;
  plain.cluster = etcd_.endpoint();
  plain.busy_poll = false;
  plain.timeout_ms = 3000;
  plain.failover_timeout_ms = 3000;
  auto pc = Client::Connect(plain);
  ASSERT_TRUE(pc.ok()) << pc.status().ToString();
  auto opened = (*pc)->OpenRegion("vault");
  EXPECT_FALSE(opened.ok());
}

// cosmos-kv on a secure replicated region: every acknowledged SET survives a
// SIGKILL of the region's primary, cosmos-kv serves on by itself, and no
// node's pool holds a value in clear.
TEST_F(ClusterSecureTest, CosmosKvOnASecureReplicatedRegionKeepsAcknowledgedWrites) {
  namespace kvt = cosmos::kv::testing;
  kvt::KvServer kv(
      "", {"--cluster", etcd_.endpoint(), "--replicas", "2", "--region", "kvlog", "--region-size",
           "8mb", "--remote-timeout-ms", "30000", "--platform-pub", tmp_.path + "/cluster.pub",
           "--measurement", tmp_.path + "/keys-n1/measurement", "--client-key",
           tmp_.path + "/clients/alice.key", "--secure"});
  ASSERT_TRUE(kv.Start()) << "cosmos-kv did not start";
  kvt::RespClient c(kv.port());
  auto value = [](int i) { return "COSMOS-REPLICA-SECRET-kv-" + std::to_string(i); };
  int acked = 0;
  for (; acked < 50; ++acked) {
    auto r = c.Call({"SET", "k" + std::to_string(acked), value(acked)});
    ASSERT_TRUE(r && r->type == '+') << "SET " << acked;
  }
  const std::string primary = Placement("kvlog").primary;
  ASSERT_FALSE(primary.empty());
  nodes_.at(primary)->Stop(SIGKILL);
  for (; acked < 80; ++acked) {
    auto r = c.Call({"SET", "k" + std::to_string(acked), value(acked)});
    ASSERT_TRUE(r.has_value()) << "SET " << acked;
    ASSERT_EQ(r->type, '+') << "SET " << acked << ": " << r->text;
  }
  EXPECT_NE(Placement("kvlog").primary, primary);
  for (int i = 0; i < acked; ++i) {
    auto r = c.Call({"GET", "k" + std::to_string(i)});
    ASSERT_TRUE(r && r->type == '$') << "GET " << i;
    EXPECT_EQ(r->text, value(i)) << "GET " << i;
  }
  for (const auto& [id, d] : nodes_) {
    const std::string pool = FileBytes(tmp_.path + "/" + id + "/pool");
    EXPECT_EQ(pool.find("COSMOS-REPLICA-SECRET"), std::string::npos)
        << "plaintext in node " << id << "'s pool";
  }
}

}  // namespace
