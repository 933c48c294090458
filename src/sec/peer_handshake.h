// Peer handshake: the attested channel between the enclaves of two memory
// nodes of a cluster (docs/security.md "Peer channels"). Replicated secure
// regions send their changes (and, with issue 13, freshness witnesses) only
// over such a channel, so the hosts in between see ciphertext.
//
// Both sides prove what they are with a quote: the initiator's PeerHello
// carries a quote over its fresh X25519 key and nonce; the responder checks
// it (signed by a trusted platform key, same measurement as its own code) and
// answers with a PeerReply whose quote binds its own X25519 key to the hello
// and a random channel id. Keys come from HKDF over the X25519 secret salted
// with the transcript hash; each direction has its own key, nonces and replay
// window (SecureChannel), the initiator in the client role.
//
// PeerHello: u8 type 3, u8 version 1, u16 0, quote (its report data is
//            SHA-256("cosmos-peer-hello-v1")); 212 bytes.
// PeerReply: u8 type 4, u8 version 1, u16 0, u64 channel id, quote (nonce =
//            the hello's, report data SHA-256("cosmos-peer-reply-v1" ||
//            hello || LE64 channel id)); 220 bytes.
#pragma once

#include <cstdint>
#include <memory>

#include "cosmos/result.h"
#include "sec/attestation.h"
#include "sec/bytes.h"
#include "sec/crypto.h"
#include "sec/secure_channel.h"

namespace cosmos::sec {

inline constexpr uint8_t kPeerHelloType = 3;
inline constexpr uint8_t kPeerReplyType = 4;
inline constexpr uint8_t kPeerHandshakeVersion = 1;
inline constexpr size_t kPeerHelloSize = 4 + kQuoteSize;
inline constexpr size_t kPeerReplySize = 12 + kQuoteSize;

// Keys of a peer channel: client_to_server = initiator to responder
// ("cosmos peer i2r v1"), server_to_client ("cosmos peer r2i v1"), verify
// ("cosmos peer verify v1": MACs both enclaves compute over plaintext, e.g.
// to compare replicas without showing them to the host).
Result<SessionKeys> DerivePeerKeys(ByteSpan shared_secret, ByteSpan hello, ByteSpan reply);

// What one enclave trusts of another: the platform keys of the cluster's
// nodes and its own measurement (a peer must run the same trusted code).
// A policy with no platform key trusts no peer.

// Initiator side (trusted code). Not thread-safe; one per attempt.
class PeerInitiator {
 public:
  // A fresh X25519 key and nonce, and the quote over them signed with
  // `platform_key`.
  static Result<std::unique_ptr<PeerInitiator>> Start(const Ed25519KeyPair& platform_key,
                                                      const Digest& measurement,
                                                      const AttestationPolicy& trusted);
  const Bytes& hello() const { return hello_; }
  // Checks the reply (quote by a trusted platform key, same measurement,
  // bound to this hello) and returns the initiator's end of the channel.
  // IntegrityViolation for anything malformed, forged or replayed.
  Result<std::unique_ptr<SecureChannel>> Finish(ByteSpan reply, uint64_t* channel_id,
                                                const ChannelOptions& options = {});

 private:
  PeerInitiator() = default;
  X25519KeyPair kex_;
  std::array<uint8_t, kNonceSize> nonce_{};
  AttestationPolicy trusted_;
  Bytes hello_;
};

struct AcceptedPeer {
  Bytes reply;
  uint64_t channel_id = 0;
  std::array<uint8_t, 8> peer_platform_key_id{};  // which node (public)
  std::unique_ptr<SecureChannel> channel;         // responder's end
};

// Responder side (trusted code): checks the hello's quote against `trusted`
// (IntegrityViolation: malformed, untrusted platform, other measurement),
// then creates its own key, a random channel id and the signed reply.
Result<AcceptedPeer> AcceptPeerHello(ByteSpan hello, const Ed25519KeyPair& platform_key,
                                     const Digest& measurement, const AttestationPolicy& trusted,
                                     const ChannelOptions& options = {});

}  // namespace cosmos::sec
