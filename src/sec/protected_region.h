// Protected region engine: confidentiality, integrity and freshness for a
// byte region kept in an untrusted store. Trusted code (runs "inside" the
// enclave): per-block AES-256-GCM, a Merkle tree over per-block (version,
// epoch, tag) whose top levels stay in enclave memory, a sealed root record
// bound to a trusted monotonic counter, and a redo log for crash consistency.
// Formats and layout: docs/security.md.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "cosmos/result.h"
#include "sec/counter.h"
#include "sec/crypto.h"
#include "sec/sealing.h"
#include "sec/secure_memory.h"
#include "sec/untrusted_store.h"

namespace cosmos::sec {

// Default block size, chosen from bench/secure/sec_block_size_bench (table in
// docs/security.md "Block size"): a 64 B write+flush costs the same from 512 B
// to 4 KiB blocks (the commit's fixed costs dominate), 4 KiB writes and reads
// are fastest at 4 KiB, and metadata plus tree stay near 1% of the data.
inline constexpr uint32_t kDefaultBlockSize = 4096;
// Largest access-list blob a root record carries.
inline constexpr size_t kMaxAccessListBlob = 256;

// Who a region is, as the host names it: the pool's identity, the region's id
// within that pool and its name. Untrusted claims, bound into the AAD of every
// sealed root record, so a host that edits the pool's region table (swaps
// names, moves an extent to another id, copies a region into another pool)
// makes the region fail to open with IntegrityViolation instead of serving
// another region's authentic data.
struct RegionBinding {
  std::string pool_uuid;  // 1..64 bytes (the pool header's UUID in text form)
  uint64_t region_id = 0;
  std::string name;  // 1..255 bytes
  // "<pool_uuid>/<region_id>": a node-wide unique key (logs, counter files).
  std::string Key() const { return pool_uuid + "/" + std::to_string(region_id); }
  // InvalidArgument when a field is out of its range.
  [[nodiscard]] Status Validate() const;
};

// Shape of a region; fixed at creation and stored in the sealed root record.
struct RegionGeometry {
  uint64_t size = 0;                        // plaintext bytes; multiple of block_size
  uint32_t block_size = kDefaultBlockSize;  // power of two in [512, 65536]
  // Tree levels kept in enclave memory (>= 1: the root). 0 = automatic: every
  // level with at most 16384 nodes (<= 512 KiB of enclave memory).
  uint32_t cached_levels = 0;
  uint32_t log_capacity_blocks = 64;  // most blocks one atomic commit carries
};

// Run-time policy (not persisted).
struct RegionPolicy {
  CounterMode counter_mode = CounterMode::kStrict;
  uint32_t relaxed_window = 8;  // unstable counter increments allowed in relaxed mode (>= 1)
  // Open accepts a root record further ahead of the trusted counter than the
  // mode allows (strict 1, relaxed `relaxed_window`), and the enclave opens a
  // region whose counter file is missing, re-anchoring the counter at the
  // record (logged). Operator override after a known loss of counter state:
  // it gives up rollback detection for that restart (docs/operations.md).
  bool accept_counter_reset = false;
  // A block version reaching this starts a key rotation (re-encryption under a
  // fresh key) before any nonce could repeat. Versions are 64-bit; the
  // default leaves a 2^16 margin. Tests force it low.
  uint64_t rekey_version_threshold = 1ull << 48;
};

// One 8-byte atomic update of a protected region (the word is little-endian).
struct AtomicUpdate {
  enum class Kind : uint8_t { kCompareAndSwap, kFetchAdd };
  Kind kind = Kind::kFetchAdd;
  uint64_t offset = 0;   // 8-byte aligned
  uint64_t operand = 0;  // compare-and-swap: the expected value; fetch-add: the delta
  uint64_t desired = 0;  // compare-and-swap only
  bool operator==(const AtomicUpdate&) const = default;
};

// Counters for tests and `info` output.
struct RegionStats {
  uint64_t commits = 0;
  uint64_t persists = 0;
  uint64_t blocks_written = 0;
  uint64_t key_rotations = 0;
  uint64_t recovered_logs = 0;
  uint64_t block_subkeys_derived = 0;  // per-incarnation block keys derived (cache misses)
};

// One protected region. Thread-safe (one internal mutex). After an I/O error
// in the middle of a commit the object is "failed": every call returns
// FailedPrecondition and the region must be re-opened (which recovers).
class ProtectedRegion {
 public:
  // Bytes of untrusted store the geometry needs. InvalidArgument for a bad
  // geometry.
  static Result<uint64_t> RequiredStoreSize(const RegionGeometry& geometry);

