// Replicated regions end to end (issue 12): a real etcd and three cosmosd
// processes on loopback, the cluster client library, SIGKILL of the primary,
// and fencing of a stale epoch on every replica.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "client/replica_region.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "cosmos/client.h"
#include "etcd_harness.h"
#include "rpm_harness.h"

namespace {

using cluster_test::EtcdProcess;
using cluster_test::WaitFor;
using cosmos::Client;
using cosmos::ClientOptions;
using cosmos::Region;
using cosmos::StatusCode;

std::vector<std::byte> Pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = std::byte{static_cast<uint8_t>(x >> 16)};
  }
  return v;
}

// Runs the cosmos CLI with `args` (single-quoted for the shell); stdout only.
std::pair<int, std::string> Cosmos(const std::vector<std::string>& args) {
  std::string cmd = std::string(COSMOS_BINARY_DIR) + "/apps/cosmos/cosmos";
  for (const auto& a : args) cmd += " '" + a + "'";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, out};
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

class ClusterReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cluster_test::EtcdBinary().empty()) {
      GTEST_SKIP() << "etcd is not installed (scripts/setup.sh installs etcd-server)";
    }
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
    ASSERT_TRUE(
        d->Start(dir, {"--pool", dir + "/pool,size=16M,create", "--workers", "1", "--flushers", "1",
                       "--cluster", etcd_.endpoint(), "--node-id", id, "--zone", "zone-" + id}))
        << "cosmosd " << id << " did not start";
    nodes_[id] = std::move(d);
  }

  ClientOptions ClusterOptions() const {
    ClientOptions o;
    o.cluster = etcd_.endpoint();
    o.busy_poll = false;  // three nodes and this client share two cores
    o.timeout_ms = 3000;
    o.failover_timeout_ms = 20000;  // bounds a hang; not a speed judgement
    return o;
  }

  // A plain client of one node.
  std::unique_ptr<Client> NodeClient(const std::string& id) const {
    ClientOptions o;
    o.server = nodes_.at(id)->address();
    o.busy_poll = false;
    o.timeout_ms = 3000;
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  cosmos::cluster::VersionedPlacement Placement(const std::string& region) const {
    cosmos::cluster::PlacementStore store(*etcd_client_, cosmos::cluster::ClusterKeys());
    auto vp = store.Get(region);
    EXPECT_TRUE(vp.ok()) << vp.status().ToString();
    return vp.ok() ? *vp : cosmos::cluster::VersionedPlacement{};
  }

  // Write + Flush of `bytes` at `offset` through a Region opened directly on
  // node `id` at `epoch` (a primary's client when !replica, a forwarding
  // primary when replica): the status of the flush.
  cosmos::Status WriteAtEpoch(const std::string& id, const std::string& region, uint64_t epoch,
                              bool replica, uint64_t offset, std::span<const std::byte> bytes) {
    auto c = NodeClient(id);
    if (c == nullptr) return cosmos::Status::Internal("no client");
    auto r = cosmos::client::OpenRegionAtEpoch(*c, region, epoch, replica);
    if (!r.ok()) return r.status();
    if (auto s = (*r)->Write(offset, bytes); !s.ok()) return s;
    return (*r)->Flush(offset, bytes.size());
  }

  rpm_test::TempDir tmp_;
  EtcdProcess etcd_;
  std::unique_ptr<cosmos::cluster::EtcdClient> etcd_client_;
  std::map<std::string, std::unique_ptr<rpm_test::Daemon>> nodes_;
};

