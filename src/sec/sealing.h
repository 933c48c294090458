// Sealing: authenticated encryption of enclave state (region keys, root
// records, small secrets) under a platform sealing key derived with HKDF from
// a platform secret and the enclave measurement. Blob format: docs/security.md.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "cosmos/result.h"
#include "sec/bytes.h"
#include "sec/crypto.h"
#include "sec/secure_memory.h"

namespace cosmos::sec {

// Sealed blob format v2 (little-endian):
//   0  u32 magic "CSEL" (0x4C455343)   4  u16 format version (2)
//   6  u16 purpose version             8  u32 payload length
//   12 u8[16] key salt                 28 u8[12] nonce
//   40 ciphertext[payload length]      40+len u8[16] GCM tag
// The blob is encrypted under a sub-key HKDF-SHA256(ikm = sealing key,
// salt = key salt, info = "cosmos-seal-subkey-v2"). A Sealer draws a fresh
// random salt (a new sub-key) every kSealsPerSubkey seals, so no key ever
// sees more than 2^20 random 96-bit nonces (collision odds below 2^-57),
// however long the node runs; the sealing key itself never encrypts.
// Format v1 (no salt, 24-byte header, nonces drawn under the sealing key
// itself) is still accepted by Unseal for state written by older builds,
// and never produced.
inline constexpr uint32_t kSealedMagic = 0x4C455343;
inline constexpr uint16_t kSealedFormatVersion = 2;
inline constexpr uint16_t kSealedFormatVersionV1 = 1;
inline constexpr size_t kSealedSaltSize = 16;
inline constexpr size_t kSealedHeaderSize = 40;
inline constexpr size_t kSealedHeaderSizeV1 = 24;
inline constexpr size_t kSealedOverhead = kSealedHeaderSize + kGcmTagSize;
inline constexpr uint32_t kSealedMaxPayload = 1u << 20;
inline constexpr uint64_t kSealsPerSubkey = 1ull << 20;

// The parsed, not yet authenticated, view of a sealed blob.
struct SealedBlobView {
  uint16_t format_version = 0;
  uint16_t purpose_version = 0;
  ByteSpan header;  // the 40 (v1: 24) header bytes (part of the AAD)
  ByteSpan salt;    // v2: the sub-key salt; v1: empty
  ByteSpan nonce;
  ByteSpan ciphertext;
  ByteSpan tag;
};

// Strictly parses `blob` (exact length, magic, format version 1 or 2, payload
// bound).
// Corruption on any deviation. Never reads out of bounds.
Result<SealedBlobView> ParseSealedBlob(ByteSpan blob);

// Derives the 32-byte sealing key: HKDF-SHA256(ikm = platform secret,
// salt = "cosmos-sealing-salt-v1", info = "cosmos-seal-key-v1" || measurement).
// Binding the measurement gives MRENCLAVE-style sealing: another enclave
// build cannot unseal. InvalidArgument if the secret is shorter than 32 bytes.
Result<AesKey> DeriveSealingKey(ByteSpan platform_secret, ByteSpan measurement);

// Seals and unseals blobs under one sealing key. The AAD binds a purpose
// label and purpose version (a root record cannot be unsealed as a region
// key) plus caller AAD (for example the region identity). Not thread-safe.
class Sealer {
 public:
  // InvalidArgument unless key is 32 bytes.
  static Result<std::unique_ptr<Sealer>> Create(ByteSpan sealing_key);

  // Returns a v2 sealed blob under the current sub-key with a fresh random
  // nonce (drawing a new sub-key every kSealsPerSubkey calls). InvalidArgument if
  // the purpose is empty or longer than 255 bytes or the payload is too big.
  Result<Bytes> Seal(std::string_view purpose, uint16_t purpose_version, ByteSpan aad,
                     ByteSpan plaintext);
  // Authenticates and decrypts a v2 (or legacy v1) blob. IntegrityViolation
  // for any malformed, modified, wrongly-keyed or wrongly-bound blob (wrong
  // purpose, purpose version or AAD).
  Result<Bytes> Unseal(std::string_view purpose, uint16_t purpose_version, ByteSpan aad,
                       ByteSpan blob);

  // Seals made under the current sub-key; tests.
  uint64_t seals_under_current_subkey() const { return seals_under_subkey_; }
  // Sub-keys drawn so far; tests.
  uint64_t subkeys_drawn() const { return subkeys_drawn_; }

 private:
  Sealer() = default;
  static Bytes BuildAad(std::string_view purpose, ByteSpan header, ByteSpan aad);
  // Fills `gcm` with the sub-key of `salt`.
  [[nodiscard]] Status DeriveSubkey(ByteSpan salt, AesGcm* gcm);
  [[nodiscard]] Status NewSubkey();

  std::unique_ptr<LockedBuffer> key_;  // the sealing key (32 bytes)
  std::unique_ptr<AesGcm> legacy_;     // v1 blobs: the sealing key itself
  std::unique_ptr<AesGcm> seal_gcm_;   // current sealing sub-key
  std::array<uint8_t, kSealedSaltSize> seal_salt_{};
  uint64_t seals_under_subkey_ = 0;
  uint64_t subkeys_drawn_ = 0;
  std::unique_ptr<AesGcm> open_gcm_;  // sub-key of the last salt Unseal saw (cache)
  std::array<uint8_t, kSealedSaltSize> open_salt_{};
  bool open_valid_ = false;
};

}  // namespace cosmos::sec
