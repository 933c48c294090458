// Sealing: authenticated encryption of enclave state (region keys, root
// records, small secrets) under a platform sealing key derived with HKDF from
// a platform secret and the enclave measurement. Blob format: docs/security.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "cosmos/result.h"
#include "sec/bytes.h"
#include "sec/crypto.h"

namespace cosmos::sec {

// Sealed blob format v1 (little-endian):
//   0  u32 magic "CSEL" (0x4C455343)   4  u16 format version (1)
//   6  u16 purpose version             8  u32 payload length
//   12 u8[12] nonce                    24 ciphertext[payload length]
//   24+len u8[16] GCM tag
inline constexpr uint32_t kSealedMagic = 0x4C455343;
inline constexpr uint16_t kSealedFormatVersion = 1;
inline constexpr size_t kSealedHeaderSize = 24;
inline constexpr size_t kSealedOverhead = kSealedHeaderSize + kGcmTagSize;
inline constexpr uint32_t kSealedMaxPayload = 1u << 20;

// The parsed, not yet authenticated, view of a sealed blob.
struct SealedBlobView {
  uint16_t purpose_version = 0;
  ByteSpan header;  // the 24 header bytes (part of the AAD)
  ByteSpan nonce;
  ByteSpan ciphertext;
  ByteSpan tag;
};

// Strictly parses `blob` (exact length, magic, format version, payload bound).
// Corruption on any deviation. Never reads out of bounds.
Result<SealedBlobView> ParseSealedBlob(ByteSpan blob);

// Derives the 32-byte sealing key: HKDF-SHA256(ikm = platform secret,
// salt = "cosmos-sealing-salt-v1", info = "cosmos-seal-key-v1" || measurement).
// Binding the measurement gives MRENCLAVE-style sealing: another enclave
// build cannot unseal. InvalidArgument if the secret is shorter than 32 bytes.
Result<AesKey> DeriveSealingKey(ByteSpan platform_secret, ByteSpan measurement);

// Seals and unseals blobs under one sealing key. The AAD binds a purpose
// label and purpose version (a root record cannot be unsealed as a region
// key) plus caller AAD (for example the region id). Not thread-safe.
class Sealer {
 public:
  // InvalidArgument unless key is 32 bytes.
  static Result<std::unique_ptr<Sealer>> Create(ByteSpan sealing_key);

  // Returns a v1 sealed blob with a fresh random nonce. InvalidArgument if
  // the purpose is empty or longer than 255 bytes or the payload is too big.
  Result<Bytes> Seal(std::string_view purpose, uint16_t purpose_version, ByteSpan aad,
                     ByteSpan plaintext);
  // Authenticates and decrypts. IntegrityViolation for any malformed,
  // modified, wrongly-keyed or wrongly-bound blob (wrong purpose, purpose
  // version or AAD).
  Result<Bytes> Unseal(std::string_view purpose, uint16_t purpose_version, ByteSpan aad,
                       ByteSpan blob);

 private:
  Sealer() = default;
  static Bytes BuildAad(std::string_view purpose, ByteSpan header, ByteSpan aad);
  std::unique_ptr<AesGcm> gcm_;
};

}  // namespace cosmos::sec
