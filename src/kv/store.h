// Store: the log-structured durable key-value store. Records are appended to
// a LogDevice with the log-writer pattern (write, Flush, WriteAfterFlush of
// the tail); a DRAM hash index maps keys to log positions and is rebuilt by
// scanning the log on Open; a background thread compacts into the other log
// half and switches atomically.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cosmos/result.h"
#include "kv/log_device.h"
#include "kv/log_format.h"

namespace cosmos::kv {

struct StoreOptions {
  // Largest accepted value (like Redis proto-max-bulk-len). Larger values are
  // rejected with InvalidArgument.
  uint64_t max_value_size = 512ull << 20;
  // Background compaction is considered once the active half is this full
  // and at least half of its bytes are garbage.
  double compaction_trigger = 0.5;
  bool background_compaction = true;
  // Called from the store's flusher thread after each group commit with the
  // highest durable sequence number, and once when the store fails (see
  // failure()). Must be cheap and must not call back into the Store (it may
  // run with the store's lock held).
  std::function<void(uint64_t durable_sequence)> on_durable;
  // Wall clock in unix milliseconds (injectable for TTL tests).
  std::function<int64_t()> now_ms;
};

// An ordered set of mutations applied atomically by Store::Apply: they land
// in the log contiguously and become durable in the same group commit.
// Holds views: the referenced bytes must outlive the Apply call.
class WriteBatch {
 public:
  // Sets key to value with absolute expiry (unix ms, 0 = none).
  void Put(std::string_view key, std::string_view value, int64_t expiry_ms = 0) {
    ops_.push_back({RecordType::kPut, key, value, expiry_ms});
  }
  // Sets key to a typed value (hash, list, set, sorted set) with absolute
  // expiry. REQUIRES: `encoded` starts with a TypedValueLayout header (as
  // produced by kv/value_codec.h); the store reads only its type byte.
  void PutTyped(std::string_view key, std::string_view encoded, int64_t expiry_ms = 0) {
    ops_.push_back({RecordType::kPutTyped, key, encoded, expiry_ms});
  }
  // Appends a change to the typed value of an existing key (it joins the
  // key's delta chain; a later Put, PutTyped or Delete drops the chain).
  // REQUIRES: the key holds a typed value when the batch is applied, and
  // `encoded` is a delta of its type (kv/value_codec.h).
  void PutDelta(std::string_view key, std::string_view encoded) {
    ops_.push_back({RecordType::kTypedDelta, key, encoded, 0});
  }
  // Removes key (a no-op record if absent).
  void Delete(std::string_view key) { ops_.push_back({RecordType::kDelete, key, {}, 0}); }
  // Sets an existing key's absolute expiry (0 removes the expiry).
  void Expire(std::string_view key, int64_t expiry_ms) {
    ops_.push_back({RecordType::kExpire, key, {}, expiry_ms});
  }
  // Removes every key.
  void Clear() { ops_.push_back({RecordType::kClear, {}, {}, 0}); }
  bool empty() const { return ops_.empty(); }

 private:
  friend class Store;
  struct Op {
    RecordType type;
    std::string_view key, value;
    int64_t expiry_ms;
  };
  std::vector<Op> ops_;
};

// Identifies a key's value and expiry exactly: any write to the key (a put,
// a delta, an expiry change) changes it, and so does a compaction (which
// moves records), so equal versions mean an unchanged value.
struct KeyVersion {
  uint64_t generation = 0;  // log generation the position refers to
  uint64_t value_pos = 0;   // position of the key's last value record
  int64_t expiry_ms = 0;
  bool operator==(const KeyVersion&) const = default;
};

// Metadata of a live key.
struct KeyInfo {
  uint64_t value_len = 0;  // of the base record (the whole value)
  int64_t expiry_ms = 0;   // 0 = no expiry
  ValueType type = ValueType::kString;
  KeyVersion version;
  uint32_t delta_count = 0;  // kTypedDelta records after the base record
  uint64_t delta_bytes = 0;  // their value bytes
};

struct StoreStats {
  uint64_t keys = 0;
  uint64_t keys_with_expiry = 0;
  int64_t avg_ttl_ms = 0;  // mean remaining TTL of the keys with an expiry
  uint64_t generation = 0;
  uint64_t log_capacity = 0;  // bytes of records one half can hold
  uint64_t log_used = 0;      // bytes appended to the active half
  uint64_t live_bytes = 0;    // bytes of records the index points to
  uint64_t last_sequence = 0;
  uint64_t durable_sequence = 0;
  uint64_t group_commits = 0;
  uint64_t records_committed = 0;
  uint64_t compactions = 0;
  std::string device_backend;
  std::string durability;
};

// Thread-safety: every method may be called from any thread. Apply calls are
// serialised internally; reads see the latest applied state (which may not
// be durable yet: callers that expose reads wait for last_sequence() to be
// durable before replying, as the RESP server does).
class Store {
 public:
  // Opens the log on `device` (not owned; must outlive the Store). A device
  // whose superblock area is all zeros is formatted. Errors: Corruption (bad
  // superblock, segment header, or a record before the durable tail failing
  // its checksum), InvalidArgument (device too small), device errors.
  static Result<std::unique_ptr<Store>> Open(LogDevice* device, StoreOptions options = {});
  // Commits every applied write (best effort) and stops the threads.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends the batch's records and updates the index. Returns the sequence
  // number that must be durable for the batch to be durable (wait with
  // WaitDurable). Errors: InvalidArgument (value larger than
  // max_value_size), ResourceExhausted (log full even after compaction:
  // nothing of the batch was applied), FailedPrecondition (the store failed
  // earlier; restart to recover the durable state).
  [[nodiscard]] Result<uint64_t> Apply(const WriteBatch& batch);

