// The COSMOS remote persistent-memory client: connect to a memory node
// (cosmosd), manage regions, and write, read, flush, drain, verify and update
// them with the SNIA NVM programming model's remote-access semantics.
// docs/semantics.md is the normative description of every call below.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cosmos/result.h"
#include "cosmos/status.h"

namespace cosmos {

// What a completed flush guarantees on the node holding the region, as
// reported by the node's pool backend (never upgraded by the client).
enum class Durability : uint8_t {
  kNone = 0,       // DRAM or tmpfs: nothing survives a power loss or reboot
  kPage = 1,       // regular file, msync/fdatasync: survives power loss
  kCacheLine = 2,  // DAX persistent memory, cache-line flushes (CLWB/CLFLUSHOPT)
  kByte = 3,       // DAX with eADR: stores are persistent once visible
};

// "none", "page", "cacheline", "byte".
const char* DurabilityName(Durability d);

// A byte range of a region.
struct Range {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// What the node reports about a region.
struct RegionInfo {
  std::string name;
  uint64_t size = 0;
  Durability durability = Durability::kNone;
  bool secure = false;  // data protected at rest by the node's enclave (sec layer)
  // Replicated regions (a cluster client, ClientOptions::cluster): the
  // configuration the Region currently talks to. 0 / empty otherwise.
  // `durability` is then the weakest level among the replicas.
  uint64_t epoch = 0;
  std::vector<std::string> replicas;  // node ids of every copy, the primary included
  std::string primary;                // node id of the primary
};

// Options for Client::Connect.
struct ClientOptions {
  std::string server = "127.0.0.1:7410";  // host:port of cosmosd
  uint32_t timeout_ms = 5000;             // per call; Timeout / Unavailable after it
  uint32_t max_inflight = 32;             // async operations outstanding per region
  size_t batch_bytes = 8192;              // posted writes are coalesced up to this size
  // Largest UDP payload per datagram (256..9000); the session runs at the
  // smaller of this, the node's and the path MTU - 28, so a large value is
  // safe on any network. 8972 suits jumbo frames and loopback.
  size_t mtu = 1472;
  // Secure connection (docs/security.md): set all three to connect through
  // the node's enclave. The node's quote must be signed by the platform key
  // and carry the pinned measurement, else Connect fails (IntegrityViolation);
  // a client the node does not allow gets PermissionDenied. Secure regions
  // are reachable only over a secure connection.
  std::string platform_public_key_file;  // platform.pub from `cosmos keys platform`
  std::string measurement_file;          // measurement from `cosmos keys platform`
  std::string client_key_file;           // NAME.key from `cosmos keys client`
  // false: the client's endpoint blocks in poll() when idle instead of
  // spinning (for several processes on few cores; costs some latency).
  bool busy_poll = true;
  // Without busy_poll: how long the endpoint keeps polling after the last
  // traffic before it blocks (0: block at once; the right choice when more
  // threads than cores wait on each other, as on a small shared host).
  uint32_t idle_spin_us = 100;
  // Failure detection: an idle session is pinged every heartbeat_interval_ms
  // and ended (calls fail with Unavailable) after missed_heartbeats silent
  // intervals; the RPC layer raises the limit when it sees long delays
  // (docs/rpc.md, "Failure handling"), so a loaded host does not end a live
  // session. The cluster client uses shorter values (docs/cluster.md).
  uint32_t heartbeat_interval_ms = 100;
  uint32_t missed_heartbeats = 10;
  // Upper bound of that raised limit. The RPC layer also counts time the
  // application spent outside the client (between calls) as delay, so an
  // application idle for seconds would otherwise get a limit of up to 10 s.
  uint32_t max_dead_peer_ms = 10000;
  // Cluster mode (docs/cluster.md): comma-separated etcd endpoints
  // ("127.0.0.1:2379,http://h:2379"). The client then finds every region's
  // replicas, primary and epoch in etcd, talks to the primary, and after a
  // failover retries on the new one; `server` is not used. Plain regions only
  // (secure options are refused).
  std::string cluster;
  // Cluster mode: how long a call waits for a new configuration after its
  // primary failed before it gives up (Unavailable / Aborted).
  uint32_t failover_timeout_ms = 10000;
  bool secure() const {
    return !platform_public_key_file.empty() || !measurement_file.empty() ||
           !client_key_file.empty();
  }
};

// A region key the user supplies instead of one the node's enclave draws
// ("user data with user key"): 32 bytes of key material, e.g. from a key file
// (`cosmos keys region-key`) or a KMS. The client wraps it for the enclave
// under its secure session (the network and the node's host never see it)
// and checks the enclave's receipt that it is in use. The enclave derives
// each region's key from it with a fresh random salt, so one user key may
// serve many regions. docs/security.md "User keys".
struct UserKey {
  std::array<uint8_t, 32> bytes{};
};

// Options for Client::CreateRegion.
struct RegionOptions {
  std::string pool;     // empty: the node's default pool
  bool secure = false;  // request a protected region
  // Secure regions only, on a secure connection (else InvalidArgument /
  // FailedPrecondition): the region key derives from this key.
  // IntegrityViolation if the node does not prove it used it.
  const UserKey* user_key = nullptr;
  // Cluster mode: copies of the region, 1..5, on distinct nodes (distinct
  // failure domains where labelled); 0 means 1. Must be 0 on a single node.
  int replicas = 0;
};

// Options for Client::OpenRegion.
struct OpenOptions {
  // On a secure connection, opening a region the node reports as not secure
  // fails with PermissionDenied unless this is set: a host that clears a
  // region's secure flag (or replaces a secure region by a plain one of the
  // same name) must not make a secure client write in clear. Set it only to
  // use a plain region on purpose. No effect on a plain connection.
  bool allow_plain = false;
};

// Rights on a secure region, as bits of AccessEntry::rights and of
// Client::GrantAccess's `rights`.
inline constexpr uint8_t kAccessRead = 1;
inline constexpr uint8_t kAccessWrite = 2;  // write, flush, atomics
inline constexpr uint8_t kAccessAdmin = 4;  // grant, revoke, list access, rotate key, delete

// A client identity as secure regions' access lists know it: its Ed25519
// public key (NAME.pub from `cosmos keys client`). A value type.
struct ClientIdentity {
  std::array<std::byte, 32> public_key{};

