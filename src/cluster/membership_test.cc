// Tests of node records and registration, over the in-memory etcd.
#include "cluster/membership.h"

#include <gtest/gtest.h>

#include <thread>

#include "cluster/etcd_client_memory.h"

namespace cosmos::cluster {
namespace {

NodeRecord Node(std::string id, std::string address = "127.0.0.1:31850", std::string domain = "") {
  return {std::move(id), std::move(address), std::move(domain), 1u << 30};
}

TEST(NodeRecord, RoundTripsThroughJson) {
  const NodeRecord n = Node("n1", "mem-1.example:31850", "rack-a");
  const std::string text = EncodeNodeRecord(n);
  EXPECT_NE(text.find("\"format\":1"), std::string::npos);
  auto back = DecodeNodeRecord(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, n);
}

TEST(NodeRecord, RejectsInvalidFields) {
  for (const NodeRecord& bad : {Node(""), Node("a/b"), Node("n", "nohost"), Node("n", ":80"),
                                Node("n", "h:0"), Node("n", "h:70000"), Node("n", "h p:1"),
                                Node("n", "h:1", "rack/1"), Node(std::string(64, 'x'))}) {
    EXPECT_EQ(ValidateNodeRecord(bad).code(), StatusCode::kInvalidArgument) << bad.id;
  }
}

TEST(NodeRecord, DecodeIsStrict) {
  for (std::string_view bad :
       {R"({"id":"n","address":"h:1","capacity_bytes":1})",  // no format
        R"({"format":0,"id":"n","address":"h:1","capacity_bytes":1})",
        R"({"format":"1","id":"n","address":"h:1","capacity_bytes":1})",
        R"({"format":1,"id":"n","address":"h:1"})",  // no capacity
        R"({"format":1,"id":"n","address":"h:1","capacity_bytes":-1})",
        R"({"format":1,"id":"n","address":"h:1","capacity_bytes":1.5})",
        R"({"format":1,"id":7,"address":"h:1","capacity_bytes":1})",
        R"({"format":1,"id":"n/../x","address":"h:1","capacity_bytes":1})",
        R"({"format":1,"id":"n","address":"h:1","failure_domain":null,"capacity_bytes":1})", "",
        "{", "[]"}) {
    EXPECT_EQ(DecodeNodeRecord(bad).status().code(), StatusCode::kCorruption) << bad;
  }
  // A newer format is not guessed at; unknown fields of a known one are fine.
  EXPECT_EQ(DecodeNodeRecord(R"({"format":2,"id":"n","address":"h:1","capacity_bytes":1})")
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      DecodeNodeRecord(R"({"format":1,"id":"n","address":"h:1","capacity_bytes":1,"x":[1]})").ok());
}

class MembershipTest : public ::testing::Test {
 protected:
  MemoryEtcd etcd_;
  Membership membership_{etcd_, ClusterKeys("/test/")};
};

TEST_F(MembershipTest, RegisteredNodesAreListedUntilTheirLeaseExpires) {
  auto a = membership_.Register(Node("a", "127.0.0.1:1"), 5);
  auto b = membership_.Register(Node("b", "127.0.0.1:2"), 5);
  ASSERT_TRUE(a.ok() && b.ok());
  auto list = membership_.ListNodes();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->nodes.size(), 2u);
  EXPECT_EQ(list->nodes[0].id, "a");
  etcd_.ExpireLease(a->lease_id);
  list = membership_.ListNodes();
  ASSERT_EQ(list->nodes.size(), 1u);
  EXPECT_EQ(list->nodes[0].id, "b");
  EXPECT_TRUE(membership_.Deregister(*b).ok());
  EXPECT_TRUE(membership_.ListNodes()->nodes.empty());
}

TEST_F(MembershipTest, AnIdHeldByAnotherLiveNodeIsRefused) {
  ASSERT_TRUE(membership_.Register(Node("a", "127.0.0.1:1"), 5).ok());
  auto clash = membership_.Register(Node("a", "127.0.0.1:2"), 5);
  EXPECT_EQ(clash.status().code(), StatusCode::kAlreadyExists) << clash.status();
  EXPECT_EQ(etcd_.leases().size(), 1u);  // the clashing lease was revoked
}

TEST_F(MembershipTest, ARestartedNodeTakesOverItsOwnRecord) {
  auto first = membership_.Register(Node("a", "127.0.0.1:1"), 5);
  ASSERT_TRUE(first.ok());
  auto again = membership_.Register(Node("a", "127.0.0.1:1"), 5);
  ASSERT_TRUE(again.ok()) << again.status();
  // The record now lives on the new lease: the old one expiring leaves it.
  etcd_.ExpireLease(first->lease_id);
  ASSERT_EQ(membership_.ListNodes()->nodes.size(), 1u);
}

TEST_F(MembershipTest, MalformedRecordsAreReportedNotFatal) {
  ASSERT_TRUE(membership_.Register(Node("a"), 5).ok());
  ASSERT_TRUE(etcd_.Put("/test/nodes/evil", "{not json").ok());
  ASSERT_TRUE(etcd_.Put("/test/nodes/liar", EncodeNodeRecord(Node("other"))).ok());
  auto list = membership_.ListNodes();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->nodes.size(), 1u);
  EXPECT_EQ(list->malformed_keys,
            (std::vector<std::string>{"/test/nodes/evil", "/test/nodes/liar"}));
}

TEST_F(MembershipTest, EtcdDownIsUnavailable) {
  etcd_.SetAvailable(false);
  EXPECT_EQ(membership_.Register(Node("a"), 5).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(membership_.ListNodes().status().code(), StatusCode::kUnavailable);
}

TEST_F(MembershipTest, LeaseKeeperNoticesALostLease) {
  auto reg = membership_.Register(Node("a"), 5);
  ASSERT_TRUE(reg.ok());
  LeaseKeeper keeper(etcd_, reg->lease_id, std::chrono::milliseconds(5));
  etcd_.ExpireLease(reg->lease_id);
  // Condition wait, generous deadline: the keeper refreshes every 5 ms.
  for (int i = 0; i < 2000 && !keeper.lost(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(keeper.lost());
  EXPECT_EQ(keeper.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cosmos::cluster
