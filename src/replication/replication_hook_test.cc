// The server's replication hook without etcd: a fake ReplicationHook behind a
// real in-process server and client over loopback UDP. What reaches the hook,
// what the client sees when it refuses, and what a node without the hook
// does with an EPOCH op.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>

#include "client/replica_region.h"
#include "cosmos/client.h"
#include "pmem/mapping.h"
#include "pmem/pool.h"
#include "server/server.h"

namespace cosmos {
namespace {

// Accepts epoch 5 only; a client batch at epoch 5 runs locally and is
// acknowledged, anything else gets Aborted. "rep" is replicated.
class FakeHook : public server::ReplicationHook {
 public:
  void ExecutePrimary(std::string_view, std::span<const protocol::Op> ops,
                      const LocalExecutor& local, protocol::ResponseBuilder* out) override {
    primary_batches++;
    if (ops.front().offset != 5) {
      out->AddError(Status::Aborted("stale epoch"));
      for (size_t i = 1; i < ops.size(); ++i) out->AddError(Status::Cancelled("not executed"));
      return;
    }
    out->AddOk();
    (void)local(1, out);
  }
  // Epoch 6 stands for a placement the node must read from etcd first: only
  // a check that may block answers it.
  Status CheckReplica(std::string_view, uint64_t epoch, bool, bool may_block) override {
    replica_checks++;
    (may_block ? blocking_checks : quick_checks)++;
    if (epoch == 6) return may_block ? Status::Ok() : Status::WouldBlock("needs etcd");
    return epoch == 5 ? Status::Ok() : Status::Aborted("stale epoch");
  }
  bool IsReplicated(std::string_view region) override { return region == "rep"; }
  // A sealed batch at epoch 5 runs in the enclave without backups.
  Result<std::vector<std::byte>> ExecutePrimarySealed(std::string_view, uint64_t epoch,
                                                      const SealedRunner& run) override {
    sealed_batches++;
    if (epoch != 5) return Status::Aborted("stale epoch");
    COSMOS_ASSIGN_OR_RETURN(sec::ReplicatedSealedBatch b, run({}));
    std::vector<std::byte> out(b.response.size());
    if (!out.empty()) std::memcpy(out.data(), b.response.data(), out.size());
    return out;
  }