  // Loads a client public key file (`cosmos keys client DIR NAME` writes
  // DIR/NAME.pub). NotFound / IoError if unreadable, Corruption if it is not
  // a client public key file.
  static Result<ClientIdentity> FromPublicKeyFile(const std::string& path);
  // What access lists store and ListAccess reports for this identity:
  // SHA-256(public key)[0..16) as 32 lowercase hex digits.
  std::string Fingerprint() const;
};

// One entry of a secure region's access list.
struct AccessEntry {
  std::string fingerprint;  // 32 lowercase hex digits (ClientIdentity::Fingerprint)
  uint8_t rights = 0;       // kAccess* bits, never 0
};

// What a secure region's admin sees of its protection.
struct AccessInfo {
  uint32_t key_epoch = 0;            // the region key's number; +1 per RotateKey
  std::vector<AccessEntry> entries;  // sorted by fingerprint
};

// Completion callback of an asynchronous operation. Invoked exactly once, on
// the thread that owns the Client, from inside Poll() or a synchronous call.
using Completion = std::function<void(Status)>;

class Region;

// A connection to one memory node.
// Thread-safety: a Client and its Regions belong to the thread that created
// them (one RPC endpoint per thread, run to completion); calling them from
// another thread is a checked programmer error. Use one Client per thread.
class Client {
 public:
  // Connects to options.server. Errors: InvalidArgument (bad address),
  // Unavailable (no answer / refused), PermissionDenied (rejected).
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  virtual ~Client() = default;

  // Creates a region of `size` bytes (zero-filled). AlreadyExists,
  // ResourceExhausted (pool full), InvalidArgument (name too long / empty).
  virtual Result<RegionInfo> CreateRegion(const std::string& name, uint64_t size,
                                          const RegionOptions& options = {}) = 0;
  // Opens an existing region for I/O. NotFound if absent (or secure and this
  // connection is not), PermissionDenied if the client holds no right on a
  // secure region or (secure connection) the region is plain and
  // options.allow_plain is not set; IntegrityViolation if the node's enclave
  // finds the region's sealed state tampered with (e.g. its name or pool in
  // the region table edited).
  virtual Result<std::unique_ptr<Region>> OpenRegion(const std::string& name,
                                                     const OpenOptions& options) = 0;
  Result<std::unique_ptr<Region>> OpenRegion(const std::string& name) {
    return OpenRegion(name, OpenOptions{});
  }
  virtual Result<std::vector<RegionInfo>> ListRegions() = 0;
  // Deletes a region and releases its space. NotFound if absent (or secure
  // and this connection is not); PermissionDenied for a secure region whose
  // access list does not give this client the admin right.
  virtual Status DeleteRegion(const std::string& name) = 0;

