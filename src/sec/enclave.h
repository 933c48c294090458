// The enclave boundary: an ecall-style interface through which the untrusted
// server reaches everything secret (platform signing key, sealing key,
// session keys, region keys, integrity roots, counters). Calls take and
// return byte buffers, scalars and opaque handles only; no secret crosses it
// in plaintext. Backends: enclave_simulated.h today; an SGX backend would
// implement the same class with real ecalls.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cosmos/result.h"
#include "sec/access_list.h"
#include "sec/bytes.h"
#include "sec/crypto.h"
#include "sec/protected_region.h"
#include "sec/untrusted_store.h"

namespace cosmos::sec {

// Whether an ecall may block until a trusted-counter value is stable.
// kNoWait: a call that would wait returns StatusCode::kWouldBlock instead;
// work done before that point stays done, and repeating the call with
// kMayWait (for atomics: with the same attempt id) completes it. A caller
// that must not block (cosmosd's workers) passes kNoWait and hands a
// kWouldBlock call to a thread that may.
enum class CounterWait : uint8_t { kMayWait, kNoWait };

// Opaque handles the enclave hands out; 0 is never valid.
using SessionHandle = uint64_t;
using RegionHandle = uint64_t;
// A peer channel to another node's enclave (sec/peer_handshake.h): the
// channel id both ends name it by (public; chosen by the responder).
using PeerChannelId = uint64_t;

// An initiator's half-open peer channel: the hello to send, and the id to
// finish it with.
struct PeerConnectStart {
  Bytes hello;
  uint64_t attempt = 0;
};

// A responder's answer to a peer hello.
struct AcceptedPeerChannel {
  Bytes reply;
  PeerChannelId channel = 0;
};

// What a sealed batch on a replicated secure region yields on its primary:
// the client's sealed response and, per backup channel given, the batch's
// effects sealed for that backup's enclave (protocol/sealed_batch.h
// "Replica batch"). `replica_messages` is empty when the batch changed
// nothing (reads only, or it failed before any write).
struct ReplicatedSealedBatch {
  Bytes response;
  std::vector<Bytes> replica_messages;
};

// Peer channels a node's enclave keeps at most (initiated + accepted); the
// oldest is dropped beyond it (its peer reconnects).
inline constexpr size_t kMaxPeerChannels = 256;

// Result of an accepted handshake: bytes to return to the client plus the
// handle of the enclave-side session (its keys stay inside).
struct AcceptedSession {
  Bytes server_hello;
  SessionHandle session = 0;
  uint64_t session_id = 0;             // the id the client sees (public)
  Ed25519PublicKey client_identity{};  // public
};

// What a region's admin sees of its protection: the key epoch (grows by one
// per key rotation) and the sealed access list's entries (fingerprints of the
// identities, not their keys, sorted by fingerprint).
struct RegionAccessInfo {
  uint32_t key_epoch = 0;
  std::vector<AccessList::Entry> entries;
};

// A region key the user supplies (sec/user_key.h) for CreateRegion or
// RegionRotateKey: the client's wrapped material in, the enclave's receipt
// out (the client checks it: proof the material is in use).
struct UserKeyRequest {
  ByteSpan wrapped;        // WrapUserKey(session key-wrap key, use, region name, material)
  Digest receipt{};        // set on success
  uint32_t key_epoch = 0;  // set on success: the epoch the receipt names
};

// Unfinished atomic attempts (see RegionCompareAndSwap) one session may hold.
inline constexpr size_t kMaxPendingAtomicsPerSession = 1024;

// Every method is thread-safe. Errors never carry secret material.
class Enclave {
 public:
  virtual ~Enclave() = default;

  // True for backends without hardware isolation (say so to users).
  virtual bool IsSimulated() const = 0;
  // One line for logs and `info` output, stating the isolation level.
  virtual std::string Description() const = 0;
  // The measurement quotes carry (clients pin it).
  virtual Digest Measurement() const = 0;
  // The platform public key quotes are signed with.
  virtual Ed25519PublicKey PlatformPublicKey() const = 0;

  // Seals a small application blob under the platform sealing key, bound to
  // `purpose`. Confidentiality and integrity, not freshness.
  virtual Result<Bytes> Seal(std::string_view purpose, ByteSpan plaintext) = 0;
  // IntegrityViolation for a modified, foreign or wrongly-bound blob.
  virtual Result<Bytes> Unseal(std::string_view purpose, ByteSpan blob) = 0;