  std::atomic<int> sealed_batches{0};
  std::atomic<int> primary_batches{0}, replica_checks{0}, quick_checks{0}, blocking_checks{0};
};

std::unique_ptr<server::Server> StartServer(server::ReplicationHook* hook) {
  auto m = pmem::MapDram(16 << 20);
  EXPECT_TRUE(m.ok());
  auto pool = pmem::Pool::CreateOnMapping(std::move(*m), "dram0");
  EXPECT_TRUE(pool.ok());
  std::vector<server::ServedPool> pools;
  pools.push_back(server::ServedPool{"p0", std::move(*pool)});
  server::ServerOptions opts;
  opts.listen_ip = "127.0.0.1";
  opts.port = 0;
  opts.workers = 1;
  opts.replication = hook;
  auto s = server::Server::Start(opts, std::move(pools));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

std::unique_ptr<Client> Connect(const server::Server& s) {
  ClientOptions o;
  o.server = "127.0.0.1:" + std::to_string(s.port());
  o.busy_poll = false;
  auto c = Client::Connect(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

std::vector<std::byte> Bytes(size_t n, uint8_t v) {
  return std::vector<std::byte>(n, std::byte{v});
}

TEST(ReplicationHook, ClientBatchesOfTheCurrentEpochRunThroughThePrimaryHook) {
  FakeHook hook;
  auto server = StartServer(&hook);
  auto client = Connect(*server);
  ASSERT_TRUE(client->CreateRegion("rep", 4096).ok());
  auto r = client::OpenRegionAtEpoch(*client, "rep", 5, /*replica=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  auto data = Bytes(64, 7);
  ASSERT_TRUE((*r)->Write(0, data).ok());
  ASSERT_TRUE((*r)->Flush(0, data.size()).ok());
  auto old = (*r)->FetchAdd(64, 3);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(*old, 0u);
  std::vector<std::byte> got(64);
  ASSERT_TRUE((*r)->Read(0, got).ok());
  EXPECT_EQ(got, data);
  EXPECT_GE(hook.primary_batches.load(), 3);
  EXPECT_EQ(hook.replica_checks.load(), 0);
}

TEST(ReplicationHook, RefusedEpochFailsTheWholeBatchWithAborted) {
  FakeHook hook;
  auto server = StartServer(&hook);
  auto client = Connect(*server);
  ASSERT_TRUE(client->CreateRegion("rep", 4096).ok());
  auto stale = client::OpenRegionAtEpoch(*client, "rep", 4, /*replica=*/false);
  ASSERT_TRUE(stale.ok());
  ASSERT_TRUE((*stale)->Write(0, Bytes(64, 9)).ok());
  EXPECT_EQ((*stale)->Flush(0, 64).code(), StatusCode::kAborted);
  // The refused batch wrote nothing.
  auto current = client::OpenRegionAtEpoch(*client, "rep", 5, /*replica=*/false);
  ASSERT_TRUE(current.ok());
  std::vector<std::byte> got(64);
  ASSERT_TRUE((*current)->Read(0, got).ok());
  EXPECT_EQ(got, Bytes(64, 0));
  // Forwarded (replica) batches go through CheckReplica, on both sides of it.
  auto forward_stale = client::OpenRegionAtEpoch(*client, "rep", 4, /*replica=*/true);
  ASSERT_TRUE(forward_stale.ok());
  ASSERT_TRUE((*forward_stale)->Write(0, Bytes(64, 9)).ok());
  EXPECT_EQ((*forward_stale)->Flush(0, 64).code(), StatusCode::kAborted);
  auto forward = client::OpenRegionAtEpoch(*client, "rep", 5, /*replica=*/true);
  ASSERT_TRUE(forward.ok());
  ASSERT_TRUE((*forward)->Write(0, Bytes(64, 1)).ok());
  ASSERT_TRUE((*forward)->Flush(0, 64).ok());
  EXPECT_GE(hook.replica_checks.load(), 2);
}

TEST(ReplicationHook, ForwardedBatchesRunOnTheWorkerUnlessTheCheckNeedsEtcd) {
  FakeHook hook;
  auto server = StartServer(&hook);
  auto client = Connect(*server);
  ASSERT_TRUE(client->CreateRegion("rep", 4096).ok());
  // A known epoch: checked without blocking, no flusher involved.
  auto known = client::OpenRegionAtEpoch(*client, "rep", 5, /*replica=*/true);
  ASSERT_TRUE(known.ok());
  ASSERT_TRUE((*known)->Write(0, Bytes(64, 3)).ok());
  ASSERT_TRUE((*known)->Flush(0, 64).ok());
  EXPECT_GE(hook.quick_checks.load(), 1);
  EXPECT_EQ(hook.blocking_checks.load(), 0);
  // An epoch only etcd knows: the quick check says WouldBlock and the batch
  // is run again where the check may block, once, and applies.
  auto later = client::OpenRegionAtEpoch(*client, "rep", 6, /*replica=*/true);
  ASSERT_TRUE(later.ok());
  ASSERT_TRUE((*later)->Write(64, Bytes(64, 4)).ok());
  ASSERT_TRUE((*later)->Flush(64, 64).ok());
  EXPECT_EQ(hook.blocking_checks.load(), 1);
  std::vector<std::byte> got(64);
  auto reader = client::OpenRegionAtEpoch(*client, "rep", 5, /*replica=*/false);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Read(64, got).ok());
  EXPECT_EQ(got, Bytes(64, 4));
}

TEST(ReplicationHook, EpochlessOpsOnAReplicatedRegionAreRefused) {
  FakeHook hook;
  auto server = StartServer(&hook);
  auto client = Connect(*server);
  ASSERT_TRUE(client->CreateRegion("rep", 4096).ok());
  ASSERT_TRUE(client->CreateRegion("single", 4096).ok());
  auto rep = client->OpenRegion("rep");
  ASSERT_TRUE(rep.ok());
  std::vector<std::byte> got(8);
  EXPECT_EQ((*rep)->Read(0, got).code(), StatusCode::kFailedPrecondition);
  auto single = client->OpenRegion("single");
  ASSERT_TRUE(single.ok());
  EXPECT_TRUE((*single)->Read(0, got).ok());  // other regions are untouched
}

TEST(ReplicationHook, ANodeWithoutTheHookRefusesEpochOps) {
  auto server = StartServer(nullptr);
  auto client = Connect(*server);
  ASSERT_TRUE(client->CreateRegion("r", 4096).ok());
  auto r = client::OpenRegionAtEpoch(*client, "r", 1, /*replica=*/false);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*r)->Write(0, Bytes(8, 1)).ok());
  EXPECT_EQ((*r)->Flush(0, 8).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace cosmos
