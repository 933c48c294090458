// The cluster control plane against a real etcd (Debian's etcd-server on
// loopback): the HTTP client's kv, txn, lease and watch calls, node records
// vanishing with their lease, compare-and-swap reconfiguration under
// concurrency, and bounded errors when etcd is down or stopped.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>

#include "cluster/etcd_client_http.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "etcd_harness.h"

namespace cosmos::cluster {
namespace {

using cluster_test::EtcdProcess;
using cluster_test::WaitFor;
using std::chrono::milliseconds;

class ClusterEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cluster_test::EtcdBinary().empty()) {
      GTEST_SKIP() << "etcd is not installed (scripts/setup.sh installs etcd-server)";
    }
    ASSERT_TRUE(etcd_.Start()) << "etcd did not start; see " << etcd_.log();
    client_ = etcd_.Client();
    ASSERT_NE(client_, nullptr);
  }

  std::vector<NodeRecord> Nodes() const {
    return {{"a", "127.0.0.1:1001", "z1", 100},
            {"b", "127.0.0.1:1002", "z2", 100},
            {"c", "127.0.0.1:1003", "z3", 100}};
  }

  EtcdProcess etcd_;
  std::unique_ptr<EtcdClient> client_;
  const ClusterKeys keys_{"/cosmos-test/v1/"};
};

TEST_F(ClusterEtcdTest, PutRangeTxnAndDelete) {
  const std::string binary("\0\xff/k\n", 5);  // keys and values are bytes
  auto rev = client_->Put("/t/a", binary);
  ASSERT_TRUE(rev.ok()) << rev.status();
  ASSERT_TRUE(client_->Put("/t/b", "2").ok());
  ASSERT_TRUE(client_->Put("/u", "3").ok());
  auto range = client_->Range(KeyRange::Prefix("/t/"));
  ASSERT_TRUE(range.ok()) << range.status();
  ASSERT_EQ(range->kvs.size(), 2u);
  EXPECT_EQ(range->kvs[0].value, binary);
  EXPECT_EQ(range->kvs[0].mod_revision, *rev);

  TxnRequest cas;
  cas.compares.push_back(Compare::ModRevisionIs("/t/a", *rev));
  cas.success.push_back(TxnOp::Put("/t/a", "new"));
  cas.failure.push_back(TxnOp::Get(KeyRange::Single("/t/a")));
  auto won = TxnOrAbort(*client_, cas, "first cas");
  ASSERT_TRUE(won.ok()) << won.status();
  auto lost = client_->Txn(cas);  // same expected revision: now stale
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_FALSE(lost->succeeded);
  ASSERT_EQ(lost->ranges.size(), 1u);
  EXPECT_EQ(lost->ranges[0].kvs.at(0).value, "new");
  EXPECT_EQ(TxnOrAbort(*client_, cas, "stale cas").status().code(), StatusCode::kAborted);

  EXPECT_EQ(*client_->Delete(KeyRange::Prefix("/t/")), 2);
  EXPECT_TRUE(client_->Range(KeyRange::Prefix("/t/"))->kvs.empty());
  // etcd's own errors come back as values.
  EXPECT_EQ(client_->Put("/t/x", "v", /*lease=*/12345).status().code(), StatusCode::kNotFound);
}