TEST_F(ClusterReplicationTest, AcknowledgedFlushesSurviveSigkillOfThePrimary) {
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  auto info = (*client)->CreateRegion("r1", 1 << 20, ro);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->replicas.size(), 3u);
  EXPECT_EQ(info->epoch, 1u);
  auto region = (*client)->OpenRegion("r1");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  Region& r = **region;

  constexpr size_t kBlock = 4096;
  constexpr int kBefore = 32, kAfter = 32;
  for (int i = 0; i < kBefore; ++i) {
    auto data = Pattern(kBlock, i);
    ASSERT_TRUE(r.Write(i * kBlock, data).ok());
    ASSERT_TRUE(r.Flush(i * kBlock, kBlock).ok()) << "block " << i;
  }
  auto counter = r.FetchAdd(kBefore * kBlock + kAfter * kBlock, 5);
  ASSERT_TRUE(counter.ok()) << counter.status().ToString();
  EXPECT_EQ(*counter, 0u);

  // Every backup holds what was acknowledged (read through the replica path).
  const std::string old_primary = r.info().primary;
  for (const std::string& id : r.info().replicas) {
    if (id == old_primary) continue;
    auto c = NodeClient(id);
    ASSERT_NE(c, nullptr);
    auto copy = cosmos::client::OpenRegionAtEpoch(*c, "r1", r.info().epoch, /*replica=*/true);
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    std::vector<std::byte> got(kBlock);
    for (int i = 0; i < kBefore; ++i) {
      ASSERT_TRUE((*copy)->Read(i * kBlock, got).ok());
      ASSERT_EQ(got, Pattern(kBlock, i)) << "backup " << id << " block " << i;
    }
  }

  nodes_.at(old_primary)->Stop(SIGKILL);

  // The client keeps going: its next calls fail over to the new primary.
  for (int i = kBefore; i < kBefore + kAfter; ++i) {
    auto data = Pattern(kBlock, i);
    ASSERT_TRUE(r.Write(i * kBlock, data).ok());
    auto s = r.Flush(i * kBlock, kBlock);
    ASSERT_TRUE(s.ok()) << "block " << i << ": " << s.ToString();
  }
  EXPECT_NE(r.info().primary, old_primary);
  EXPECT_GT(r.info().epoch, 1u);
  const auto placement = Placement("r1").placement;
  EXPECT_EQ(placement.epoch, r.info().epoch);
  EXPECT_EQ(placement.replicas.size(), 2u);
  EXPECT_FALSE(std::count(placement.replicas.begin(), placement.replicas.end(), old_primary));

  // Everything acknowledged, before and after the kill, reads back.
  std::vector<std::byte> got(kBlock);
  for (int i = 0; i < kBefore + kAfter; ++i) {
    ASSERT_TRUE(r.Read(i * kBlock, got).ok());
    ASSERT_EQ(got, Pattern(kBlock, i)) << "block " << i;
  }
  auto after = r.FetchAdd(kBefore * kBlock + kAfter * kBlock, 1);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, 5u);
  // A fresh client finds the new configuration through etcd too.
  auto fresh = Client::Connect(ClusterOptions());
  ASSERT_TRUE(fresh.ok());
  auto again = (*fresh)->OpenRegion("r1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->info().primary, placement.primary);
  ASSERT_TRUE((*again)->Read((kBefore + kAfter - 1) * kBlock, got).ok());
  EXPECT_EQ(got, Pattern(kBlock, kBefore + kAfter - 1));
}

