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
#include <string>
#include <thread>

#include "cluster/etcd_client.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "cosmos/result.h"
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
  Status CheckReplica(std::string_view region, uint64_t epoch, bool may_block) override;
  bool IsReplicated(std::string_view region) override;

  // The placement of `region` as this node knows it (tests, logs).
  std::optional<cluster::RegionPlacement> Known(std::string_view region);

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
  Status FinishForward(const std::string& node, std::string_view region);
  Status Forward(const std::string& node, std::string_view region, uint64_t epoch,
                 std::span<const protocol::Op> ops, std::span<const protocol::OpResult> results);
  // Removes `dead` from `region` by compare-and-swap, if the region is still
  // at `epoch` (the configuration in which the failure was seen) and lists it.
  void RemoveReplica(std::string_view region, const std::string& dead, uint64_t epoch);
  std::mutex& RegionMutex(std::string_view region);
  Result<std::string> AddressOf(const std::string& node);

  void WatchLoop();
  void DetectLoop();
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
  std::thread watch_thread_, detect_thread_;
};

}  // namespace cosmos::replication
