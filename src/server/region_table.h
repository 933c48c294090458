// RegionTable: the node's view of every served pool and its regions, shared
// by all worker threads. Admin calls (create/open/list/delete) serialize on a
// reader-writer lock; the data path resolves a handle with two atomic loads
// and pins the region with a use count, taking no lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cosmos/client.h"
#include "cosmos/result.h"
#include "pmem/pool.h"
#include "protocol/rpm_protocol.h"
#include "rpc/rpc.h"
#include "sec/enclave.h"

namespace cosmos::server {

// Region flag bits stored in the pool's region table (pmem RegionInfo.flags).
inline constexpr uint32_t kRegionFlagSecure = 1;

// Rights a secure-region admin call needs (the bits of the enclave's access
// lists, sec/access_list.h): any right at all (open, stat, list) or admin
// (delete, grant, revoke, rotate).
inline constexpr uint8_t kSecureRightAny = 0;
inline constexpr uint8_t kSecureRightRead = 1;
inline constexpr uint8_t kSecureRightWrite = 2;
inline constexpr uint8_t kSecureRightAdmin = 4;

struct RegionEntry;

// The RPC session an op arrived on: (worker index << 32) | the worker
// endpoint's session number. Session numbers are reused once a session ends.
using SessionKey = uint64_t;

// Who sent an op, fixed when the worker admits its batch: the RPC session and
// the secure-session binding that session had at admission (an opaque
// engine value; 0: a plain session). A batch deferred to a flusher keeps its
// Requester, so an op that runs after its session ended acts under the
// ended session (and fails), never under a later session that reused the
// session number.
struct Requester {
  SessionKey session = 0;
  uint64_t secure_session = 0;
};

// A region key the client supplies (sec/user_key.h), on its way from the
// request to the enclave: the client's wrapped material (opaque to the host)
// and, on success, the enclave's receipt for the reply.
struct UserKeyTransfer {
  std::span<const std::byte> wrapped;
  std::array<std::byte, protocol::kUserKeyReceiptSize> receipt{};
};

// Whether a secure-region call may block until a trusted-counter value is
// stable (sec::CounterWait across the enclave boundary). kNoWait: a call that
// would wait returns StatusCode::kWouldBlock instead, with what it did so far
// kept, so a repeat with kMayWait on a thread that may block completes it.
enum class WaitMode : uint8_t { kMayWait, kNoWait };

// Where a protected-region engine (the security layer, enclave_region_engine.h)
// plugs in: when a region is secure, every data-path access goes through this
// interface instead of touching the mapping directly, on behalf of the
// requesting session (whose client identity the region's access list checks).
// The plain node has none and refuses secure regions. Thread-safe.
class SecureRegionEngine {
 public:
  virtual ~SecureRegionEngine() = default;
  // Runs the secure handshake of a connect whose payload carried a
  // ClientHello after the rpm hello; binds the session to `requester`.
  virtual rpc::ConnectDecision AcceptConnect(SessionKey session,
                                             std::span<const std::byte> client_hello) = 0;
  // The binding of `session` now, for Requester::secure_session (0 when the
  // session is plain). Called once per batch, at admission.
  virtual uint64_t SecureSessionOf(SessionKey session) = 0;
  // Pool bytes and region flags for a new secure region of `size` plaintext
  // bytes. InvalidArgument if `size` is 0 or not a multiple of block_size().
  virtual Result<uint64_t> StoreSize(uint64_t size) const = 0;
  virtual uint32_t RegionFlags() const = 0;
  virtual uint32_t block_size() const = 0;
  // Plaintext bytes of a secure region (from its pool size and flags).
  virtual uint64_t LogicalSize(const RegionEntry& e) const = 0;
  // Formats a freshly created secure region; the requester's client becomes
  // its admin (read, write, admin). `user_key` (optional): the region key
  // derives from the client's material (IntegrityViolation if it does not
  // open under the requester's session for this region).
  virtual Status Format(Requester requester, RegionEntry& e, UserKeyTransfer* user_key) = 0;
  // The region was deleted: close it inside the enclave.
  virtual void Forget(const RegionEntry& e) = 0;
  // True when `requester`'s batch was admitted on a session that had
  // completed a secure handshake on this node.
  virtual bool IsSecureSession(const Requester& requester) = 0;
  // Ok when the requester's client holds `rights` (kSecureRight* bits; 0 =
  // any right) in the region's sealed access list, checked in the enclave
  // (opening, and so authenticating, the region on first use).
  // PermissionDenied without a secure session or the right; the enclave's
  // IntegrityViolation for a tampered region.
  virtual Status Authorize(Requester requester, RegionEntry& e, uint8_t rights) = 0;
  // The plaintext size the enclave authenticated from the region's sealed
  // geometry (the host's region table may claim another); opens the region
  // in the enclave on first use. Its errors as Authorize.
  virtual Result<uint64_t> AuthenticatedSize(RegionEntry& e) = 0;
  // Data path; PermissionDenied if the requester has no secure session or
  // its client lacks the right; IntegrityViolation if the pool bytes were
  // tampered with.
  virtual Status Write(Requester requester, RegionEntry& e, uint64_t offset,
                       std::span<const std::byte> data, WaitMode wait) = 0;
  virtual Status Read(Requester requester, RegionEntry& e, uint64_t offset,
                      std::span<std::byte> out) = 0;
  virtual Status Flush(Requester requester, RegionEntry& e, WaitMode wait) = 0;
  // The first 8 bytes (LE) of the enclave's keyed digest over the durable
  // plaintext of `ranges`, under the session's verify key.
  virtual Result<uint64_t> Digest(Requester requester, RegionEntry& e,
                                  std::span<const protocol::Range> ranges) = 0;
  // 8-byte atomics (write right), run in the enclave and acknowledged with a
  // Flush's freshness; return the word before. With WaitMode::kNoWait a call
  // may stop with kWouldBlock after applying the update:
  // repeat it with the same `attempt` (nonzero, unique among the requester's
  // unfinished atomics) and it is finished without being applied twice
  // (sec::Enclave::RegionCompareAndSwap).
  virtual Result<uint64_t> CompareAndSwap(Requester requester, RegionEntry& e, uint64_t offset,
                                          uint64_t expected, uint64_t desired, uint64_t attempt,
                                          WaitMode wait) = 0;
  virtual Result<uint64_t> FetchAdd(Requester requester, RegionEntry& e, uint64_t offset,
                                    uint64_t delta, uint64_t attempt, WaitMode wait) = 0;
  // Administration of a secure region, admin right only (PermissionDenied),
  // checked and applied in the enclave; each may wait for the trusted counter.
  // Grant sets the rights (kSecureRight* bits; 0 revokes) of the client whose
  // Ed25519 public key is `identity` (protocol::kIdentityKeySize bytes, else
  // InvalidArgument); FailedPrecondition if that would leave no admin.
  virtual Status Grant(Requester requester, RegionEntry& e, std::span<const std::byte> identity,
                       uint8_t rights) = 0;
  // The key epoch and the access list's entries (identity fingerprints).
  virtual Result<protocol::AccessInfo> ListAccess(Requester requester, RegionEntry& e) = 0;
  // Re-encrypts the region under a fresh key (from the client's material
  // with `user_key`); returns the new key epoch.
  virtual Result<uint32_t> RotateKey(Requester requester, RegionEntry& e,
                                     UserKeyTransfer* user_key) = 0;
  // Hands a sealed RPM batch (protocol/sealed_batch.h) for `e` to the
  // enclave in one call and returns its sealed response; the host never sees
  // the batch's plaintext. May wait for the trusted counter unless the batch
  // is read-only. Errors (the batch did not run): those of
  // sec::Enclave::ExecuteSealedBatch. The default refuses: an engine without
  // an enclave cannot run sealed batches.
  virtual Result<std::vector<std::byte>> ExecuteSealedBatch(Requester requester, RegionEntry& e,
                                                            std::span<const std::byte> message) {
    (void)requester;
    (void)e;
    (void)message;
    return Status::FailedPrecondition("this node's security engine cannot run sealed batches");
  }
  // Replicated secure regions (sec::Enclave's replication calls; the
  // defaults refuse, as for sealed batches). The primary's run of a sealed
  // batch with its effects sealed for `backups` (peer channel ids).
  virtual Result<sec::ReplicatedSealedBatch> ExecuteReplicatedSealedBatch(
      Requester requester, RegionEntry& e, std::span<const std::byte> message, uint64_t epoch,
      std::span<const sec::PeerChannelId> backups) {
    (void)requester;
    (void)e;
    (void)message;
    (void)epoch;
    (void)backups;
    return Status::FailedPrecondition("this node's security engine cannot replicate");
  }
  // A backup applies a primary's replica batch to `e` (may wait for the
  // trusted counter).
  virtual Status ApplyReplicaBatch(RegionEntry& e, std::span<const std::byte> message) {
    (void)e;
    (void)message;
    return Status::FailedPrecondition("this node's security engine cannot replicate");
  }
  // A peer enclave's hello (sec::Enclave::PeerAccept): the reply to send.
  virtual Result<std::vector<std::byte>> AcceptPeer(std::span<const std::byte> hello) {
    (void)hello;
    return Status::FailedPrecondition("this node has no enclave");
  }
};

// One served region. Lives until the table is destroyed (entries are never
// freed while workers may hold a pointer); `deleted` retires it.
struct RegionEntry {
  RegionEntry(pmem::Region r, std::string pool_name_in, std::string pool_uuid_in,
              uint64_t handle_in)
      : region(std::move(r)),
        pool_name(std::move(pool_name_in)),
        pool_uuid(std::move(pool_uuid_in)),
        handle(handle_in) {}
  pmem::Region region;
  std::string pool_name;
  std::string pool_uuid;  // from the pool header (host data; secure regions bind it)
  uint64_t handle;
  std::atomic<int64_t> users{0};
  std::atomic<bool> deleted{false};