  // Administration of a secure region's access list and key. Every call
  // needs a secure connection and the admin right on the region, and is
  // checked and applied by the node's enclave. Errors common to all: NotFound
  // if the region is absent (or secure and this connection is not: a plain
  // connection never learns of it), PermissionDenied without the admin
  // right, FailedPrecondition for a plain region, IntegrityViolation if the
  // enclave finds the region's sealed state tampered with, InvalidArgument
  // for a bad name.
  //
  // Sets the rights of `who` on region `name` to `rights` (kAccess* bits; 0
  // removes every right, as RevokeAccess). On return the change is durable
  // and fresh (as a Flush): it survives a node restart, and the client's own
  // sessions see it on their next call. FailedPrecondition when it would leave
  // the region without an admin (the last admin cannot drop its own admin
  // right; grant admin to another identity first); ResourceExhausted when a
  // new identity does not fit (14 per region); InvalidArgument for bits
  // beyond kAccessRead | kAccessWrite | kAccessAdmin.
  virtual Status GrantAccess(const std::string& name, const ClientIdentity& who,
                             uint8_t rights) = 0;
  // Removes every right of `who` (GrantAccess with 0); Ok if it held none.
  Status RevokeAccess(const std::string& name, const ClientIdentity& who) {
    return GrantAccess(name, who, 0);
  }
  // The region's key epoch and access list. Admin only: who else may use a
  // region is its admins' business.
  virtual Result<AccessInfo> ListAccess(const std::string& name) = 0;
  // Starts re-encrypting the region under a fresh key and returns the new
  // key epoch: on return the new key is durably in place and every write
  // uses it; blocks still under the previous key migrate on the node in the
  // background (one commit at a time, I/O on the region goes on), survive a
  // node crash at any point and resume on restart. FailedPrecondition while
  // an earlier rotation of the region is still migrating.
  virtual Result<uint32_t> RotateKey(const std::string& name) = 0;
  // RotateKey to a key derived from `user_key` (see UserKey): the same
  // guarantees, and IntegrityViolation if the node does not prove it used
  // the key. FailedPrecondition without a secure connection.
  virtual Result<uint32_t> RotateKeyToUserKey(const std::string& name, const UserKey& user_key) {
    (void)name;
    (void)user_key;
    return Status::FailedPrecondition("this client cannot hand over user keys");
  }

  // Drives network progress and runs completions of asynchronous operations.
  // Returns the number of completions run. Never blocks longer than
  // `max_wait_us`.
  virtual size_t Poll(uint32_t max_wait_us = 0) = 0;

  // Address of the node this client talks to.
  virtual const std::string& server() const = 0;
};

// An open region. Offsets are bytes from the start of the region; every call
// checks offset + length against the region size (OutOfRange, nothing
// written). Semantics per docs/semantics.md; in short:
//   Write         posted: visible to later reads, not durable
//   Flush         durable on return (all ranges)
//   AsyncFlush    starts a flush; Drain waits for all earlier AsyncFlushes
//   WriteAfterFlush  ordered after every earlier flush of this Region, itself
//                 durable on return (the talk's non-posted write)
//   CompareAndSwap / FetchAdd  8-byte aligned, durable on return (on a secure
//                 region: run in the enclave, fresh as a Flush; write right)
//   Verify        the node digests the durable bytes; compared with `expected`
class Region {
 public:
  virtual ~Region() = default;
  virtual const RegionInfo& info() const = 0;

  // Posted write. May be buffered client-side and sent with the next
  // operation; errors of a posted write surface at the next Flush/Drain.
  virtual Status Write(uint64_t offset, std::span<const std::byte> data) = 0;
  // Reads `out.size()` bytes at `offset`; reflects this Region's earlier writes.
  virtual Status Read(uint64_t offset, std::span<std::byte> out) = 0;
  // Makes `ranges` durable; returns once the node acknowledged durability at
  // the region's Durability level. IoError if the node's sync failed (the
  // ranges' durable contents are then indeterminate).
  virtual Status Flush(std::span<const Range> ranges) = 0;
  Status Flush(uint64_t offset, uint64_t length) {
    Range r{offset, length};
    return Flush(std::span<const Range>(&r, 1));
  }
  // Starts a flush of `ranges` without waiting.
  virtual Status AsyncFlush(std::span<const Range> ranges) = 0;
  // Waits until every earlier AsyncFlush of this Region is durable; returns
  // the first error among them.
  virtual Status Drain() = 0;
  // Non-posted ordered 8-byte write. REQUIRES: offset % 8 == 0 (else
  // InvalidArgument).
  virtual Status WriteAfterFlush(uint64_t offset, uint64_t value) = 0;
  // Atomically: if *offset == expected then *offset = desired. Returns the
  // value seen before; durable on return. REQUIRES: offset % 8 == 0 (else
  // InvalidArgument). On a secure region: PermissionDenied without the write
  // right, and acknowledged only once fresh (docs/semantics.md section 2).
  virtual Result<uint64_t> CompareAndSwap(uint64_t offset, uint64_t expected, uint64_t desired) = 0;
  // Atomically adds `delta`; returns the value before. REQUIRES: offset % 8 == 0.
  virtual Result<uint64_t> FetchAdd(uint64_t offset, uint64_t delta) = 0;
  // Asks the node for a digest of the durable bytes of [offset, offset+len)
  // and compares it with the digest of `expected`. IntegrityViolation on
  // mismatch.
  virtual Status Verify(uint64_t offset, std::span<const std::byte> expected) = 0;

  // Asynchronous forms: return at once (or ResourceExhausted when
  // max_inflight operations are outstanding); `done` runs from Client::Poll.
  virtual void WriteAsync(uint64_t offset, std::span<const std::byte> data, Completion done) = 0;
  virtual void ReadAsync(uint64_t offset, std::span<std::byte> out, Completion done) = 0;
  virtual void FlushAsync(std::span<const Range> ranges, Completion done) = 0;
};

}  // namespace cosmos