  // Replaces the node-level allow list of client identities that may connect
  // (public keys; untrusted input, so it only gates connections; region
  // rights live in the sealed access lists).
  [[nodiscard]] virtual Status SetClientAllowList(std::span<const Ed25519PublicKey> clients) = 0;
  // Runs the server side of the handshake on a ClientHello.
  // IntegrityViolation (malformed/forged hello) or PermissionDenied (not
  // allowed).
  virtual Result<AcceptedSession> AcceptClientHello(ByteSpan client_hello) = 0;
  // Packet protection for a session (the RPC PacketProtector adapter calls
  // these). `seq` is the packet's per-direction sequence number from the
  // authenticated header. NotFound for an unknown session; otherwise as
  // SecureChannel::Seal / Open.
  [[nodiscard]] virtual Status SealPacket(SessionHandle session, uint64_t seq, ByteSpan header,
                                          MutableByteSpan payload, MutableByteSpan tag) = 0;
  [[nodiscard]] virtual Status OpenPacket(SessionHandle session, uint64_t seq, ByteSpan header,
                                          MutableByteSpan payload, ByteSpan tag) = 0;
  // Forgets a session and wipes its keys. NotFound if unknown.
  [[nodiscard]] virtual Status CloseSession(SessionHandle session) = 0;

  // Creates a protected region in `store` (untrusted memory the enclave
  // accesses by pointer, as an SGX enclave does with [user_check] buffers;
  // it must outlive the region), bound to `binding` (pool identity, id and
  // name, as the host's region table states them). The creating session's
  // client gets read+write+admin. AlreadyExists if a region with the same
  // pool and id is open. `user_key` (optional): the region key derives from
  // the creator's material instead of a random one; IntegrityViolation when
  // the wrapped material does not open under the creator's session for this
  // region name, InvalidArgument when malformed.
  virtual Result<RegionHandle> CreateRegion(SessionHandle creator, const RegionBinding& binding,
                                            const RegionGeometry& geometry, UntrustedStore* store,
                                            UserKeyRequest* user_key) = 0;
  Result<RegionHandle> CreateRegion(SessionHandle creator, const RegionBinding& binding,
                                    const RegionGeometry& geometry, UntrustedStore* store) {
    return CreateRegion(creator, binding, geometry, store, nullptr);
  }
  // Opens an existing region (recovery, freshness check, new incarnation):
  // see ProtectedRegion::Open for the errors. IntegrityViolation when the
  // sealed state was bound to another pool, id or name than `binding`.
  virtual Result<RegionHandle> OpenRegion(const RegionBinding& binding, UntrustedStore* store,
                                          CounterWait wait) = 0;
  Result<RegionHandle> OpenRegion(const RegionBinding& binding, UntrustedStore* store) {
    return OpenRegion(binding, store, CounterWait::kMayWait);
  }
  [[nodiscard]] virtual Status CloseRegion(RegionHandle region) = 0;

  // Ok when the session's client holds every right in `rights` (AccessRight
  // bits; 0 = any right at all) on the region, else PermissionDenied. For
  // admin calls the host routes through the enclave (open, stat, list,
  // delete of a secure region).
  [[nodiscard]] virtual Status RegionCheckAccess(SessionHandle session, RegionHandle region,
                                                 uint8_t rights) = 0;
  // The region's authenticated plaintext size (from its sealed geometry, not
  // from host metadata). NotFound for an unknown handle.
  virtual Result<uint64_t> RegionSize(RegionHandle region) = 0;

