// MemoryEtcd: the in-memory twin of etcd behind the EtcdClient interface,
// with etcd's revision, transaction, lease and watch semantics and fault
// injection (unavailability, lease expiry on demand). For unit tests of the
// cluster model and, later, of the data path without an etcd process.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "cluster/etcd_client.h"

namespace cosmos::cluster {

// Thread-safety: every method may be called concurrently. Watch streams may
// outlive the MemoryEtcd (they then report Unavailable).
class MemoryEtcd final : public EtcdClient {
 public:
  MemoryEtcd() = default;
  ~MemoryEtcd() override;

  Result<RangeResult> Range(const KeyRange& range, int64_t limit = 0) override;
  Result<int64_t> Put(std::string_view key, std::string_view value, int64_t lease = 0) override;
  Result<int64_t> Delete(const KeyRange& range) override;
  Result<TxnResult> Txn(const TxnRequest& request) override;
  Result<LeaseGrant> GrantLease(int64_t ttl_seconds) override;
  Result<int64_t> KeepAlive(int64_t lease_id) override;
  Status RevokeLease(int64_t lease_id) override;
  Result<std::unique_ptr<WatchStream>> Watch(const KeyRange& range,
                                             int64_t start_revision) override;

  // Fault injection: while unavailable every call returns Unavailable (as
  // with etcd down) and every open watch stream ends with Unavailable.
  void SetAvailable(bool available);
  // Expires a lease now, as if its TTL ran out: its keys are deleted (one
  // revision, with delete events). No-op for an unknown lease.
  void ExpireLease(int64_t lease_id);
  // The current revision (1 for an empty store, as etcd).
  int64_t revision() const;
  // The live lease ids.
  std::vector<int64_t> leases() const;

  struct WatchState;  // shared with the streams; defined in the .cc

 private:
  Status CheckAvailable() const;
  // Applies one op at revision `rev` (REQUIRES: mu_ held); appends events.
  Status ApplyPut(const std::string& key, std::string_view value, int64_t lease, int64_t rev,
                  std::vector<WatchEvent>& events);
  void ApplyDelete(const KeyRange& range, int64_t rev, std::vector<WatchEvent>& events,
                   int64_t* deleted);
  RangeResult ReadRange(const KeyRange& range, int64_t limit) const;
  // Records `events` at revision_ and hands them to matching watchers.
  void Publish(std::vector<WatchEvent> events);
  bool EvaluateCompare(const Compare& c) const;

  mutable std::mutex mu_;
  bool available_ = true;
  int64_t revision_ = 1;
  int64_t next_lease_ = 0x1000;
  std::map<std::string, KeyValue> kvs_;
  std::map<int64_t, int64_t> leases_;  // id -> TTL seconds
  std::vector<WatchEvent> history_;    // every event, for watches from a past revision
  std::vector<std::shared_ptr<WatchState>> watches_;
};

}  // namespace cosmos::cluster
