// ClusterNode: what `cosmosd --cluster` adds to a memory node (docs/cluster.md
// "Data path"). It registers the node in etcd under a lease it keeps alive,
// follows the placement of every region, checks the epoch of each batch on a
// replicated region (fencing), forwards a primary's changes to the backups
// over the ordinary RPM client, and detects a dead primary (RPC heartbeats,
// the etcd lease as backstop) to fail over by an etcd compare-and-swap.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>

#include "cluster/etcd_client.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "common/metrics.h"
#include "cosmos/client.h"
#include "cosmos/result.h"
#include "replication/replication_metrics.h"
#include "server/replication_hook.h"

namespace cosmos::replication {

struct ClusterNodeOptions {
  std::string etcd_endpoints;  // comma-separated (cluster::ParseEtcdEndpoints)
  std::string node_id;         // cluster::ValidateName
  std::string zone;            // failure domain; empty: the node is its own
  uint64_t capacity_bytes = 0;
  int64_t lease_ttl_seconds = 3;
  // Failure detection of a primary by the backups: RPC heartbeats every
  // `heartbeat_interval`, the primary declared dead after `missed_heartbeats`
  // silent intervals (a session that ends). The etcd lease is the backstop.
  std::chrono::milliseconds heartbeat_interval{20};
  uint32_t missed_heartbeats = 5;
  // The node's enclave (cosmosd with platform keys), for secure replicated
  // regions: peer channels to the backups' enclaves start here. nullptr:
  // sealed batches on replicated regions are refused (FailedPrecondition).
  // Must outlive the ClusterNode.
  sec::Enclave* enclave = nullptr;
};

// Thread-safety: the ReplicationHook calls may run concurrently on any server
// thread; Join and the destructor on one thread.
class ClusterNode final : public server::ReplicationHook {
 public:
  // Opens the etcd client (no connection yet). InvalidArgument for bad options.
  static Result<std::unique_ptr<ClusterNode>> Create(ClusterNodeOptions options);
  // Stops the background threads and revokes the node's lease (best effort),
  // so its record disappears at once on a clean shutdown.
  ~ClusterNode() override;

  // Registers the node at `address` (host:port of its worker 0) and starts
  // keeping its lease, following placements and watching primaries. Errors:
  // Membership::Register's (AlreadyExists: a live node of another address
  // holds the id; Unavailable: etcd unreachable).
  Status Join(const std::string& address);

  // server::ReplicationHook
  void ExecutePrimary(std::string_view region, std::span<const protocol::Op> ops,
                      const LocalExecutor& local, protocol::ResponseBuilder* out) override;
  Status CheckReplica(std::string_view region, uint64_t epoch, bool resync,
                      bool may_block) override;
  bool IsReplicated(std::string_view region) override;
  Result<std::vector<std::byte>> ExecutePrimarySealed(std::string_view region, uint64_t epoch,
                                                      const SealedRunner& run) override;

  // The placement of `region` as this node knows it (tests, logs).
  std::optional<cluster::RegionPlacement> Known(std::string_view region);

  // Appends the replication metric families (replication_metrics.cc;
  // docs/operations.md "Metrics"). Thread-safe.
  void AppendMetrics(std::vector<MetricFamily>* out) const;

 private:
  struct Cached {
    cluster::RegionPlacement placement;
    int64_t mod_revision = 0;
  };

  explicit ClusterNode(ClusterNodeOptions options) : options_(std::move(options)) {}

  // The placement of `region`, read again from etcd when `epoch` is newer
  // than the cached one. NotFound when the region is not placed.
  Result<cluster::RegionPlacement> PlacementFor(std::string_view region, uint64_t epoch);
  // Installs a placement if it is newer (mod_revision) than the cached one.
  void Install(const cluster::VersionedPlacement& vp);
  // Stages the executed ops for backup `node` at `epoch` (posted writes and
  // flushes are sent without waiting; write-after-flush and atomics wait);
  // FinishForward then waits until the backup acknowledged all of it.
  // `resync`: to a node joining the region (kEpochFlagResync), not a backup.
  Status FinishForward(const std::string& node, std::string_view region, bool resync = false);
  Status Forward(const std::string& node, std::string_view region, uint64_t epoch,
                 std::span<const protocol::Op> ops, std::span<const protocol::OpResult> results,
                 bool resync = false);
  // Removes `dead` from `region` by compare-and-swap, if the region is still
  // at `epoch` (the configuration in which the failure was seen) and lists it.
  void RemoveReplica(std::string_view region, const std::string& dead, uint64_t epoch);
  std::mutex& RegionMutex(std::string_view region);
  Result<std::string> AddressOf(const std::string& node);

