// Tests of placement records, replica choice, configuration edits and
// compare-and-swap reconfiguration, over the in-memory etcd.
#include "cluster/placement.h"

#include <gtest/gtest.h>

#include <set>

#include "cluster/etcd_client_memory.h"

namespace cosmos::cluster {
namespace {

NodeRecord Node(std::string id, std::string domain, uint64_t capacity = 100) {
  return {std::move(id), "127.0.0.1:1", std::move(domain), capacity};
}

RegionPlacement Placement() { return {"r1", 3, {"a", "b", "c"}, "b", 4}; }

TEST(PlacementRecord, RoundTripsThroughJson) {
  auto back = DecodePlacement(EncodePlacement(Placement()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, Placement());
}

// An operator's add-replica request rides on the record: absent when empty
// (records of older builds are unchanged), never a replica, cleared once the
// node is added.
TEST(PlacementRecord, JoiningNodeRoundTripsAndIsClearedWhenAdded) {
  EXPECT_EQ(EncodePlacement(Placement()).find("joining"), std::string::npos);
  RegionPlacement p = Placement();
  p.replication_factor = 4;
  p.joining = "d";
  auto back = DecodePlacement(EncodePlacement(p));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, p);
  auto added = WithReplica(p, "d");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->joining, "");
  EXPECT_EQ(added->replicas.size(), 4u);
  auto other = WithReplica(p, "e");  // another node: the request stays
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->joining, "d");
  RegionPlacement bad = p;
  bad.joining = "a";  // already a replica
  EXPECT_EQ(ValidatePlacement(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodePlacement(R"({"format":1,"region":"r1","replication_factor":4,"epoch":4,)"
                            R"("primary":"b","replicas":["a","b","c"],"joining":"a"})")
                .status()
                .code(),
            StatusCode::kCorruption);
  EXPECT_EQ(DecodePlacement(R"({"format":1,"region":"r1","replication_factor":4,"epoch":4,)"
                            R"("primary":"b","replicas":["a","b","c"],"joining":7})")
                .status()
                .code(),
            StatusCode::kCorruption);
}

TEST(PlacementRecord, InvariantsAreEnforced) {
  auto with = [](auto edit) {
    RegionPlacement p = Placement();
    edit(p);
    return ValidatePlacement(p).code();
  };
  EXPECT_EQ(with([](RegionPlacement& p) { p.replication_factor = 0; }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](RegionPlacement& p) { p.replication_factor = 6; }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](RegionPlacement& p) { p.replication_factor = 2; }),
            StatusCode::kInvalidArgument);  // more replicas than the factor
  EXPECT_EQ(with([](RegionPlacement& p) {
              p.replicas = {"a", "a"};
            }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](RegionPlacement& p) { p.primary = "z"; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](RegionPlacement& p) { p.epoch = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](RegionPlacement& p) { p.replicas.clear(); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](RegionPlacement& p) { p.region = "a/b"; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](RegionPlacement& p) { p.replicas = {"b"}; }), StatusCode::kOk);  // degraded
}

TEST(PlacementRecord, DecodeIsStrict) {
  for (
      std::string_view bad : {
          R"({"format":1,"region":"r","replication_factor":2,"epoch":1,"primary":"a","replicas":["a","a"]})",
          R"({"format":1,"region":"r","replication_factor":2,"epoch":1,"primary":"a","replicas":["a",7]})",
          R"({"format":1,"region":"r","replication_factor":2,"epoch":-1,"primary":"a","replicas":["a"]})",
          R"({"format":1,"region":"r","replication_factor":2,"epoch":1,"primary":"a"})",
          R"({"format":1,"region":"r","replication_factor":99999999999,"epoch":1,"primary":"a","replicas":["a"]})",
          R"({"format":1,"region":"r","replication_factor":5,"epoch":1,"primary":"a","replicas":["a","b","c","d","e","f"]})",
          R"({"format":1,"region":"r","replication_factor":1,"epoch":1,"primary":"b","replicas":["a"]})",
      }) {
    EXPECT_EQ(DecodePlacement(bad).status().code(), StatusCode::kCorruption) << bad;
  }
  EXPECT_EQ(
      DecodePlacement(
          R"({"format":9,"region":"r","replication_factor":1,"epoch":1,"primary":"a","replicas":["a"]})")
          .status()
          .code(),
      StatusCode::kFailedPrecondition);
}

TEST(ChooseNodes, PrefersDistinctFailureDomains) {
  const std::vector<NodeRecord> nodes = {Node("a1", "zone-a", 500), Node("a2", "zone-a", 400),
                                         Node("b1", "zone-b", 100), Node("c1", "zone-c", 50)};
  auto three = ChooseNodes(nodes, 3, {});
  ASSERT_TRUE(three.ok());
  // One per zone, largest capacity first within the unused zones.
  EXPECT_EQ(*three, (std::vector<std::string>{"a1", "b1", "c1"}));
  // Four replicas: a zone must repeat, and only then.
  auto four = ChooseNodes(nodes, 4, {});
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->back(), "a2");
  // A replacement avoids the domains of the replicas that remain.
  auto replacement = ChooseNodes(nodes, 1, {"a1", "b1"});
  ASSERT_TRUE(replacement.ok());
  EXPECT_EQ(*replacement, std::vector<std::string>{"c1"});
  EXPECT_EQ(ChooseNodes(nodes, 5, {}).status().code(), StatusCode::kResourceExhausted);
}

