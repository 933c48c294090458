// SimulatedEnclave: the Enclave backend for machines without SGX. Like the
// SGX SDK's simulation mode it runs the trusted code in the host process and
// gives NO hardware isolation: root or a debugger on the host can read its
// secrets. It hardens what it can (mlock'ed, MADV_DONTDUMP secret memory,
// optionally PR_SET_DUMPABLE 0) and says what it is in logs and Description().
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "protocol/rpm_protocol.h"
#include "sec/access_list.h"
#include "sec/attestation.h"
#include "sec/counter.h"
#include "sec/enclave.h"
#include "sec/handshake.h"
#include "sec/peer_handshake.h"
#include "sec/sealing.h"
#include "sec/secure_memory.h"
#include "sec/user_key.h"

namespace cosmos::sec {

struct SimulatedEnclaveOptions {
  std::string platform_key_path;    // KeyKind::kPlatformPrivate file
  std::string sealing_secret_path;  // KeyKind::kSealingSecret file
  std::string state_dir;            // counter files: counter-<pool uuid>-<region id>
  // (a region reopened without its counter file is refused unless
  // region_policy.accept_counter_reset)
  std::string identity = std::string(kSimulatedEnclaveIdentity);  // measured string
  // Counter model (see counter.h); manual = test twin without timing.
  uint64_t counter_stabilisation_ns = 20'000'000;
  bool counter_manual = false;
  std::function<uint64_t()> counter_now_ns;
  std::function<void(uint64_t)> counter_sleep_ns;
  RegionPolicy region_policy;
  ChannelOptions channel_options;
  // Sets PR_SET_DUMPABLE 0 for the whole process (no core dumps, no ptrace
  // by same-uid processes). Off by default: it affects the host process too.
  bool make_process_undumpable = false;
  // Key rotations re-encrypt on a background thread, one commit per step,
  // waiting for the counter without holding the region (I/O goes on). Off:
  // RegionRotateKey re-encrypts everything before it returns.
  bool background_rotation = true;
  // Blocks a background step scans (those still under the old key are
  // migrated, at most the region's log capacity per step).
  uint64_t rotation_step_blocks = 4096;
};

class SimulatedEnclave final : public Enclave {
 public:
  // Loads the platform key and sealing secret into locked memory and logs a
  // warning that the enclave is simulated. NotFound/Corruption for bad key
  // files, IoError if state_dir cannot be created.
  static Result<std::unique_ptr<SimulatedEnclave>> Create(SimulatedEnclaveOptions options);
  ~SimulatedEnclave() override;

