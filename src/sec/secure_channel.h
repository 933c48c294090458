// SecureChannel: packet protection for one session after the handshake.
// AES-256-GCM with the packet header as AAD, a nonce from (direction,
// session id, sequence), separate keys per direction, a replay window, and
// key rotation (a one-way ratchet) every `rekey_interval` sequence numbers.
// Wire details: docs/security.md ("Packet protection").
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "cosmos/result.h"
#include "sec/bytes.h"
#include "sec/crypto.h"

namespace cosmos::sec {

enum class ChannelRole : uint8_t { kClient = 0, kServer = 1 };

struct ChannelOptions {
  // Sequence numbers per key epoch. Keys ratchet at every multiple, long
  // before AES-GCM usage limits or the 64-bit nonce space matter. Tests force
  // it low.
  uint64_t rekey_interval = 1ull << 30;
};

// Key material a handshake hands to a channel (wiped on destruction).
struct SessionKeys {
  SecretArray<32> client_to_server;
  SecretArray<32> server_to_client;
  SecretArray<32> verify;    // MAC key for region Verify digests of this session
  SecretArray<32> key_wrap;  // wraps user region keys for the enclave (user_key.h)
  // End-to-end keys of sealed RPM batches between the client and the enclave
  // (protocol/sealed_batch.h): the host that terminates packet protection
  // never holds them in a hardware TEE.
  SecretArray<32> batch_client_to_server;
  SecretArray<32> batch_server_to_client;
};

// Counters for tests and `info`.
struct ChannelStats {
  uint64_t sealed = 0;
  uint64_t opened = 0;
  uint64_t auth_failures = 0;
  uint64_t replays_rejected = 0;
  uint64_t send_rekeys = 0;
  uint64_t receive_rekeys = 0;
};

// Not thread-safe: one owner (the RPC endpoint thread of the session).
class SecureChannel {
 public:
  static constexpr size_t kTagSize = kGcmTagSize;
  static constexpr size_t kReplayWindow = 1024;  // sequence numbers
  // A packet may skip at most this many key epochs ahead (bounds the work a
  // forged sequence number can cause).
  static constexpr uint64_t kMaxEpochSkip = 16;

  // InvalidArgument if rekey_interval is 0.
  static Result<std::unique_ptr<SecureChannel>> Create(ChannelRole role, uint64_t session_id,
                                                       const SessionKeys& keys,
                                                       const ChannelOptions& options = {});
  ~SecureChannel();
  SecureChannel(const SecureChannel&) = delete;
  SecureChannel& operator=(const SecureChannel&) = delete;

  // Encrypts `payload` in place and writes the 16-byte tag. `seq` is the
  // packet's sequence number (carried in the authenticated header by the
  // caller) and must be strictly greater than every earlier sealed seq:
  // FailedPrecondition otherwise (that would repeat a nonce). InvalidArgument
  // if seq skips more than kMaxEpochSkip key epochs at once.
  [[nodiscard]] Status Seal(uint64_t seq, ByteSpan header, MutableByteSpan payload,
                            MutableByteSpan tag);
  // Seals with the next internal sequence number and returns it.
  Result<uint64_t> SealNext(ByteSpan header, MutableByteSpan payload, MutableByteSpan tag);
  // Authenticates and decrypts in place. IntegrityViolation for a modified
  // or forged packet, a replayed sequence number, or one older than the
  // replay window (or from a key epoch already erased); the payload is then
  // wiped. Reordering within the window is accepted, each seq at most once.
  [[nodiscard]] Status Open(uint64_t seq, ByteSpan header, MutableByteSpan payload, ByteSpan tag);

  uint64_t session_id() const { return session_id_; }
  uint64_t send_epoch() const { return send_epoch_; }
  uint64_t receive_epoch() const { return recv_epoch_; }
  const ChannelStats& stats() const { return stats_; }
  // The session's Verify MAC key (client side uses it to check digests).
  ByteSpan verify_key() const { return verify_.span(); }
  // The session's key-wrap key (user region keys, sec/user_key.h).
  ByteSpan key_wrap_key() const { return key_wrap_.span(); }
  // A second channel of the same role and session id whose send and receive
  // keys are the session's sealed-batch keys (SessionKeys::batch_*): the
  // client and the enclave seal whole RPM batches with it, with their own
  // sequence numbers and replay window. Carries no verify or key-wrap key.
  Result<std::unique_ptr<SecureChannel>> NewBatchChannel(const ChannelOptions& options) const;

 private:
  SecureChannel() = default;
  void Nonce(uint8_t direction, uint64_t seq, GcmNonce* nonce) const;
  Status RatchetSend(uint64_t epoch);
  void MarkReceived(uint64_t seq);

  ChannelRole role_ = ChannelRole::kClient;
  uint64_t session_id_ = 0;
  ChannelOptions options_;
  SecretArray<32> verify_;
  SecretArray<32> key_wrap_;
  SecretArray<32> batch_c2s_, batch_s2c_;
  // Send side.
  SecretArray<32> send_key_;
  std::unique_ptr<AesGcm> send_gcm_;
  uint64_t send_epoch_ = 0;
  bool sent_any_ = false;
  uint64_t last_sent_ = 0;
  // Receive side: contexts of the current and the previous epoch, and a
  // scratch context to try a newer epoch before committing to it.
  SecretArray<32> recv_key_;
  std::unique_ptr<AesGcm> recv_gcm_;
  std::unique_ptr<AesGcm> recv_prev_gcm_;
  std::unique_ptr<AesGcm> recv_scratch_gcm_;
  uint64_t recv_epoch_ = 0;
  bool have_prev_ = false;
  bool received_any_ = false;
  uint64_t max_received_ = 0;
  std::array<uint64_t, kReplayWindow / 64> window_{};
  ChannelStats stats_;
};

// Derives the next epoch's key from the current one (one-way).
[[nodiscard]] Status RatchetKey(ByteSpan key, MutableByteSpan next);

}  // namespace cosmos::sec
