// Region placement: which nodes hold a region's replicas, which one is the
// primary, and the epoch that fences older configurations. Records live in
// etcd and change only by compare-and-swap on their mod_revision, each change
// bumping the epoch. Record format: docs/cluster.md ("Placement record").
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster_keys.h"
#include "cluster/etcd_client.h"
#include "cluster/membership.h"
#include "cosmos/result.h"

namespace cosmos::cluster {

// The format version this build writes and the newest it reads.
inline constexpr uint64_t kPlacementFormat = 1;
inline constexpr int kMinReplicationFactor = 1;
inline constexpr int kMaxReplicationFactor = 5;

// The configuration of one region at one epoch.
// Invariants (ValidatePlacement): 1 <= replication_factor <= 5; replicas are
// 1..replication_factor distinct node ids (fewer than the factor while the
// region is degraded: a failed replica was removed and its replacement is
// not yet added); the primary is one of them; epoch >= 1.
struct RegionPlacement {
  std::string region;
  int replication_factor = 1;
  std::vector<std::string> replicas;
  std::string primary;
  uint64_t epoch = 1;
  // A node an operator asked to add (`cosmos cluster add-replica`): the
  // primary resyncs this node, not one it chooses, into the degraded region.
  // Empty: the primary chooses. Never a replica; cleared by WithReplica.
  std::string joining;

  bool degraded() const { return static_cast<int>(replicas.size()) < replication_factor; }
  friend bool operator==(const RegionPlacement&, const RegionPlacement&) = default;
};

// Ok when the invariants above hold; InvalidArgument naming the violation.
Status ValidatePlacement(const RegionPlacement& placement);
// The record as versioned JSON. REQUIRES: ValidatePlacement(placement).ok().
std::string EncodePlacement(const RegionPlacement& placement);
// Parses a record read from etcd (untrusted). Corruption when malformed or
// invalid; FailedPrecondition when its format is newer than this build
// reads. Unknown fields are ignored.
Result<RegionPlacement> DecodePlacement(std::string_view text);

// Chooses `count` nodes from `nodes` for a region already on `current`
// (which are never chosen again). Prefers nodes whose failure domain none of
// the current or already chosen replicas has (an unlabelled node is its own
// domain), then more capacity, then the smaller id: deterministic for the
// same input. Falls back to a shared domain only when no unused one is left.
// ResourceExhausted when fewer than `count` nodes are eligible.
Result<std::vector<std::string>> ChooseNodes(const std::vector<NodeRecord>& nodes, size_t count,
                                             const std::vector<std::string>& current);

// Configuration edits: each returns the next placement with the same epoch
// (PlacementStore::Reconfigure assigns the new epoch) or FailedPrecondition.
// Removes `node`; when it was the primary, the first remaining replica in
// list order becomes primary. Fails for the last replica.
Result<RegionPlacement> WithoutReplica(const RegionPlacement& placement, std::string_view node);
// Adds `node` as a backup. Fails when it is already a replica or the region
// already has replication_factor replicas.
Result<RegionPlacement> WithReplica(const RegionPlacement& placement, std::string_view node);
// Makes replica `node` the primary.
Result<RegionPlacement> WithPrimary(const RegionPlacement& placement, std::string_view node);

// A placement and the etcd mod_revision it was read at: the token of a
// compare-and-swap.
struct VersionedPlacement {
  RegionPlacement placement;
  int64_t mod_revision = 0;
};

struct RegionList {
  int64_t revision = 0;
  std::vector<VersionedPlacement> regions;  // sorted by region name
  std::vector<std::string> malformed_keys;  // records that did not decode (logged)
};

// A change of one region's placement seen by a watch.
struct PlacementChange {
  std::optional<RegionPlacement> placement;  // nullopt: the region was removed
  int64_t mod_revision = 0;
};

// Follows one region's placement. Thread-safety: one consumer thread.
class PlacementWatch {
 public:
  explicit PlacementWatch(std::unique_ptr<WatchStream> stream) : stream_(std::move(stream)) {}

  // The next change within `timeout`. Timeout when none came; Corruption for
  // a record that does not decode; otherwise the stream's errors (see
  // WatchStream::Next: after Unavailable, watch again from the last
  // mod_revision + 1).
  Result<PlacementChange> Next(std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<WatchStream> stream_;
  std::deque<WatchEvent> pending_;
};

// Reads and changes placement records. Holds a reference to `etcd`, which
// must outlive it. Thread-safety: as the EtcdClient.
class PlacementStore {
 public:
  PlacementStore(EtcdClient& etcd, ClusterKeys keys) : etcd_(etcd), keys_(std::move(keys)) {}

  // Places a new region on `replication_factor` of `nodes` (ChooseNodes; the
  // first chosen is primary) at epoch 1. InvalidArgument for a bad name or
  // factor, ResourceExhausted for too few nodes, AlreadyExists when the
  // region is already placed.
  Result<VersionedPlacement> Create(std::string_view region, int replication_factor,
                                    const std::vector<NodeRecord>& nodes);

  // NotFound when the region is not placed; Corruption for a bad record.
  Result<VersionedPlacement> Get(std::string_view region);

  // Every placed region.
  Result<RegionList> List();

  // Replaces `current` by `next` at epoch current.epoch + 1, if and only if
  // the record is still at current.mod_revision. Of two reconfigurations
  // from the same current, exactly one succeeds; the other gets Aborted and
  // must Get() and decide again. InvalidArgument when `next` is invalid or
  // names another region.
  Result<VersionedPlacement> Reconfigure(const VersionedPlacement& current, RegionPlacement next);

  // Deletes the record if it is still at current.mod_revision (Aborted
  // otherwise).
  Status Remove(const VersionedPlacement& current);

  // Watches `region` from etcd revision `start_revision` (0: from now).
  Result<std::unique_ptr<PlacementWatch>> Watch(std::string_view region, int64_t start_revision);

  const ClusterKeys& keys() const { return keys_; }

 private:
  EtcdClient& etcd_;
  const ClusterKeys keys_;
};

}  // namespace cosmos::cluster