  Durability durability() const { return static_cast<Durability>(region.durability()); }
  bool secure() const { return (region.flags() & kRegionFlagSecure) != 0; }
};

// Pins a RegionEntry for the duration of one op (the data-path "lock").
class RegionRef {
 public:
  RegionRef() = default;
  explicit RegionRef(RegionEntry* e) : e_(e) {}
  RegionRef(RegionRef&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  RegionRef& operator=(RegionRef&& o) noexcept {
    Release();
    e_ = o.e_;
    o.e_ = nullptr;
    return *this;
  }
  ~RegionRef() { Release(); }
  RegionEntry* operator->() const { return e_; }
  RegionEntry* get() const { return e_; }
  explicit operator bool() const { return e_ != nullptr; }

 private:
  void Release() {
    if (e_ != nullptr) e_->users.fetch_sub(1, std::memory_order_release);
    e_ = nullptr;
  }
  RegionEntry* e_ = nullptr;
};

struct ServedPool {
  std::string name;
  std::unique_ptr<pmem::Pool> pool;
};

// Thread-safety: every method may be called concurrently.
class RegionTable {
 public:
  static constexpr size_t kMaxHandles = 1 << 16;

  // Serves `pools` (the first is the default pool). REQUIRES: non-empty,
  // distinct names.
  explicit RegionTable(std::vector<ServedPool> pools);
  ~RegionTable();

