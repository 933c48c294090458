// Cluster membership: each memory node registers a NodeRecord in etcd under
// a lease it keeps alive, so a dead node's record disappears when the lease
// expires. Record format: docs/cluster.md ("Node record").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/cluster_keys.h"
#include "cluster/etcd_client.h"
#include "cosmos/result.h"

namespace cosmos::cluster {

// The format version this build writes and the newest it reads.
inline constexpr uint64_t kNodeRecordFormat = 1;

// What a memory node announces about itself.
struct NodeRecord {
  std::string id;              // unique in the cluster (ValidateName)
  std::string address;         // host:port of its cosmosd RPC endpoint
  std::string failure_domain;  // zone/rack label; empty: its own domain
  uint64_t capacity_bytes = 0;

  friend bool operator==(const NodeRecord&, const NodeRecord&) = default;
};

// Ok when every field is well-formed; InvalidArgument naming the field.
Status ValidateNodeRecord(const NodeRecord& record);
// The record as versioned JSON. REQUIRES: ValidateNodeRecord(record).ok().
std::string EncodeNodeRecord(const NodeRecord& record);
// Parses a record read from etcd (untrusted: written by any node). Corruption
// when malformed or invalid; FailedPrecondition when its format is newer than
// this build reads. Unknown fields are ignored (additions within a format).
Result<NodeRecord> DecodeNodeRecord(std::string_view text);

// A live registration: the record is attached to `lease_id`.
struct NodeRegistration {
  int64_t lease_id = 0;
  int64_t ttl_seconds = 0;
  int64_t revision = 0;  // the etcd revision of the record's write
};

// The nodes registered at one etcd revision. Records that do not decode are
// listed by key (and logged) rather than failing the listing.
struct NodeList {
  int64_t revision = 0;
  std::vector<NodeRecord> nodes;  // sorted by id
  std::vector<std::string> malformed_keys;
};

// Registers and lists nodes. Holds a reference to `etcd`, which must outlive
// it. Thread-safety: as the EtcdClient (every method may run concurrently).
class Membership {
 public:
  Membership(EtcdClient& etcd, ClusterKeys keys) : etcd_(etcd), keys_(std::move(keys)) {}

  // Grants a lease of `ttl_seconds` and writes `record` under it. A record of
  // the same id and address (this node before a restart, its lease not yet
  // expired) is taken over. Errors: InvalidArgument for a bad record or TTL,
  // AlreadyExists when a live node of another address holds the id, Aborted
  // when the record changed during the call, or the EtcdClient's errors. On
  // failure the new lease is revoked (best effort).
  Result<NodeRegistration> Register(const NodeRecord& record, int64_t ttl_seconds);

  // Removes the registration now (revokes its lease). NotFound when it had
  // already expired.
  Status Deregister(const NodeRegistration& registration);

  // Lists every registered (live) node.
  Result<NodeList> ListNodes();

  const ClusterKeys& keys() const { return keys_; }

 private:
  // Replaces an existing record of the same node under `lease_id`.
  Result<int64_t> TakeOver(const NodeRecord& record, const KeyValue& existing, int64_t lease_id);

  EtcdClient& etcd_;
  const ClusterKeys keys_;
};

// Keeps a lease alive from a background thread, refreshing it every
// `interval` (a third of the TTL leaves two refreshes of slack). Stops by
// itself once etcd reports the lease expired. Destruction stops the thread;
// it does not revoke the lease. Thread-safety: status() may be called from
// any thread.
class LeaseKeeper {
 public:
  // REQUIRES: `etcd` outlives the keeper; interval > 0.
  LeaseKeeper(EtcdClient& etcd, int64_t lease_id, std::chrono::milliseconds interval);
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // The outcome of the last refresh: ok, a transient error (Unavailable,
  // Timeout: the keeper keeps trying), or NotFound once the lease is lost.
  Status status() const;
  // True once etcd reported the lease expired: the node's record is gone and
  // it must register again.
  bool lost() const;

 private:
  void Run();

  EtcdClient& etcd_;
  const int64_t lease_id_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool lost_ = false;
  Status status_;
  std::thread thread_;
};

}  // namespace cosmos::cluster