  // Region operations on behalf of a session; PermissionDenied unless the
  // session's client holds the right (read for Read/Verify, write for
  // Write/Flush, admin for SetAccess/RotateKey).
  [[nodiscard]] virtual Status RegionRead(SessionHandle session, RegionHandle region,
                                          uint64_t offset, MutableByteSpan out) = 0;
  // Write may commit early (a full commit batch) and so wait: see CounterWait.
  [[nodiscard]] virtual Status RegionWrite(SessionHandle session, RegionHandle region,
                                           uint64_t offset, ByteSpan data, CounterWait wait) = 0;
  [[nodiscard]] virtual Status RegionFlush(SessionHandle session, RegionHandle region,
                                           CounterWait wait) = 0;
  [[nodiscard]] Status RegionWrite(SessionHandle session, RegionHandle region, uint64_t offset,
                                   ByteSpan data) {
    return RegionWrite(session, region, offset, data, CounterWait::kMayWait);
  }
  [[nodiscard]] Status RegionFlush(SessionHandle session, RegionHandle region) {
    return RegionFlush(session, region, CounterWait::kMayWait);
  }
  // Keyed digest under the session's verify key (the client derives the same
  // key from its handshake and recomputes the digest).
  virtual Result<Digest> RegionVerify(SessionHandle session, RegionHandle region,
                                      std::span<const ByteRange> ranges) = 0;
  // 8-byte atomics on behalf of a session (write right, else
  // PermissionDenied): the enclave applies the update under the region's lock
  // (ProtectedRegion::ApplyAtomic) and then flushes with RegionFlush's
  // freshness guarantee (strict: returned only once the counter value
  // covering it is stable). Returns the word before the update.
  // InvalidArgument (unaligned offset), OutOfRange, IntegrityViolation.
  //
  // A call with CounterWait::kNoWait that would wait for the counter returns
  // StatusCode::kWouldBlock, possibly after the update was applied. Finish it by repeating the call
  // (any thread, same session and arguments) with the same `attempt`: a nonzero id the caller makes
  // unique among the session's unfinished atomic calls. A repeat never
  // applies the update again; it completes the flush and returns the first
  // application's result. The enclave forgets an attempt when it returns any
  // other outcome or the session closes; InvalidArgument for a repeat with
  // other arguments, ResourceExhausted when the session already holds
  // kMaxPendingAtomicsPerSession unfinished attempts. `attempt` 0 cannot be
  // repeated and is refused (InvalidArgument) with kNoWait.
  virtual Result<uint64_t> RegionCompareAndSwap(SessionHandle session, RegionHandle region,
                                                uint64_t offset, uint64_t expected,
                                                uint64_t desired, uint64_t attempt,
                                                CounterWait wait) = 0;
  virtual Result<uint64_t> RegionFetchAdd(SessionHandle session, RegionHandle region,
                                          uint64_t offset, uint64_t delta, uint64_t attempt,
                                          CounterWait wait) = 0;
  Result<uint64_t> RegionCompareAndSwap(SessionHandle session, RegionHandle region, uint64_t offset,
                                        uint64_t expected, uint64_t desired, uint64_t attempt) {
    return RegionCompareAndSwap(session, region, offset, expected, desired, attempt,
                                CounterWait::kMayWait);
  }
  Result<uint64_t> RegionFetchAdd(SessionHandle session, RegionHandle region, uint64_t offset,
                                  uint64_t delta, uint64_t attempt) {
    return RegionFetchAdd(session, region, offset, delta, attempt, CounterWait::kMayWait);
  }
  // Replaces the access list (AccessList blob); admin only. InvalidArgument
  // for a malformed blob, FailedPrecondition if it names no admin.
  [[nodiscard]] virtual Status RegionSetAccess(SessionHandle session, RegionHandle region,
                                               ByteSpan access_list) = 0;
  // Sets the rights of `identity` (AccessRight bits; 0 removes it) in the
  // region's sealed access list: reads the current list, applies the change
  // and commits it, durable and fresh on return (as RegionFlush). Admin only
  // (PermissionDenied, checked against the list the change applies to).
  // FailedPrecondition when the change would leave no admin (the last admin
  // cannot drop its own admin right); ResourceExhausted when a new entry does
  // not fit (kMaxAccessListEntries); InvalidArgument for unknown right bits.
  [[nodiscard]] virtual Status RegionGrant(SessionHandle session, RegionHandle region,
                                           const Ed25519PublicKey& identity, uint8_t rights) = 0;
  // The region's key epoch and access-list entries; admin only
  // (PermissionDenied): who else may use a region is its admins' business.
  virtual Result<RegionAccessInfo> RegionListAccess(SessionHandle session, RegionHandle region) = 0;
  // Starts a key rotation (key epoch + 1, the new key durable and in use on
  // return); admin only. Blocks still under the previous key migrate in the
  // background without blocking the region's I/O (SimulatedEnclaveOptions::
  // background_rotation; off: re-encrypts everything before returning).
  // FailedPrecondition while an earlier rotation is still migrating.
  // `user_key` (optional): the new key derives from the caller's material
  // (errors as for CreateRegion's).
  [[nodiscard]] virtual Status RegionRotateKey(SessionHandle session, RegionHandle region,
                                               UserKeyRequest* user_key) = 0;
  [[nodiscard]] Status RegionRotateKey(SessionHandle session, RegionHandle region) {
    return RegionRotateKey(session, region, nullptr);
  }