TEST_F(ClusterEtcdTest, ExpiredLeaseRemovesANodeRecordAndAKeptLeaseDoesNot) {
  Membership membership(*client_, keys_);
  NodeRecord dying = Nodes()[0];
  NodeRecord living = Nodes()[1];
  auto dead = membership.Register(dying, /*ttl_seconds=*/1);
  ASSERT_TRUE(dead.ok()) << dead.status();
  auto alive = membership.Register(living, /*ttl_seconds=*/1);
  ASSERT_TRUE(alive.ok()) << alive.status();
  LeaseKeeper keeper(*client_, alive->lease_id, milliseconds(200));
  auto list = membership.ListNodes();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->nodes.size(), 2u);

  // Nobody refreshes the first lease: etcd deletes its record.
  ASSERT_TRUE(WaitFor([&] {
    auto l = membership.ListNodes();
    return l.ok() && l->nodes.size() == 1;
  })) << "the node record outlived its lease";
  list = membership.ListNodes();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->nodes.size(), 1u);
  EXPECT_EQ(list->nodes[0], living);  // kept alive past its 1 s TTL
  EXPECT_EQ(client_->KeepAlive(dead->lease_id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(keeper.status().ok()) << keeper.status();
  EXPECT_FALSE(keeper.lost());
}

TEST_F(ClusterEtcdTest, OfConcurrentReconfigurationsExactlyOneWins) {
  PlacementStore store(*client_, keys_);
  auto current = store.Create("r1", 3, Nodes());
  ASSERT_TRUE(current.ok()) << current.status();
  constexpr int kContenders = 4;
  std::barrier start(kContenders);
  std::atomic<int> wins{0};
  std::atomic<int> aborts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kContenders; ++i) {
    threads.emplace_back([&, i] {
      auto client = etcd_.Client();  // one connection each: real concurrency
      PlacementStore mine(*client, keys_);
      auto next = WithPrimary(current->placement, current->placement.replicas[i % 3]);
      start.arrive_and_wait();
      auto result = mine.Reconfigure(*current, *next);
      if (result.ok()) {
        ++wins;
      } else if (result.status().code() == StatusCode::kAborted) {
        ++aborts;
      } else {
        ADD_FAILURE() << result.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(aborts.load(), kContenders - 1);
  auto now = store.Get("r1");
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->placement.epoch, 2u);  // one bump, not one per contender
}

TEST_F(ClusterEtcdTest, WatchSeesAPlacementChange) {
  PlacementStore store(*client_, keys_);
  auto current = store.Create("r1", 2, Nodes());
  ASSERT_TRUE(current.ok()) << current.status();
  auto watch = store.Watch("r1", current->mod_revision + 1);
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto next = WithoutReplica(current->placement, current->placement.primary);
  ASSERT_TRUE(next.ok());
  auto committed = store.Reconfigure(*current, *next);
  ASSERT_TRUE(committed.ok()) << committed.status();
  auto change = (*watch)->Next(std::chrono::seconds(20));
  ASSERT_TRUE(change.ok()) << change.status();
  ASSERT_TRUE(change->placement.has_value());
  EXPECT_EQ(*change->placement, committed->placement);
  EXPECT_EQ(change->mod_revision, committed->mod_revision);
}

TEST_F(ClusterEtcdTest, EtcdDownIsUnavailableNotAHang) {
  auto watch = client_->Watch(KeyRange::Prefix("/w/"), 0);
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto quick = etcd_.Client(milliseconds(1000));
  etcd_.Kill();
  EXPECT_EQ(quick->Range(KeyRange::Single("/a")).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(quick->Put("/a", "1").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(quick->GrantLease(5).status().code(), StatusCode::kUnavailable);
  Membership membership(*quick, keys_);
  EXPECT_EQ(membership.ListNodes().status().code(), StatusCode::kUnavailable);
  // The open watch ends instead of waiting forever.
  Result<WatchBatch> next = Status::Timeout("not yet");
  ASSERT_TRUE(WaitFor([&] {
    next = (*watch)->Next(milliseconds(100));
    return next.status().code() != StatusCode::kTimeout;
  }));
  EXPECT_EQ(next.status().code(), StatusCode::kUnavailable) << next.status();
}

TEST_F(ClusterEtcdTest, StoppedEtcdTimesOutAndReadsFailOver) {
  // Two endpoints, the first dead: calls fail over to the live one.
  EtcdHttpOptions options;
  options.endpoints = {"http://127.0.0.1:" + std::to_string(cluster_test::FreePort()),
                       etcd_.endpoint()};
  options.request_timeout = milliseconds(1500);
  auto both = OpenEtcdHttpClient(options);
  ASSERT_TRUE(both.ok());
  ASSERT_TRUE((*both)->Put("/f", "1").ok());
  ASSERT_EQ((*both)->Range(KeyRange::Single("/f"))->kvs.size(), 1u);

  // A stopped (not dead) etcd accepts connections but never answers: a
  // write's outcome is unknown (Timeout), a read gives up (Unavailable).
  auto quick = etcd_.Client(milliseconds(1000));
  etcd_.Pause();
  const Status put = quick->Put("/f", "2").status();
  const Status get = quick->Range(KeyRange::Single("/f")).status();
  etcd_.Resume();
  EXPECT_EQ(put.code(), StatusCode::kTimeout) << put;
  EXPECT_EQ(get.code(), StatusCode::kUnavailable) << get;
  // And it serves again once resumed.
  EXPECT_TRUE(WaitFor([&] { return quick->Range(KeyRange::Single("/f")).ok(); }));
}

}  // namespace
}  // namespace cosmos::cluster