  bool IsSimulated() const override { return true; }
  std::string Description() const override;
  Digest Measurement() const override { return measurement_; }
  Ed25519PublicKey PlatformPublicKey() const override { return platform_public_; }
  Result<Bytes> Seal(std::string_view purpose, ByteSpan plaintext) override;
  Result<Bytes> Unseal(std::string_view purpose, ByteSpan blob) override;
  Status SetClientAllowList(std::span<const Ed25519PublicKey> clients) override;
  Result<AcceptedSession> AcceptClientHello(ByteSpan client_hello) override;
  Status SealPacket(SessionHandle session, uint64_t seq, ByteSpan header, MutableByteSpan payload,
                    MutableByteSpan tag) override;
  Status OpenPacket(SessionHandle session, uint64_t seq, ByteSpan header, MutableByteSpan payload,
                    ByteSpan tag) override;
  Status CloseSession(SessionHandle session) override;
  Result<RegionHandle> CreateRegion(SessionHandle creator, const RegionBinding& binding,
                                    const RegionGeometry& geometry, UntrustedStore* store,
                                    UserKeyRequest* user_key) override;
  using Enclave::CreateRegion;
  using Enclave::OpenRegion;
  using Enclave::RegionCompareAndSwap;
  using Enclave::RegionFetchAdd;
  using Enclave::RegionFlush;
  using Enclave::RegionRotateKey;
  using Enclave::RegionWrite;
  Result<RegionHandle> OpenRegion(const RegionBinding& binding, UntrustedStore* store,
                                  CounterWait wait) override;
  Status RegionCheckAccess(SessionHandle session, RegionHandle region, uint8_t rights) override;
  Result<uint64_t> RegionSize(RegionHandle region) override;
  Status CloseRegion(RegionHandle region) override;
  Status RegionRead(SessionHandle session, RegionHandle region, uint64_t offset,
                    MutableByteSpan out) override;
  Status RegionWrite(SessionHandle session, RegionHandle region, uint64_t offset, ByteSpan data,
                     CounterWait wait) override;
  Status RegionFlush(SessionHandle session, RegionHandle region, CounterWait wait) override;
  Result<Digest> RegionVerify(SessionHandle session, RegionHandle region,
                              std::span<const ByteRange> ranges) override;
  Result<uint64_t> RegionCompareAndSwap(SessionHandle session, RegionHandle region, uint64_t offset,
                                        uint64_t expected, uint64_t desired, uint64_t attempt,
                                        CounterWait wait) override;
  Result<uint64_t> RegionFetchAdd(SessionHandle session, RegionHandle region, uint64_t offset,
                                  uint64_t delta, uint64_t attempt, CounterWait wait) override;
  Status RegionSetAccess(SessionHandle session, RegionHandle region, ByteSpan access_list) override;
  Status RegionGrant(SessionHandle session, RegionHandle region, const Ed25519PublicKey& identity,
                     uint8_t rights) override;
  Result<RegionAccessInfo> RegionListAccess(SessionHandle session, RegionHandle region) override;
  Status RegionRotateKey(SessionHandle session, RegionHandle region,
                         UserKeyRequest* user_key) override;
  Result<Bytes> ExecuteSealedBatch(SessionHandle session, RegionHandle region,
                                   ByteSpan message) override;
  Status SetPeerPlatformKeys(std::span<const Ed25519PublicKey> keys) override;
  Result<PeerConnectStart> PeerConnect() override;
  Result<PeerChannelId> PeerFinish(uint64_t attempt, ByteSpan reply) override;
  Result<AcceptedPeerChannel> PeerAccept(ByteSpan hello) override;
  Status ClosePeer(PeerChannelId channel) override;
  Result<ReplicatedSealedBatch> ExecuteReplicatedSealedBatch(
      SessionHandle session, RegionHandle region, ByteSpan message, uint64_t epoch,
      std::span<const PeerChannelId> backups) override;
  Status ApplyReplicaBatch(RegionHandle region, ByteSpan message) override;

  // Whether the secret memory could be locked / excluded from dumps.
  bool secrets_locked() const { return secrets_->locked(); }
  bool secrets_dont_dump() const { return secrets_->dont_dump(); }
  // Test hook: the counter backing a region (nullptr if not open).
  SimulatedCounter* CounterForTesting(const RegionBinding& binding);
  // Path of the counter file of `binding` under state_dir.
  std::string CounterPath(const RegionBinding& binding) const;
  // Blocks until no background rotation has work left (queue empty, no step
  // running); returns the number of steps run so far. Tests and shutdown.
  uint64_t WaitForRotations();

