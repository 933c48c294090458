// Client side of secure connections: loads what the client trusts and who it
// is (platform public key, expected measurement, client credentials), builds
// the ClientHello sent as the RPC connect payload, checks the ServerHello
// (quote) from the connect reply and yields the rpc::PacketProtector to
// install on the session, plus the key to check Verify digests with.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cosmos/result.h"
#include "rpc/protector.h"
#include "sec/attestation.h"
#include "sec/crypto.h"
#include "sec/handshake.h"
#include "sec/secure_channel.h"

namespace cosmos::client {

// What a secure client is configured with.
struct SecureClientConfig {
  sec::Ed25519KeyPair identity;   // client credentials
  sec::AttestationPolicy policy;  // platform public key + expected measurement
  sec::ChannelOptions channel_options;

  // Loads the four files `cosmos keys` produces (platform.pub, measurement,
  // NAME.key). NotFound / IoError / Corruption from the key-file reader.
  static Result<SecureClientConfig> Load(const std::string& platform_public_path,
                                         const std::string& measurement_path,
                                         const std::string& client_key_path);
};

// Protects one client-side RPC session with a SecureChannel (client role).
// The sequence number is the header's `seq` field (authenticated as AAD).
class ChannelPacketProtector final : public rpc::PacketProtector {
 public:
  explicit ChannelPacketProtector(std::unique_ptr<sec::SecureChannel> channel)
      : channel_(std::move(channel)) {}

  size_t tag_size() const override;
  // If the channel refuses (only on a broken sequence contract) the payload
  // and tag are zeroed so no plaintext leaves; the failure is logged.
  void Seal(std::span<const std::byte> header, std::span<std::byte> payload,
            std::span<std::byte> tag) override;
  // IntegrityViolation for a forged, modified, replayed or out-of-window packet.
  [[nodiscard]] Status Open(std::span<const std::byte> header, std::span<std::byte> payload,
                            std::span<const std::byte> tag) override;

  const sec::SecureChannel& channel() const { return *channel_; }

 private:
  std::unique_ptr<sec::SecureChannel> channel_;
};

// The client end of an established secure session.
struct SecureSessionKeys {
  std::unique_ptr<ChannelPacketProtector> protector;  // install with Rpc::SetSessionProtector
  sec::SecretArray<32> verify_key;                    // checks region Verify digests
  sec::SecretArray<32> key_wrap_key;                  // wraps user region keys (sec/user_key.h)
  uint64_t session_id = 0;                            // the enclave's session id (public)
  // Seals whole batches on secure regions end to end for the enclave
  // (protocol/sealed_batch.h); the node's host never sees their plaintext.
  std::unique_ptr<sec::SecureChannel> batch_channel;
};

// One connect attempt. Not thread-safe.
class SecureConnector {
 public:
  // Creates the ephemeral key exchange key and the signed ClientHello.
  static Result<std::unique_ptr<SecureConnector>> Start(const SecureClientConfig& config);

  // The bytes to send as the RPC connect payload.
  std::span<const std::byte> connect_payload() const;

  // Checks the server's connect reply (quote signed by the pinned platform
  // key, pinned measurement, bound to this hello) and derives the session.
  // IntegrityViolation for anything malformed, forged, replayed or from a
  // different platform or enclave.
  Result<SecureSessionKeys> Finish(std::span<const std::byte> connect_reply);

 private:
  SecureConnector() = default;
  std::unique_ptr<sec::ClientHandshake> handshake_;
  sec::ChannelOptions channel_options_;
};

}  // namespace cosmos::client