  // Formats `store` as a new, all-zero region with a fresh random region key
  // (or one derived from `user_material`, kUserKeySize bytes, and a fresh
  // random salt: user_key.h),
  // and commits the first root record (which carries `access_list`, <= 256
  // bytes, opaque to the engine, and is bound to `binding`). `counter`,
  // `sealer` and `store` must outlive the region. InvalidArgument for a bad
  // geometry or binding or too small a store.
  static Result<std::unique_ptr<ProtectedRegion>> Create(
      const RegionBinding& binding, const RegionGeometry& geometry, ByteSpan access_list,
      UntrustedStore* store, MonotonicCounter* counter, Sealer* sealer,
      const RegionPolicy& policy = {}, ByteSpan user_material = {});

  // Opens an existing region: picks the newest valid sealed root record,
  // replays a committed redo log, rebuilds the cached tree levels and checks
  // them against the sealed root hash, and checks freshness against the
  // trusted counter. Then starts a new incarnation (below). IntegrityViolation
  // for a missing/forged/foreign root record (including one bound to another
  // pool, id or name than `binding`), a rolled-back state (record older than the counter), a record
  // further ahead of the counter than the mode's unstable bound (strict 1,
  // relaxed the window; unless policy.accept_counter_reset), a truncated
  // store or a tree that does not match the root.
  //
  // Nonces never repeat across crashes: every Open commits a root record with
  // incarnation + 1, and block ciphertexts are sealed under a per-incarnation
  // sub-key HKDF(region key, incarnation); no block is encrypted in an
  // incarnation before the counter value of the record that started it is
  // stable, so a later Open (whatever earlier state the host presents, the
  // freshness check forbids anything older than that record) always starts a
  // higher incarnation. docs/security.md "Nonces".
  static Result<std::unique_ptr<ProtectedRegion>> Open(const RegionBinding& binding,
                                                       UntrustedStore* store,
                                                       MonotonicCounter* counter, Sealer* sealer,
                                                       const RegionPolicy& policy = {});

  ~ProtectedRegion();
  ProtectedRegion(const ProtectedRegion&) = delete;
  ProtectedRegion& operator=(const ProtectedRegion&) = delete;

  // Reads plaintext (including not yet flushed writes). OutOfRange outside
  // the region; IntegrityViolation if any touched block fails authentication
  // or the tree check (then `out` holds no plaintext of that block).
  [[nodiscard]] Status Read(uint64_t offset, MutableByteSpan out);
  // Posted write: visible to Read at once, durable after Flush. May commit
  // early when more blocks are dirty than one commit carries.
  [[nodiscard]] Status Write(uint64_t offset, ByteSpan data);
  // Makes every earlier write durable and fresh: atomic commit(s) through the
  // redo log, then (strict mode) waits until the counter value is stable.
  // Waits for the counter without holding the region's mutex. Strict: if an
  // earlier increment is still unstable, waits for it first; flushes waiting
  // together are then served by one commit and one counter value (group
  // commit), so latency is between one and two stabilisation delays.
  // Relaxed: waits only when `relaxed_window` increments are unstable, and
  // then until at most half of them are.
  [[nodiscard]] Status Flush();
  // Applies `update` to the 8-byte word at update.offset as one step under the
  // region's mutex: reads the word (including writes not yet flushed), then
  // stores the new value as a posted Write would (compare-and-swap: `desired`
  // if the word equals `operand`, else nothing; fetch-add: word + operand,
  // wrapping). Returns the word before. Visible to Read at once, durable and
  // fresh only after a following Flush (the caller flushes; the enclave's
  // atomic ecalls do). All or nothing: on error the region is unchanged.
  // InvalidArgument if the offset is not 8-byte aligned, OutOfRange outside
  // the region, IntegrityViolation as for Read; under a NoCounterWaitScope,
  // the counter-wait status when the store would first need an early commit.
  Result<uint64_t> ApplyAtomic(const AtomicUpdate& update);
  // Keyed digest over the durable plaintext of `ranges`:
  // HMAC-SHA256(mac_key, for each range: LE64 offset || LE64 length || bytes).
  // IntegrityViolation as for Read.
  Result<Digest> Verify(std::span<const ByteRange> ranges, ByteSpan mac_key);