TEST(ChooseNodes, UnlabelledNodesAreEachTheirOwnDomain) {
  const std::vector<NodeRecord> nodes = {Node("x", "", 10), Node("y", "", 20),
                                         Node("z", "rack", 5)};
  auto chosen = ChooseNodes(nodes, 3, {});
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(*chosen, (std::vector<std::string>{"y", "x", "z"}));
}

TEST(PlacementEdits, RemovingThePrimaryPromotesABackup) {
  auto next = WithoutReplica(Placement(), "b");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->replicas, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(next->primary, "a");
  EXPECT_TRUE(next->degraded());
  EXPECT_EQ(next->epoch, Placement().epoch);  // the store assigns the new epoch
  EXPECT_EQ(WithoutReplica(Placement(), "z").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(WithoutReplica({"r", 1, {"a"}, "a", 1}, "a").status().code(),
            StatusCode::kFailedPrecondition);
  auto restored = WithReplica(*next, "d");
  ASSERT_TRUE(restored.ok());
  EXPECT_FALSE(restored->degraded());
  EXPECT_EQ(WithReplica(*restored, "e").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(WithReplica(*next, "a").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(WithPrimary(Placement(), "c")->primary, "c");
  EXPECT_EQ(WithPrimary(Placement(), "z").status().code(), StatusCode::kFailedPrecondition);
}

class PlacementStoreTest : public ::testing::Test {
 protected:
  const std::vector<NodeRecord> nodes_ = {Node("a", "z1"), Node("b", "z2"), Node("c", "z3"),
                                          Node("d", "z1")};
  MemoryEtcd etcd_;
  PlacementStore store_{etcd_, ClusterKeys("/test/")};
};

TEST_F(PlacementStoreTest, CreateGetAndList) {
  auto created = store_.Create("r1", 3, nodes_);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->placement.epoch, 1u);
  std::set<std::string> domains;
  for (const auto& id : created->placement.replicas) {
    for (const auto& n : nodes_) {
      if (n.id == id) domains.insert(n.failure_domain);
    }
  }
  EXPECT_EQ(domains.size(), 3u);
  auto got = store_.Get("r1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->placement, created->placement);
  EXPECT_EQ(got->mod_revision, created->mod_revision);
  EXPECT_EQ(store_.Create("r1", 1, nodes_).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_.Get("r2").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.Create("r2", 6, nodes_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.Create("r2", 5, nodes_).status().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(store_.Create("r0", 1, nodes_).ok());
  auto list = store_.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->regions.size(), 2u);
  EXPECT_EQ(list->regions[0].placement.region, "r0");
}

TEST_F(PlacementStoreTest, OfTwoConcurrentReconfigurationsExactlyOneWins) {
  auto current = store_.Create("r1", 3, nodes_);
  ASSERT_TRUE(current.ok());
  const std::string victim = current->placement.replicas[1];
  auto remove = WithoutReplica(current->placement, victim);
  auto promote = WithPrimary(current->placement, current->placement.replicas[2]);
  ASSERT_TRUE(remove.ok() && promote.ok());
  // Both decided from the same read; only the first commit may land.
  auto first = store_.Reconfigure(*current, *remove);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->placement.epoch, 2u);
  auto second = store_.Reconfigure(*current, *promote);
  EXPECT_EQ(second.status().code(), StatusCode::kAborted) << second.status();
  auto now = store_.Get("r1");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->placement, first->placement);
  // The loser re-reads and retries on the new version.
  auto retried = store_.Reconfigure(*now, *WithPrimary(now->placement, now->placement.replicas[1]));
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->placement.epoch, 3u);
}

TEST_F(PlacementStoreTest, ReconfigureRejectsInvalidNextConfigurations) {
  auto current = store_.Create("r1", 2, nodes_);
  ASSERT_TRUE(current.ok());
  RegionPlacement other = current->placement;
  other.region = "r2";
  EXPECT_EQ(store_.Reconfigure(*current, other).status().code(), StatusCode::kInvalidArgument);
  RegionPlacement bad = current->placement;
  bad.primary = "nobody";
  EXPECT_EQ(store_.Reconfigure(*current, bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.Get("r1")->placement.epoch, 1u);
}

TEST_F(PlacementStoreTest, WatchSeesEachNewEpochAndRemoval) {
  auto current = store_.Create("r1", 2, nodes_);
  ASSERT_TRUE(current.ok());
  auto watch = store_.Watch("r1", current->mod_revision + 1);
  ASSERT_TRUE(watch.ok());
  auto next = store_.Reconfigure(*current,
                                 *WithPrimary(current->placement, current->placement.replicas[1]));
  ASSERT_TRUE(next.ok());
  auto change = (*watch)->Next(std::chrono::milliseconds(5000));
  ASSERT_TRUE(change.ok()) << change.status();
  ASSERT_TRUE(change->placement.has_value());
  EXPECT_EQ(change->placement->epoch, 2u);
  EXPECT_EQ(change->mod_revision, next->mod_revision);
  EXPECT_EQ(store_.Remove(*current).code(), StatusCode::kAborted);  // stale version
  ASSERT_TRUE(store_.Remove(*next).ok());
  change = (*watch)->Next(std::chrono::milliseconds(5000));
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_FALSE(change->placement.has_value());
}

TEST_F(PlacementStoreTest, EtcdDownIsUnavailable) {
  etcd_.SetAvailable(false);
  EXPECT_EQ(store_.Create("r1", 1, nodes_).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store_.Get("r1").status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace cosmos::cluster