// After a reconfiguration (epoch 1 -> 2, the primary kept, one backup
// removed), a request of epoch 1 is refused by the primary and by the
// remaining backup, so nothing of the old configuration can be acknowledged.
TEST_F(ClusterReplicationTest, EveryReplicaRejectsAnOlderEpoch) {
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  auto info = (*client)->CreateRegion("fenced", 64 << 10, ro);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const auto v1 = Placement("fenced");
  const std::string primary = v1.placement.primary;
  std::string kept, removed;
  for (const auto& id : v1.placement.replicas) {
    if (id == primary) continue;
    (kept.empty() ? kept : removed) = id;
  }
  auto data = Pattern(512, 7);
  // Epoch 1 works while it is current.
  ASSERT_TRUE(WriteAtEpoch(primary, "fenced", 1, false, 0, data).ok());

  cosmos::cluster::PlacementStore store(*etcd_client_, cosmos::cluster::ClusterKeys());
  auto next = cosmos::cluster::WithoutReplica(v1.placement, removed);
  ASSERT_TRUE(next.ok());
  auto v2 = store.Reconfigure(v1, *next);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  ASSERT_EQ(v2->placement.epoch, 2u);
  ASSERT_EQ(v2->placement.primary, primary);

  // Epoch 2 through the primary: it and the kept backup now act in epoch 2.
  ASSERT_TRUE(WriteAtEpoch(primary, "fenced", 2, false, 512, data).ok());

  // A client (or a paused process) still at epoch 1: refused by the primary.
  auto stale = WriteAtEpoch(primary, "fenced", 1, false, 1024, data);
  EXPECT_EQ(stale.code(), StatusCode::kAborted) << stale.ToString();
  // A forward of epoch 1 (an old primary's): refused by the backup.
  auto stale_forward = WriteAtEpoch(kept, "fenced", 1, true, 1024, data);
  EXPECT_EQ(stale_forward.code(), StatusCode::kAborted) << stale_forward.ToString();
  // The removed node still holds its copy but no current epoch names it.
  auto outsider = WriteAtEpoch(removed, "fenced", 2, true, 1024, data);
  EXPECT_EQ(outsider.code(), StatusCode::kAborted) << outsider.ToString();
  // Plain (epoch-less) ops on a replicated region are refused as well.
  auto plain = NodeClient(primary);
  ASSERT_NE(plain, nullptr);
  auto plain_region = plain->OpenRegion("fenced");
  ASSERT_TRUE(plain_region.ok());
  ASSERT_TRUE((*plain_region)->Write(1024, data).ok());  // posted: fails at the flush
  EXPECT_EQ((*plain_region)->Flush(1024, data.size()).code(), StatusCode::kFailedPrecondition);
}

// A primary paused (SIGSTOP) long enough to be failed over, then resumed
// with a client still at the old epoch: it cannot acknowledge a flush, and
// its write does not reach the new configuration.
TEST_F(ClusterReplicationTest, PausedOldPrimaryCannotAcknowledgeAfterFailover) {
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  ASSERT_TRUE((*client)->CreateRegion("paused", 64 << 10, ro).ok());
  auto region = (*client)->OpenRegion("paused");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  auto data = Pattern(4096, 3);
  ASSERT_TRUE((*region)->Write(0, data).ok());
  ASSERT_TRUE((*region)->Flush(0, data.size()).ok());
  const std::string old_primary = (*region)->info().primary;

  kill(nodes_.at(old_primary)->pid(), SIGSTOP);
  ASSERT_TRUE(WaitFor([&] {
    auto p = Placement("paused").placement;
    return p.epoch >= 2 && !std::count(p.replicas.begin(), p.replicas.end(), old_primary);
  })) << "the backups did not fail the paused primary over";
  // The new configuration serves (and its replicas now act in the new epoch).
  ASSERT_TRUE((*region)->Write(4096, data).ok());
  ASSERT_TRUE((*region)->Flush(4096, data.size()).ok());
  ASSERT_NE((*region)->info().primary, old_primary);
  kill(nodes_.at(old_primary)->pid(), SIGCONT);

  // A client that still believes in epoch 1 writes through the old primary.
  auto stale_bytes = Pattern(4096, 99);
  auto stale = WriteAtEpoch(old_primary, "paused", 1, false, 8192, stale_bytes);
  EXPECT_FALSE(stale.ok());
  EXPECT_TRUE(stale.code() == StatusCode::kAborted || stale.code() == StatusCode::kUnavailable)
      << stale.ToString();
  // Its bytes are not in the current configuration.
  std::vector<std::byte> got(4096);
  ASSERT_TRUE((*region)->Read(8192, got).ok());
  EXPECT_EQ(got, std::vector<std::byte>(4096));
  ASSERT_TRUE((*region)->Read(4096, got).ok());
  EXPECT_EQ(got, data);
  // The resumed node did not edit the newer configuration.
  auto p = Placement("paused").placement;
  EXPECT_EQ(p.primary, (*region)->info().primary);
  EXPECT_EQ(p.replicas.size(), 2u);
}