  // Creates a zero-filled region in `pool` (empty: the default pool) and
  // returns its descriptor. A secure region gets StoreSize(size) pool bytes
  // (the caller then formats it through the engine). Errors: AlreadyExists (name used in any pool),
  // NotFound (unknown pool), FailedPrecondition (secure without an engine),
  // the pool's errors (InvalidArgument, ResourceExhausted, IoError).
  Result<protocol::RegionDesc> Create(std::string_view name, uint64_t size, bool secure,
                                      std::string_view pool);
  // Resolves `name` to its handle (stable until the region is deleted).
  // NotFound (message NotFoundMessage(name)) if absent.
  Result<protocol::RegionDesc> Open(std::string_view name);
  std::vector<protocol::RegionDesc> List();
  // The NotFound message for a region name: also what a session that may not
  // learn of a secure region gets, so both answers are identical.
  static std::string NotFoundMessage(std::string_view name);
  // Retires the handle, waits for in-flight ops on it to finish, closes a
  // secure region in the engine (SecureRegionEngine::Forget, which waits for
  // its background work), deletes the region. Errors: NotFound, the pool's
  // errors.
  Status Delete(std::string_view name);

  // Data path: pins the region behind `handle`. NotFound for an unknown,
  // stale or deleted handle.
  Result<RegionRef> Lookup(uint64_t handle);

  size_t pool_count() const { return pools_.size(); }
  uint64_t region_count();
  // Name, path-ish description and durability of each pool, for logs.
  std::vector<std::pair<std::string, pmem::PoolInfo>> PoolInfos() const;

  // REQUIRES: `engine` outlives the table (its destructor closes every live
  // secure region in the engine before it frees the region).
  void set_secure_engine(SecureRegionEngine* engine) { secure_engine_ = engine; }
  SecureRegionEngine* secure_engine() const { return secure_engine_; }

 private:
  // REQUIRES: mu_ held exclusively.
  Result<RegionEntry*> Publish(pmem::Region region, const std::string& pool_name,
                               const std::string& pool_uuid);
  RegionEntry* FindByNameLocked(std::string_view name);
  protocol::RegionDesc Describe(const RegionEntry& e) const;

  std::vector<ServedPool> pools_;
  std::shared_mutex mu_;
  std::unique_ptr<std::atomic<RegionEntry*>[]> slots_;
  std::vector<std::unique_ptr<RegionEntry>> entries_;  // owns every entry ever published
  size_t next_slot_ = 0;
  uint32_t epoch_ = 0;  // random per table: handles of an earlier node run never resolve
  SecureRegionEngine* secure_engine_ = nullptr;
};

}  // namespace cosmos::server