  // Starts an online key rotation (fresh key; blocks migrate lazily or via
  // RotationStep). FailedPrecondition if one is already running.
  // `user_material` (kUserKeySize bytes, user_key.h): the new key derives
  // from it and a fresh random salt; empty: a random key. InvalidArgument
  // for another size.
  [[nodiscard]] Status StartKeyRotation(ByteSpan user_material = {});
  // Re-encrypts up to `max_blocks` blocks still under the previous key and
  // commits; finishes the rotation (wipes the old key) when all are done.
  [[nodiscard]] Status RotationStep(uint64_t max_blocks);
  // Start + steps until done (holds the region for the whole re-encryption;
  // see BackgroundRotationStep for the non-blocking way).
  [[nodiscard]] Status RotateKey(ByteSpan user_material = {});
  // One step of a background rotation: scans up to `max_blocks` blocks from
  // the rotation cursor and migrates those still under the previous key, in
  // one commit (at most the log capacity of them). Waits
  // for the trusted counter without holding the region's mutex, so reads,
  // writes and flushes of the region go on between and during the waits; it
  // holds the mutex only for the re-encryption and commit of one batch.
  // Sets *done (and returns Ok) once no rotation is in progress. A crash at
  // any point leaves a region that reopens with the rotation still in
  // progress (or finished); stepping again completes it.
  [[nodiscard]] Status BackgroundRotationStep(uint64_t max_blocks, bool* done);
  bool rotation_in_progress();

  // Replaces the access-list blob (committed like a write). InvalidArgument
  // if it is larger than kMaxAccessListBlob.
  [[nodiscard]] Status SetAccessList(ByteSpan access_list);
  Bytes access_list();

  uint64_t region_id() const { return binding_.region_id; }
  const RegionBinding& binding() const { return binding_; }
  // The incarnation this object runs (1 after Create, +1 per Open).
  uint32_t incarnation();
  uint64_t size() const { return geometry_.size; }
  uint32_t block_size() const { return geometry_.block_size; }
  uint32_t key_epoch();
  // Counter value of the last committed root record.
  uint64_t committed_counter();
  RegionStats stats();

 private:
  class Impl;
  explicit ProtectedRegion(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  RegionBinding binding_;
  RegionGeometry geometry_;
};

// While an instance lives, ProtectedRegion calls on this thread never wait for
// the trusted counter: a Flush (or a Write's early commit) that would have to
// wait (strict mode: for its own value or a pending one; relaxed: for a full
// window) returns StatusCode::kWouldBlock instead. Work done before that
// point stays done (a commit already made stays committed; bytes already
// written stay written), so repeating the call without the scope completes
// it. Trusted-side only: callers outside the enclave pass
// sec::CounterWait::kNoWait to the ecall, which opens a scope inside.
class NoCounterWaitScope {
 public:
  NoCounterWaitScope();
  ~NoCounterWaitScope();
  NoCounterWaitScope(const NoCounterWaitScope&) = delete;
  NoCounterWaitScope& operator=(const NoCounterWaitScope&) = delete;
  // True on a thread inside a scope.
  static bool active();
};

// True for the status a call under NoCounterWaitScope (or an ecall with
// CounterWait::kNoWait) returns instead of waiting for the trusted counter:
// StatusCode::kWouldBlock.
bool IsCounterWaitNeeded(const Status& s);

// Parses a root-record plaintext (v2) strictly; exposed for fuzzing.
// Corruption on any malformation.
[[nodiscard]] Status ParseRootRecordForFuzzing(ByteSpan plaintext);
// Parses a redo-log image strictly (header, bounds, digest); exposed for
// fuzzing. Corruption on any malformation.
[[nodiscard]] Status ParseRedoLogForFuzzing(ByteSpan log);

}  // namespace cosmos::sec