  // Runs a sealed RPM batch (protocol/sealed_batch.h) on `region` for
  // `session` in one call, so that neither the request's nor the response's
  // plaintext is ever in host memory: opens `message` with the session's
  // batch key (each sequence number at most once: a replayed message is
  // refused), checks that the clear header names this region (its
  // authenticated name) and that every op is a data op on the header's
  // handle (READ only, with kSealedFlagReadOnly), executes the ops in order
  // as the Region* calls above do (same rights, same freshness; a failed op
  // ends the batch, the rest are Cancelled), and returns the sealed response
  // (header, ciphertext, tag) for the client. Waits for the trusted counter
  // as a flush needs: call it from a thread that may block, unless the batch
  // is read-only. Errors, when nothing ran and nothing was sealed:
  // PermissionDenied (unknown session, no right on the region), NotFound
  // (unknown region), IntegrityViolation (forged, modified, replayed or
  // misrouted message), Corruption (malformed framing).
  virtual Result<Bytes> ExecuteSealedBatch(SessionHandle session, RegionHandle region,
                                           ByteSpan message) = 0;

  // --- Replicated secure regions (docs/cluster.md "Secure replicated
  // regions"). Each replica's enclave holds its own region key; what a batch
  // changes travels from the primary's enclave to each backup's enclave over
  // an attested peer channel, never in clear through a host.

  // Replaces the platform keys a peer enclave's quote may be signed by (the
  // cluster's nodes, `cosmosd --peer-platform-keys`); a peer must also run
  // this enclave's measurement. Empty: no peer is trusted (the default).
  // Existing channels stay (they were attested when opened).
  [[nodiscard]] virtual Status SetPeerPlatformKeys(std::span<const Ed25519PublicKey> keys) = 0;
  // Initiator: starts a channel to another node's enclave.
  virtual Result<PeerConnectStart> PeerConnect() = 0;
  // Initiator: checks the peer's reply (IntegrityViolation: forged,
  // untrusted platform, other measurement, not for this hello) and opens the
  // channel. NotFound for an unknown or finished attempt.
  virtual Result<PeerChannelId> PeerFinish(uint64_t attempt, ByteSpan reply) = 0;
  // Responder: checks a peer's hello (IntegrityViolation as above; also
  // when no peer platform key is configured) and opens the channel.
  virtual Result<AcceptedPeerChannel> PeerAccept(ByteSpan hello) = 0;
  // Forgets a channel and wipes its keys. NotFound if unknown.
  [[nodiscard]] virtual Status ClosePeer(PeerChannelId channel) = 0;

  // ExecuteSealedBatch on the primary of a replicated secure region at
  // `epoch` (the client's authenticated header must name the same epoch:
  // IntegrityViolation otherwise), which also seals the batch's effects for
  // each channel of `backups` (initiated channels; NotFound for an unknown
  // one, before anything runs). Effects: every write, an atomic's outcome as
  // a write, and a flush wherever the batch made data durable.
  virtual Result<ReplicatedSealedBatch> ExecuteReplicatedSealedBatch(
      SessionHandle session, RegionHandle region, ByteSpan message, uint64_t epoch,
      std::span<const PeerChannelId> backups) = 0;
  // On a backup: opens a replica batch (each seq at most once per channel),
  // checks that it names `region` (its authenticated name) and applies its
  // writes and flushes in order, durable and fresh by this node's counter
  // on return (waits for it: call from a thread that may block).
  // IntegrityViolation (forged, replayed, misrouted, unknown channel),
  // Corruption (malformed plaintext), else the region's errors.
  [[nodiscard]] virtual Status ApplyReplicaBatch(RegionHandle region, ByteSpan message) = 0;
};

}  // namespace cosmos::sec