// A backup dies: the primary's next forward fails, it removes the backup by
// compare-and-swap and the write goes on (acknowledged once durable on the
// remaining replicas of the new epoch), without the client seeing an error.
TEST_F(ClusterReplicationTest, DeadBackupIsRemovedAndWritesGoOn) {
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  ASSERT_TRUE((*client)->CreateRegion("backup_dies", 64 << 10, ro).ok());
  auto region = (*client)->OpenRegion("backup_dies");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  Region& r = **region;
  auto data = Pattern(4096, 5);
  ASSERT_TRUE(r.Write(0, data).ok());
  ASSERT_TRUE(r.Flush(0, data.size()).ok());
  std::string victim;
  for (const auto& id : r.info().replicas) {
    if (id != r.info().primary) victim = id;
  }
  nodes_.at(victim)->Stop(SIGKILL);
  for (int i = 1; i < 8; ++i) {
    auto more = Pattern(4096, 5 + i);
    ASSERT_TRUE(r.Write(i * 4096, more).ok());
    auto s = r.Flush(i * 4096, more.size());
    ASSERT_TRUE(s.ok()) << "block " << i << ": " << s.ToString();
  }
  const auto p = Placement("backup_dies").placement;
  EXPECT_GE(p.epoch, 2u);
  EXPECT_EQ(p.replicas.size(), 2u);
  EXPECT_FALSE(std::count(p.replicas.begin(), p.replicas.end(), victim));
  // The remaining backup holds every block (read through the replica path).
  std::string backup;
  for (const auto& id : p.replicas) {
    if (id != p.primary) backup = id;
  }
  auto c = NodeClient(backup);
  ASSERT_NE(c, nullptr);
  auto copy = cosmos::client::OpenRegionAtEpoch(*c, "backup_dies", p.epoch, /*replica=*/true);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  std::vector<std::byte> got(4096);
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE((*copy)->Read(i * 4096, got).ok());
    EXPECT_EQ(got, Pattern(4096, 5 + i)) << "block " << i;
  }
}

// `cosmos cluster status|regions`: the operator's view follows a failover
// (epoch, primary, replicas, degraded) and tells a dead node from live ones.
TEST_F(ClusterReplicationTest, ClusterStatusShowsNodesRegionsAndAFailover) {
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  auto info = (*client)->CreateRegion("shown", 64 << 10, ro);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto [code, out] = Cosmos({"cluster", "status", "--cluster", etcd_.endpoint(), "--json"});
  ASSERT_EQ(code, 0) << out;
  auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["nodes"].size(), 3u) << out;
  for (const auto& n : j["nodes"]) {
    EXPECT_TRUE(n["reachable"].get<bool>()) << out;
    EXPECT_EQ(n["zone"], "zone-" + n["id"].get<std::string>());
  }
  ASSERT_EQ(j["regions"].size(), 1u) << out;
  EXPECT_EQ(j["regions"][0]["name"], "shown");
  EXPECT_EQ(j["regions"][0]["epoch"], 1);
  EXPECT_EQ(j["regions"][0]["primary"], info->primary);
  EXPECT_EQ(j["regions"][0]["replicas"].size(), 3u);
  EXPECT_EQ(j["regions"][0]["state"], "ok");

  const std::string victim = info->primary;
  nodes_.at(victim)->Stop(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return Placement("shown").placement.epoch >= 2; }))
      << "the backups did not fail the primary over";
  std::tie(code, out) = Cosmos({"cluster", "regions", "--cluster", etcd_.endpoint(), "--json"});
  ASSERT_EQ(code, 0) << out;
  j = nlohmann::json::parse(out);
  ASSERT_EQ(j["regions"].size(), 1u) << out;
  EXPECT_EQ(j["regions"][0]["epoch"], 2);
  EXPECT_NE(j["regions"][0]["primary"], victim);
  EXPECT_EQ(j["regions"][0]["replicas"].size(), 2u);
  EXPECT_EQ(j["regions"][0]["state"], "degraded");
  // The killed node is either gone from etcd (lease expired) or listed as
  // not answering; the two others answer.
  std::tie(code, out) = Cosmos({"cluster", "status", "--cluster", etcd_.endpoint(), "--json"});
  ASSERT_EQ(code, 0) << out;
  j = nlohmann::json::parse(out);
  int answering = 0;
  for (const auto& n : j["nodes"]) {
    if (n["id"] == victim) {
      EXPECT_FALSE(n["reachable"].get<bool>()) << out;
    } else {
      EXPECT_TRUE(n["reachable"].get<bool>()) << out;
      ++answering;
    }
  }
  EXPECT_EQ(answering, 2) << out;
  // The human form says the same.
  std::tie(code, out) = Cosmos({"cluster", "status", "--cluster", etcd_.endpoint()});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("degraded"), std::string::npos) << out;
  EXPECT_NE(out.find("2 of"), std::string::npos) << out;
}

