// Tests that the in-memory etcd twin keeps etcd's semantics the cluster
// model relies on: revisions, transactions, leases, watches, unavailability.
#include "cluster/etcd_client_memory.h"

#include <gtest/gtest.h>

namespace cosmos::cluster {
namespace {

using std::chrono::milliseconds;

TEST(MemoryEtcd, RevisionsFollowEtcd) {
  MemoryEtcd etcd;
  EXPECT_EQ(etcd.revision(), 1);
  ASSERT_EQ(*etcd.Put("/a", "1"), 2);
  ASSERT_EQ(*etcd.Put("/a", "2"), 3);
  auto r = etcd.Range(KeyRange::Single("/a"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].create_revision, 2);
  EXPECT_EQ(r->kvs[0].mod_revision, 3);
  EXPECT_EQ(r->kvs[0].version, 2);
  EXPECT_EQ(*etcd.Delete(KeyRange::Single("/missing")), 0);
  EXPECT_EQ(etcd.revision(), 3);  // a delete of nothing writes nothing
}

TEST(MemoryEtcd, PrefixRangeAndLimit) {
  MemoryEtcd etcd;
  for (const char* k : {"/p/a", "/p/b", "/p/c", "/q"}) ASSERT_TRUE(etcd.Put(k, "v").ok());
  auto all = etcd.Range(KeyRange::Prefix("/p/"));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kvs.size(), 3u);
  auto two = etcd.Range(KeyRange::Prefix("/p/"), 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->kvs.size(), 2u);
  EXPECT_TRUE(two->more);
  EXPECT_EQ(two->count, 3);
  EXPECT_EQ(etcd.Range({"/", std::string(1, '\0')})->kvs.size(), 4u);
}

TEST(MemoryEtcd, TxnAppliesOneBranchAtOneRevision) {
  MemoryEtcd etcd;
  TxnRequest txn;
  txn.compares.push_back(Compare::Absent("/a"));
  txn.success = {TxnOp::Put("/a", "1"), TxnOp::Put("/b", "1")};
  txn.failure = {TxnOp::Get(KeyRange::Single("/a"))};
  auto first = etcd.Txn(txn);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->succeeded);
  EXPECT_EQ(first->revision, 2);
  auto second = etcd.Txn(txn);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->succeeded);
  ASSERT_EQ(second->ranges.size(), 1u);
  EXPECT_EQ(second->ranges[0].kvs[0].mod_revision, 2);
  EXPECT_EQ(TxnOrAbort(etcd, txn, "again").status().code(), StatusCode::kAborted);
}

TEST(MemoryEtcd, ExpiredLeaseDeletesItsKeys) {
  MemoryEtcd etcd;
  auto lease = etcd.GrantLease(5);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(etcd.Put("/n/1", "x", lease->id).ok());
  ASSERT_TRUE(etcd.Put("/n/2", "y").ok());
  EXPECT_EQ(*etcd.KeepAlive(lease->id), 5);
  etcd.ExpireLease(lease->id);
  EXPECT_TRUE(etcd.Range(KeyRange::Single("/n/1"))->kvs.empty());
  EXPECT_EQ(etcd.Range(KeyRange::Single("/n/2"))->kvs.size(), 1u);
  EXPECT_EQ(etcd.KeepAlive(lease->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(etcd.Put("/n/3", "z", lease->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(etcd.RevokeLease(lease->id).code(), StatusCode::kNotFound);
}

TEST(MemoryEtcd, WatchSeesChangesAndReplaysHistory) {
  MemoryEtcd etcd;
  ASSERT_TRUE(etcd.Put("/w/a", "0").ok());  // revision 2
  auto live = etcd.Watch(KeyRange::Prefix("/w/"), 0);
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(etcd.Put("/w/a", "1").ok());
  ASSERT_TRUE(etcd.Put("/other", "1").ok());
  ASSERT_TRUE(etcd.Delete(KeyRange::Single("/w/a")).ok());
  auto put = (*live)->Next(milliseconds(1000));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->events[0].kv.value, "1");
  auto del = (*live)->Next(milliseconds(1000));
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ((*live)->Next(milliseconds(1)).status().code(), StatusCode::kTimeout);

  auto replay = etcd.Watch(KeyRange::Prefix("/w/"), 2);
  ASSERT_TRUE(replay.ok());
  int events = 0;
  while ((*replay)->Next(milliseconds(1)).ok()) ++events;
  EXPECT_EQ(events, 3);  // put at 2, put at 3, delete at 5
}

TEST(MemoryEtcd, UnavailableFailsCallsAndEndsWatches) {
  MemoryEtcd etcd;
  auto watch = etcd.Watch(KeyRange::Single("/a"), 0);
  ASSERT_TRUE(watch.ok());
  etcd.SetAvailable(false);
  EXPECT_EQ(etcd.Put("/a", "1").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(etcd.Range(KeyRange::Single("/a")).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*watch)->Next(milliseconds(1000)).status().code(), StatusCode::kUnavailable);
  etcd.SetAvailable(true);
  EXPECT_TRUE(etcd.Put("/a", "1").ok());
}

}  // namespace
}  // namespace cosmos::cluster
