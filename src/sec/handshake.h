// Handshake of the secure channel, carried in the RPC connect payloads:
// ClientHello (X25519 key, nonce, client identity, signature) and ServerHello
// (session id + quote). Session keys come from HKDF over the X25519 secret
// salted with the transcript hash. Formats: docs/security.md ("Handshake").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "cosmos/result.h"
#include "sec/attestation.h"
#include "sec/bytes.h"
#include "sec/crypto.h"
#include "sec/secure_channel.h"

namespace cosmos::sec {

inline constexpr uint8_t kClientHelloType = 1;
inline constexpr uint8_t kServerHelloType = 2;
inline constexpr uint8_t kHandshakeVersion = 1;
inline constexpr size_t kClientHelloSize = 164;
inline constexpr size_t kServerHelloSize = 12 + kQuoteSize;

struct ClientHello {
  X25519PublicKey kex_public{};
  std::array<uint8_t, kNonceSize> nonce{};
  Ed25519PublicKey identity{};
  Ed25519Signature signature{};  // over "cosmos-client-hello-v1" || bytes [0, 100)
};
Bytes SerializeClientHello(const ClientHello& h);
// Strict: exact size, type, version, zero reserved. Corruption otherwise.
Result<ClientHello> ParseClientHello(ByteSpan bytes);

struct ServerHello {
  uint64_t session_id = 0;
  Quote quote;
};
Bytes SerializeServerHello(const ServerHello& h);
// Strict: exact size, type, version, zero reserved, valid quote encoding.
Result<ServerHello> ParseServerHello(ByteSpan bytes);

// Report data the server's quote carries: SHA-256("cosmos-hello-binding-v1"
// || client hello bytes || LE64 session id).
Digest HandshakeReportData(ByteSpan client_hello, uint64_t session_id);

// Session keys: PRK = HKDF-Extract(salt = SHA-256(client hello || server
// hello), ikm = X25519 secret); keys = HKDF-Expand(PRK, "cosmos c2s v1" /
// "cosmos s2c v1" / "cosmos verify v1", 32).
Result<SessionKeys> DeriveSessionKeys(ByteSpan shared_secret, ByteSpan client_hello,
                                      ByteSpan server_hello);

// Client side. Not thread-safe; one per connect attempt.
class ClientHandshake {
 public:
  // Creates a fresh X25519 key and nonce and the signed ClientHello.
  static Result<std::unique_ptr<ClientHandshake>> Start(const Ed25519KeyPair& identity,
                                                        const AttestationPolicy& policy);
  // The ClientHello bytes to send.
  const Bytes& hello() const { return hello_; }
  // Checks the ServerHello (quote signature, platform key, measurement, nonce,
  // binding to this hello) and returns the client end of the channel.
  // IntegrityViolation for anything malformed, forged, replayed or wrong.
  Result<std::unique_ptr<SecureChannel>> Finish(ByteSpan server_hello,
                                                const ChannelOptions& options = {});

 private:
  ClientHandshake() = default;
  X25519KeyPair kex_;
  std::array<uint8_t, kNonceSize> nonce_{};
  AttestationPolicy policy_;
  Bytes hello_;
};

// What the server side yields.
struct ServerSession {
  Bytes server_hello;
  uint64_t session_id = 0;
  Ed25519PublicKey client_identity{};
  std::unique_ptr<SecureChannel> channel;
};

// Server side (trusted code inside the enclave): checks the client's
// signature (IntegrityViolation) and the allow list (PermissionDenied), then
// creates a fresh X25519 key, a random session id and the signed quote.
Result<ServerSession> AcceptClientHello(
    ByteSpan client_hello, const Ed25519KeyPair& platform_key, const Digest& measurement,
    const std::function<bool(const Ed25519PublicKey&)>& client_allowed,
    const ChannelOptions& options = {});

}  // namespace cosmos::sec