  // Resync (docs/cluster.md "Resync"): brings `joiner` to an identical copy
  // of `region` (a region this node is the primary of, at p.epoch) and adds
  // it by compare-and-swap (epoch + 1). While it runs, every batch the
  // primary executes is also forwarded to the joiner (the region stays
  // writable); the resync copies only the blocks whose Verify digest
  // differs, redoes a block a batch changed while it was copied or checked
  // (MarkDirty), and adds the node after a pass over every block found all
  // digests equal without interference.
  Status Resync(const cluster::RegionPlacement& p, const std::string& joiner);
  // Counts a change of each block a primary's executed batch wrote, for a
  // running resync of `region`.
  void MarkDirty(std::string_view region, std::span<const protocol::Op> ops,
                 std::span<const protocol::OpResult> results);

  // secure_replication.cc: the placement of `region` if this node is its
  // primary at exactly `epoch` (Aborted: stale epoch or not the primary;
  // Unavailable: epoch not known yet).
  Result<cluster::RegionPlacement> CheckPrimary(std::string_view region, uint64_t epoch);
  // The peer channel from this node's enclave to `node`'s enclave, opened
  // (one peer-hello round trip over `via`, a connection to that node) when
  // none is cached.
  Result<sec::PeerChannelId> PeerChannelTo(const std::string& node, Client& via);
  void DropPeerChannel(const std::string& node);
  // True once this node ran a sealed batch of `region` as its primary: the
  // resync loop skips it (a secure region's resync, enclave to enclave, is
  // not built yet; it logs that once per region).
  bool IsSecureRegion(std::string_view region);

  void WatchLoop();
  void DetectLoop();
  // Every 500 ms: each region this node is the primary of and that has fewer
  // replicas than its factor gets a registered node resynced into it.
  void ResyncLoop();
  bool Sleep(std::chrono::milliseconds d);  // false once stopping

  ClusterNodeOptions options_;
  std::unique_ptr<cluster::EtcdClient> etcd_;
  std::unique_ptr<cluster::Membership> membership_;
  std::unique_ptr<cluster::PlacementStore> placement_;
  // Set by Join; afterwards changed only by the detector thread (a lease
  // lost while etcd was down is registered again) and read by the destructor
  // once that thread has stopped.
  cluster::NodeRecord record_;
  std::optional<cluster::NodeRegistration> registration_;
  std::unique_ptr<cluster::LeaseKeeper> keeper_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, Cached, std::less<>> placements_;
  std::map<std::string, std::unique_ptr<std::mutex>, std::less<>> region_mutexes_;
  std::map<std::string, std::string> addresses_;  // node id -> host:port
  std::map<std::string, std::string> failed_at_;  // node id -> address it failed at
  // Running resyncs (at most one per region, driven by the resync thread).
  struct ResyncState {
    std::string joiner;
    bool failed = false;                   // a forward to the joiner failed
    std::map<uint64_t, uint64_t> changes;  // block -> writes seen
  };
  std::map<std::string, ResyncState, std::less<>> resyncs_;
  uint64_t Changes(std::string_view region, uint64_t block);  // ~0 when aborted
  std::map<std::string, sec::PeerChannelId> peer_channels_;   // node id -> channel (mu_)
  std::set<std::string, std::less<>> secure_regions_;         // see IsSecureRegion (mu_)
  std::set<std::string, std::less<>> secure_resync_logged_;   // (mu_)
  std::thread watch_thread_, detect_thread_, resync_thread_;
  ReplicationMetrics metrics_;
};

}  // namespace cosmos::replication