  // Copies the live string value of `key` into `*value`. Returns false if
  // absent, expired (lazy expiry removes it from the index) or not a string.
  [[nodiscard]] Result<bool> Get(std::string_view key, std::string* value);
  // Copies the live value of `key`, of any type, into `*value` and its type
  // into `*type` (typed values include their TypedValueLayout header), and
  // the values of its delta records, oldest first, into `*deltas` (cleared
  // first; may be null only for keys without deltas, such as strings: a
  // null `deltas` for a key with deltas is a checked programmer error).
  // Returns false if absent or expired.
  [[nodiscard]] Result<bool> GetValue(std::string_view key, ValueType* type, std::string* value,
                                      std::vector<std::string>* deltas = nullptr);
  // Value length and expiry of a live key, nullopt if absent or expired.
  [[nodiscard]] Result<std::optional<KeyInfo>> Lookup(std::string_view key);
  // Live keys matching a Redis glob pattern.
  [[nodiscard]] Result<std::vector<std::string>> Keys(std::string_view pattern);
  // Redis SCAN: examines about `count` keys from `cursor` (0 starts), adds the
  // live ones matching `pattern` to *keys, returns the next cursor (0 = done).
  // Every key present for a whole iteration is returned at least once.
  [[nodiscard]] Result<uint64_t> Scan(uint64_t cursor, std::string_view pattern, uint64_t count,
                                      std::vector<std::string>* keys);
  // Number of keys in the index (expired keys not yet touched included).
  uint64_t KeyCount();
  // Active expiry. The earliest expiry (unix ms) of any key in the index, 0
  // if no key has one; and up to `max` keys whose expiry has passed, the
  // earliest first (still in the index: the caller deletes them through
  // the log with Delete records).
  int64_t NextExpiry();
  // A random live key (RANDOMKEY), nullopt if there is none. Expired keys
  // met on the way are dropped lazily.
  [[nodiscard]] Result<std::optional<std::string>> RandomKey();
  std::vector<std::string> ExpiredKeys(size_t max);

  uint64_t last_sequence();
  uint64_t durable_sequence();
  // Ok while the store works; after a failed commit or compaction the error
  // every later write gets (FailedPrecondition): writes applied but not
  // durable will never become durable in this process.
  Status failure();
  // Asks the flusher to commit what has been applied so far (group commit:
  // everything applied until the flusher picks it up shares one flush).
  void RequestFlush();
  // Blocks until `sequence` is durable. Error if the store failed first.
  [[nodiscard]] Status WaitDurable(uint64_t sequence);
  // Runs one compaction now (blocks the caller, not other clients).
  [[nodiscard]] Status Compact();

  // Atomic section (MULTI/EXEC): every Apply between BeginAtomic and
  // EndAtomic lands in one commit group with a single batch-end flag, so
  // recovery applies all of its records or none, and no group commit or
  // compaction takes part of them. The calling thread holds the commit lock
  // meanwhile. REQUIRES: not nested; between the two calls the caller must
  // not call WaitDurable, Compact or RequestFlush-and-wait, and an Apply
  // that needs a synchronous compaction fails with ResourceExhausted
  // instead of compacting.
  void BeginAtomic();
  // Ends the section opened by BeginAtomic (same thread).
  void EndAtomic();

  // Called by Apply on the applying thread, with the store's lock held, for
  // every record that puts a whole typed value (the only way a list or
  // sorted set comes into existence), so the RESP server can wake clients
  // blocked on the key (BLPOP, ...). Must be cheap and must not call the
  // Store. Set before other threads use the store; null: none.
  void SetTypedPutObserver(std::function<void(std::string_view key, ValueType type)> observer) {
    typed_put_observer_ = std::move(observer);
  }

  StoreStats Stats();
  // Copies besides the primary that hold every acknowledged write
  // (LogDevice::DurableBackups; a round trip on a replicated remote region,
  // 0 at once otherwise). The store's failure if it failed, else the
  // device's error. Any thread; does not wait for pending commits.
  [[nodiscard]] Result<uint32_t> DurableBackups();
  int64_t NowMs() const { return options_.now_ms(); }
  const StoreOptions& options() const { return options_; }
  std::string_view backend_name() const { return device_->BackendName(); }
  std::string_view durability_level() const { return device_->DurabilityLevel(); }

