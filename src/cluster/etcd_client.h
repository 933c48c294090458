// EtcdClient: the neutral interface of the cluster layer to etcd's v3 key-value
// store (ranges, transactions on revisions, leases, watches). Backends: HTTP
// to etcd's JSON gateway (etcd_client_http.h) and an in-memory twin with fault
// injection for tests (etcd_client_memory.h). Nothing here includes either.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cosmos/result.h"
#include "cosmos/status.h"

namespace cosmos::cluster {

// One key as etcd stores it. Revisions are etcd's cluster-wide revision
// counter at the key's creation and last modification; `version` counts the
// modifications since creation; `lease` is 0 when the key has no lease.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

// A key range [key, range_end) in etcd's convention: an empty range_end
// selects the single key `key`; PrefixRangeEnd(p) selects every key that
// starts with p.
struct KeyRange {
  std::string key;
  std::string range_end;

  static KeyRange Single(std::string key) { return {std::move(key), ""}; }
  static KeyRange Prefix(std::string prefix);
};

// The smallest key greater than every key starting with `prefix` (etcd's
// "range_end for a prefix"); "\0" (every key) for an empty or all-0xff prefix.
std::string PrefixRangeEnd(std::string_view prefix);

// The keys of a range read at one revision. `more` is true when a limit cut
// the listing; `count` is the number of keys in the whole range.
struct RangeResult {
  int64_t revision = 0;  // the store's revision when the read was served
  std::vector<KeyValue> kvs;
  bool more = false;
  int64_t count = 0;
};

// One condition of a transaction: compares a field of `key` with a value.
// A key that does not exist has create_revision, mod_revision and version 0.
struct Compare {
  enum class Target : uint8_t { kVersion, kCreateRevision, kModRevision, kValue, kLease };
  enum class Op : uint8_t { kEqual, kNotEqual, kGreater, kLess };

  std::string key;
  Target target = Target::kModRevision;
  Op op = Op::kEqual;
  int64_t number = 0;  // for every target but kValue
  std::string value;   // for kValue

  // The key is unchanged since `revision` (0: the key does not exist).
  static Compare ModRevisionIs(std::string key, int64_t revision) {
    return {std::move(key), Target::kModRevision, Op::kEqual, revision, {}};
  }
  // The key does not exist.
  static Compare Absent(std::string key) {
    return {std::move(key), Target::kCreateRevision, Op::kEqual, 0, {}};
  }
  // The key exists and holds exactly `value`.
  static Compare ValueIs(std::string key, std::string value) {
    return {std::move(key), Target::kValue, Op::kEqual, 0, std::move(value)};
  }
};

// One operation of a transaction branch.
struct TxnOp {
  enum class Kind : uint8_t { kPut, kDelete, kRange };

  Kind kind = Kind::kRange;
  KeyRange range;     // kPut uses range.key only
  std::string value;  // kPut
  int64_t lease = 0;  // kPut: attach the key to this lease (0: none)

  static TxnOp Put(std::string key, std::string value, int64_t lease = 0) {
    return {Kind::kPut, KeyRange::Single(std::move(key)), std::move(value), lease};
  }
  static TxnOp Delete(KeyRange range) { return {Kind::kDelete, std::move(range), {}, 0}; }
  static TxnOp Get(KeyRange range) { return {Kind::kRange, std::move(range), {}, 0}; }
};

// If every compare holds, etcd applies `success`, otherwise `failure`, all at
// one revision.
struct TxnRequest {
  std::vector<Compare> compares;
  std::vector<TxnOp> success;
  std::vector<TxnOp> failure;
};

// The outcome of a transaction. `ranges` holds the result of each kRange op of
// the branch that ran, in order; puts and deletes leave no entry.
struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<RangeResult> ranges;
};

struct LeaseGrant {
  int64_t id = 0;
  int64_t ttl_seconds = 0;
};

struct WatchEvent {
  enum class Type : uint8_t { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: the key and its deletion revision (mod_revision)

  friend bool operator==(const WatchEvent&, const WatchEvent&) = default;
};

// Events of one or more revisions, delivered in revision order.
struct WatchBatch {
  int64_t revision = 0;  // the store's revision when the batch was sent
  std::vector<WatchEvent> events;
};

// A stream of changes of one key range. Thread-safety: one consumer thread
// calls Next(); destruction (which cancels the watch) must not race Next().
class WatchStream {
 public:
  virtual ~WatchStream() = default;

  // Waits up to `timeout` for the next batch. Returns Timeout when none came
  // (the stream stays usable), Unavailable once the stream has ended (etcd
  // down or the connection lost: re-watch from the last seen revision + 1),
  // OutOfRange when the start revision was compacted away, Corruption for a
  // malformed message (the stream has ended).
  virtual Result<WatchBatch> Next(std::chrono::milliseconds timeout) = 0;
};

// The etcd v3 operations COSMOS uses. Every call is bounded in time by the
// backend's request timeout and never hangs on an unreachable etcd.
//
// Errors: Unavailable when no etcd endpoint could serve the call; Timeout
// when a request was sent but no reply came in time; Corruption for a reply
// that is not well-formed; InvalidArgument, NotFound, PermissionDenied,
// OutOfRange and others as etcd reported them. After an error other than
// InvalidArgument, a mutating call (Put, Delete, Txn) may or may not have
// been applied: callers that must know re-read (a compare-and-swap on
// mod_revision makes that re-read decisive).
//
// Thread-safety: every method may be called from any thread concurrently.
class EtcdClient {
 public:
  virtual ~EtcdClient() = default;

  // Reads `range` (all keys when limit is 0, else at most `limit`).
  virtual Result<RangeResult> Range(const KeyRange& range, int64_t limit = 0) = 0;
  // Writes `key` (attached to `lease` when nonzero); returns the new revision.
  virtual Result<int64_t> Put(std::string_view key, std::string_view value, int64_t lease = 0) = 0;
  // Deletes every key of `range`; returns how many were deleted.
  virtual Result<int64_t> Delete(const KeyRange& range) = 0;
  // Runs a transaction. A failed compare is not an error here: it returns
  // succeeded = false (see TxnOrAbort for the compare-and-swap shape).
  virtual Result<TxnResult> Txn(const TxnRequest& request) = 0;

  // Grants a lease of `ttl_seconds` (>= 1).
  virtual Result<LeaseGrant> GrantLease(int64_t ttl_seconds) = 0;
  // Refreshes a lease; returns its TTL. NotFound when it has expired.
  virtual Result<int64_t> KeepAlive(int64_t lease_id) = 0;
  // Revokes a lease and deletes every key attached to it. NotFound when it
  // had already expired or was revoked.
  virtual Status RevokeLease(int64_t lease_id) = 0;

  // Watches `range` for changes from `start_revision` (0: from now). Returns
  // once etcd has confirmed the watch, so no change after the call is missed;
  // changes from start_revision on are delivered even if they happened
  // before the call.
  virtual Result<std::unique_ptr<WatchStream>> Watch(const KeyRange& range,
                                                     int64_t start_revision) = 0;
};

// Runs `request` and turns a failed compare into Aborted (naming `what`), so a
// compare-and-swap reads as one call: ok means the success branch applied.
Result<TxnResult> TxnOrAbort(EtcdClient& etcd, const TxnRequest& request, std::string_view what);

}  // namespace cosmos::cluster