// Resync: a SIGKILLed backup is removed (epoch + 1), writes go on, the node
// comes back with its old pool file, the primary copies what differs while
// the region stays writable, and adds it back by CAS (epoch + 1) once every
// block's Verify digest matches; its copy then equals the primary's.
TEST_F(ClusterReplicationTest, ReturningBackupIsResyncedAndRejoins) {
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  constexpr size_t kSize = 4 << 20, kBlock = 4096;
  auto info = (*client)->CreateRegion("rs", kSize, ro);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto region = (*client)->OpenRegion("rs");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  Region& r = **region;
  std::vector<std::byte> image(kSize);
  auto put = [&](size_t block, uint32_t seed) {
    auto data = Pattern(kBlock, seed);
    std::copy(data.begin(), data.end(), image.begin() + block * kBlock);
    ASSERT_TRUE(r.Write(block * kBlock, data).ok());
    auto s = r.Flush(block * kBlock, kBlock);
    ASSERT_TRUE(s.ok()) << "block " << block << ": " << s.ToString();
  };
  for (size_t b = 0; b < kSize / kBlock; b += 7) put(b, 1000 + b);

  std::string victim;
  for (const auto& id : r.info().replicas) {
    if (id != r.info().primary) victim = id;
  }
  nodes_.at(victim)->Stop(SIGKILL);
  // Writes while it is down (the primary removes it at the first forward).
  for (size_t b = 3; b < kSize / kBlock; b += 97) put(b, 2000 + b);
  const auto degraded = Placement("rs").placement;
  ASSERT_EQ(degraded.replicas.size(), 2u);
  // Its old record must expire before the same id can register again.
  cosmos::cluster::Membership membership(*etcd_client_, cosmos::cluster::ClusterKeys());
  ASSERT_TRUE(WaitFor([&] {
    auto list = membership.ListNodes();
    return list.ok() && list->nodes.size() == 2;
  })) << "the killed node's lease did not expire";
  StartNode(victim);  // same pool file: its stale copy is still there

  // Writes go on during the resync; every one is acknowledged.
  size_t next = 5;
  uint32_t seed = 3000;
  ASSERT_TRUE(WaitFor(
      [&] {
        put(next, seed++);
        next = (next + 131) % (kSize / kBlock);
        const auto now = Placement("rs").placement;
        return now.replicas.size() == 3;
      },
      std::chrono::seconds(60)))
      << "the returning node was not resynced and added";
  const auto rejoined = Placement("rs").placement;
  EXPECT_GT(rejoined.epoch, degraded.epoch);
  EXPECT_TRUE(std::count(rejoined.replicas.begin(), rejoined.replicas.end(), victim));
  put(1, 4000);  // the first write of the new epoch reaches the rejoined node too

  // The rejoined copy equals the client's image (read through the replica path).
  auto c = NodeClient(victim);
  ASSERT_NE(c, nullptr);
  const auto current = Placement("rs").placement;
  auto copy = cosmos::client::OpenRegionAtEpoch(*c, "rs", current.epoch, /*replica=*/true);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  std::vector<std::byte> got(kSize);
  ASSERT_TRUE((*copy)->Read(0, got).ok());
  EXPECT_TRUE(got == image) << "the rejoined replica differs from what was acknowledged";
  std::vector<std::byte> primary(kSize);
  ASSERT_TRUE(r.Read(0, primary).ok());
  EXPECT_TRUE(primary == image);
}

}  // namespace