 private:
  struct Entry {
    uint64_t pos;  // device offset of the record
    uint64_t value_len;
    int64_t expiry_ms;
    uint64_t scan_hash;
    uint32_t key_len;
    ValueType type;  // kString for kPut records
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view k) const { return std::hash<std::string_view>()(k); }
  };
  using Index = std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>>;
  struct DeltaRef {
    uint64_t pos;  // device offset of the kTypedDelta record
    uint64_t value_len;
  };
  // Delta chains of typed keys (absent for keys without deltas, so string
  // keys pay nothing). Invariant: a chain's key is in index_.
  using Chains = std::unordered_map<std::string, std::vector<DeltaRef>, KeyHash, std::equal_to<>>;

  Store(LogDevice* device, StoreOptions options);
  Status Format();
  Status Recover();
  Status ReplayHalf(int half, uint64_t tail);
  // Applies the complete commit groups written past the durable tail word by
  // open epoch `epoch`; returns the half offset where they end.
  Result<uint64_t> ReplayPastTail(int half, uint64_t tail, uint64_t epoch);  // REQUIRES: mu_
  void ReplayRecord(const RecordHeader& h, std::string_view key, ValueType type,
                    uint64_t pos);  // REQUIRES: mu_
  // Removes keys whose expiry has passed (after recovery replayed the log).
  void DropExpired();  // REQUIRES: mu_
  // Makes the active half's tail word durable at the durable position.
  Status PersistTail();  // REQUIRES: commit_mu_ held, mu_ not held
  void ApplyRecord(RecordType type, std::string_view key, uint64_t pos, uint64_t value_len,
                   int64_t expiry_ms, uint32_t key_len,
                   ValueType value_type);                  // REQUIRES: mu_ held
  void EraseKey(Index::iterator it);                       // REQUIRES: mu_ held
  void SetExpiry(Index::iterator it, int64_t expiry_ms);   // REQUIRES: mu_ held
  void DropChain(std::string_view key, uint32_t key_len);  // REQUIRES: mu_ held
  KeyVersion VersionOf(const Index::value_type& entry);    // REQUIRES: mu_ held
  Index::iterator FindLive(std::string_view key);          // REQUIRES: mu_ held
  Status ReadLog(uint64_t pos, void* out, uint64_t len);   // REQUIRES: mu_ held
  uint64_t TailWordOffset(int half) const { return half == 0 ? kTailOffset0 : kTailOffset1; }
  uint64_t RecordBase(int half) const { return half_offset_[half] + kSegmentHeaderSize; }
  uint64_t BaseSequenceOffset(int half) const {
    return half == 0 ? kBaseSequenceOffset0 : kBaseSequenceOffset1;
  }
  void MaybeTriggerCompaction();  // REQUIRES: mu_ held
  void FlusherLoop();
  void CompactorLoop();
  Status CompactLocked();      // REQUIRES: compact_mu_ held
  void Fail(const Status& s);  // REQUIRES: mu_ held

  LogDevice* const device_;
  StoreOptions options_;
  uint64_t half_offset_[2] = {0, 0};
  uint64_t capacity_ = 0;  // record bytes per half

  std::mutex compact_mu_;  // one compaction at a time
  std::mutex commit_mu_;   // held across a group commit or a half switch; before mu_
  std::mutex mu_;
  std::condition_variable flush_cv_;    // flusher waits for work
  std::condition_variable durable_cv_;  // WaitDurable waiters
  std::condition_variable compact_cv_;  // compactor waits for a trigger
  Index index_;
  Chains chains_;
  std::set<std::pair<uint64_t, std::string_view>> scan_order_;   // views into index_ keys
  std::set<std::pair<int64_t, std::string_view>> expiry_order_;  // keys with an expiry
  uint64_t generation_ = 0;
  int half_ = 0;
  uint64_t append_pos_ = 0;   // next record offset in the active half
  uint64_t durable_pos_ = 0;  // end of the durable records (the tail)
  std::string staging_;       // records applied but not yet written to the device
  uint64_t staging_start_ = 0;
  std::string inflight_;  // records being committed by the flusher
  uint64_t inflight_start_ = 0;
  uint64_t last_seq_ = 0;
  uint64_t durable_seq_ = 0;
  uint64_t live_bytes_ = 0;
  bool flush_requested_ = false;
  bool compact_requested_ = false;
  bool stopping_ = false;
  Status failed_;
  uint64_t group_commits_ = 0;
  uint64_t records_committed_ = 0;
  uint64_t records_pending_ = 0;
  uint64_t compactions_ = 0;
  uint64_t epoch_ = 0;       // this open's epoch (records carry its low 32 bits)
  bool tail_dirty_ = false;  // the tail word on the device lags durable_pos_
  uint64_t commits_since_tail_persist_ = 0;
  uint64_t recovered_past_tail_ = 0;      // records applied from past the tail word at open
  bool atomic_ = false;                   // inside BeginAtomic/EndAtomic (commit_mu_ held)
  size_t atomic_last_record_ = SIZE_MAX;  // staging_ offset of its last record

  std::function<void(std::string_view, ValueType)> typed_put_observer_;

  std::thread flusher_;
  std::thread compactor_;
};

// Redis-compatible glob match (*, ?, [abc], [^a], [a-z], \ escapes).
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace cosmos::kv