 private:
  // An atomic applied but not yet acknowledged (its flush waits for the
  // counter); finished by a repeat with the same attempt id.
  struct PendingAtomic {
    RegionHandle region = 0;
    AtomicUpdate update;
    uint64_t before = 0;
  };
  struct Session {
    std::mutex mu;  // SecureChannel is single-owner; serialise concurrent callers
    std::unique_ptr<SecureChannel> channel;
    std::mutex batch_mu;                           // guards batch_channel and batch_response_seq
    std::unique_ptr<SecureChannel> batch_channel;  // sealed RPM batches (ExecuteSealedBatch)
    uint64_t batch_response_seq = 0;               // last response seq sealed
    Ed25519PublicKey client{};
    std::mutex atomics_mu;                              // guards pending_atomics
    std::map<uint64_t, PendingAtomic> pending_atomics;  // by attempt id
  };
  struct Region {
    std::mutex access_mu;  // serialises read-modify-write of the access list
    std::string key;       // RegionBinding::Key()
    std::unique_ptr<SimulatedCounter> counter;
    std::unique_ptr<Sealer> sealer;  // per region: Sealer is single-threaded
    std::unique_ptr<ProtectedRegion> engine;
  };
  // The session's key-wrap key applied to a user key (under the session's
  // mutex: its channel is single-owner).
  static Result<SecretArray<kUserKeySize>> UnwrapSessionUserKey(Session& s, UserKeyUse use,
                                                                std::string_view name,
                                                                ByteSpan wrapped);
  static Digest SessionUserKeyReceipt(Session& s, UserKeyUse use, std::string_view name,
                                      uint32_t key_epoch, ByteSpan material);
  explicit SimulatedEnclave(SimulatedEnclaveOptions o) : options_(std::move(o)) {}
  // Opens region_id's counter. `existing`: the region's sealed state exists
  // (OpenRegion), so a missing counter file is IntegrityViolation unless
  // region_policy.accept_counter_reset.
  Result<std::unique_ptr<SimulatedCounter>> OpenCounter(const RegionBinding& binding,
                                                        bool existing);
  // One op of a sealed batch (ExecuteSealedBatch), its result appended to
  // `out`; on error nothing is appended. `effects` (replicated regions): the
  // op's effect for the backups is appended (see ExecuteReplicatedSealedBatch).
  Status RunSealedOp(SessionHandle session, RegionHandle region, uint64_t size,
                     const protocol::Op& op, protocol::ResponseBuilder* out,
                     protocol::RequestBuilder* effects);
  // ExecuteSealedBatch and ExecuteReplicatedSealedBatch: `epoch` 0 for an
  // unreplicated region (a message with an epoch is then refused).
  Result<Bytes> RunSealedBatch(SessionHandle session, RegionHandle region, ByteSpan message,
                               uint64_t epoch, protocol::RequestBuilder* effects);
  // A peer channel (sec/peer_handshake.h); its SecureChannel is single-owner.
  struct Peer {
    std::mutex mu;
    std::unique_ptr<SecureChannel> channel;
    bool initiator = false;  // we send replica batches on it (else: we apply them)
    uint64_t send_seq = 0;   // last seq sealed (initiator)
  };
  // Looks up a peer channel of the given role. NotFound otherwise.
  Result<std::shared_ptr<Peer>> FindPeer(PeerChannelId id, bool initiator);
  // Inserts a channel, dropping the oldest beyond kMaxPeerChannels.
  void AddPeer(PeerChannelId id, std::shared_ptr<Peer> peer);
  // Looks up session + region and checks `right` against the region ACL.
  Status Authorize(SessionHandle session, RegionHandle region, uint8_t right,
                   std::shared_ptr<Session>* s, std::shared_ptr<Region>* r);
  // RegionCompareAndSwap / RegionFetchAdd: apply once per attempt, then flush.
  Result<uint64_t> RegionAtomic(SessionHandle session, RegionHandle region,
                                const AtomicUpdate& update, uint64_t attempt, CounterWait wait);
  // Under r->access_mu: parses the current list, checks that the session's
  // client is (still) its admin, lets `change` edit it, refuses a result
  // without an admin (FailedPrecondition) and commits it.
  Status UpdateAccessList(const Session& s, Region& r,
                          const std::function<Status(AccessList*)>& change);

  SimulatedEnclaveOptions options_;
  std::unique_ptr<LockedBuffer> secrets_;  // [0,32) platform seed, [32,64) sealing key
  Ed25519PublicKey platform_public_{};
  Digest measurement_{};
  std::mutex mu_;  // guards the maps, allow list and sealer
  std::unique_ptr<Sealer> sealer_;
  std::set<Ed25519PublicKey> allowed_;
  std::map<SessionHandle, std::shared_ptr<Session>> sessions_;
  std::map<RegionHandle, std::shared_ptr<Region>> regions_;
  uint64_t next_handle_ = 1;

  // Peer channels: guarded by peers_mu_ (never held with mu_).
  std::mutex peers_mu_;
  std::vector<Ed25519PublicKey> peer_platform_keys_;
  std::map<uint64_t, std::unique_ptr<PeerInitiator>> peer_attempts_;  // by attempt id
  uint64_t next_peer_attempt_ = 1;
  std::map<PeerChannelId, std::shared_ptr<Peer>> peers_;
  std::deque<PeerChannelId> peer_order_;  // oldest first (eviction)

  // Background key rotation (options_.background_rotation).
  void QueueRotation(RegionHandle region);
  void RotatorLoop();
  std::mutex rotate_mu_;
  std::condition_variable rotate_cv_;
  std::deque<RegionHandle> rotate_queue_;  // regions with a rotation to step
  bool rotate_busy_ = false;               // a step is running...
  RegionHandle rotate_current_ = 0;        // ...on this region
  bool rotate_stop_ = false;
  uint64_t rotation_steps_ = 0;
  std::thread rotator_;
};

}  // namespace cosmos::sec
