// PacketProtector: the per-session packet-protection hook. The security layer
// implements it with AES-GCM; rpc ships only a keyed-checksum test
// implementation (protector_checksum.h) that proves the hook end to end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/endian.h"
#include "cosmos/status.h"
#include "rpc/wire.h"

namespace cosmos::rpc {

// Installed on one session (one per side) after connect; every data,
// heartbeat, disconnect and session-bound reset packet of the session is then
// sealed by the sender and opened by the receiver. Connect handshake packets
// (request, cookie, reply) and resets for unknown sessions are never
// protected (see docs/wire_format.md, "What is authenticated").
//
// `header` is the encoded 40-byte header, with tag_len already set; it is
// authenticated but not encrypted (AAD). Its `seq` field is a per-session,
// per-direction counter that never repeats for new packets; retransmissions
// of the same packet are re-sealed with a fresh seq. `payload` may be
// transformed in place (encryption) as long as Open restores it.
// Thread-safety: used only from the owning endpoint's thread.
class PacketProtector {
 public:
  virtual ~PacketProtector() = default;

  // Bytes of tag appended to every sealed packet. REQUIRES: <= kMaxTagSize, constant.
  virtual size_t tag_size() const = 0;

  // Protects one outgoing packet; writes exactly tag_size() bytes to `tag`.
  virtual void Seal(std::span<const std::byte> header, std::span<std::byte> payload,
                    std::span<std::byte> tag) = 0;

  // Verifies (and decrypts in place) one incoming packet. Returns
  // IntegrityViolation for a forged, modified or replayed packet; the
  // endpoint then counts it and drops it.
  [[nodiscard]] virtual Status Open(std::span<const std::byte> header, std::span<std::byte> payload,
                                    std::span<const std::byte> tag) = 0;
};

// The `seq` field of an encoded header, from which AEAD protectors derive
// their nonce. REQUIRES: header.size() == kHeaderSize.
inline uint64_t HeaderSequence(std::span<const std::byte> header) {
  return LoadLE<uint64_t>(header.data() + kOffSeq);
}

}  // namespace cosmos::rpc
