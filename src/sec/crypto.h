// Cryptographic primitives of COSMOS (AES-256-GCM, SHA-256, HMAC-SHA256,
// HKDF-SHA256, X25519, Ed25519, secure random) behind a neutral header. The
// only backend is crypto_openssl.cc; no OpenSSL type appears here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "cosmos/result.h"
#include "cosmos/status.h"
#include "sec/bytes.h"

namespace cosmos::sec {

inline constexpr size_t kAesKeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;
inline constexpr size_t kSha256Size = 32;
inline constexpr size_t kX25519KeySize = 32;
inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519SeedSize = 32;
inline constexpr size_t kEd25519SignatureSize = 64;

using Digest = std::array<uint8_t, kSha256Size>;
using GcmTag = std::array<uint8_t, kGcmTagSize>;
using GcmNonce = std::array<uint8_t, kGcmNonceSize>;
using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeySize>;
using Ed25519Signature = std::array<uint8_t, kEd25519SignatureSize>;
using X25519PublicKey = std::array<uint8_t, kX25519KeySize>;

// A fixed-size secret that is wiped when destroyed. Copyable (each copy is
// wiped on its own destruction); callers keep copies to a minimum.
template <size_t N>
struct SecretArray {
  std::array<uint8_t, N> bytes{};
  SecretArray() = default;
  SecretArray(const SecretArray&) = default;
  SecretArray& operator=(const SecretArray&) = default;
  ~SecretArray() { SecureWipe(bytes); }
  uint8_t* data() { return bytes.data(); }
  const uint8_t* data() const { return bytes.data(); }
  static constexpr size_t size() { return N; }
  ByteSpan span() const { return bytes; }
  MutableByteSpan mutable_span() { return bytes; }
};
using AesKey = SecretArray<kAesKeySize>;

// Fills `out` from the OS CSPRNG (OpenSSL RAND_bytes). IoError if the
// generator fails (it does not on a healthy system).
[[nodiscard]] Status RandomBytes(MutableByteSpan out);

// SHA-256 of `data`.
Digest Sha256(ByteSpan data);

// Incremental SHA-256 with a context that is reused across messages (no
// allocation per message after construction). Not thread-safe; one per thread
// or per owning object.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  // Starts a new message (implicitly called by the constructor and Final).
  void Reset();
  void Update(ByteSpan data);
  // Returns the digest of everything since the last Reset, then resets.
  Digest Final();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// HMAC-SHA256(key, data).
Digest HmacSha256(ByteSpan key, ByteSpan data);

// Incremental HMAC-SHA256 under a fixed key, context reused per message. Not
// thread-safe.
class HmacSha256Hasher {
 public:
  // REQUIRES: key is non-empty.
  explicit HmacSha256Hasher(ByteSpan key);
  ~HmacSha256Hasher();
  HmacSha256Hasher(const HmacSha256Hasher&) = delete;
  HmacSha256Hasher& operator=(const HmacSha256Hasher&) = delete;
  void Update(ByteSpan data);
  // Returns the MAC of everything since construction or the last Final.
  Digest Final();

 private:
  void* ctx_;  // EVP_MAC_CTX
};

// HKDF-SHA256 (RFC 5869). Extract: PRK from (salt, input key material).
Digest HkdfExtract(ByteSpan salt, ByteSpan ikm);
// Expand: fills `out` (at most 255*32 bytes) from PRK and `info`.
// InvalidArgument for a bad length.
[[nodiscard]] Status HkdfExpand(ByteSpan prk, ByteSpan info, MutableByteSpan out);
// Extract then expand.
[[nodiscard]] Status HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, MutableByteSpan out);

// AES-256-GCM with a 12-byte nonce and a 16-byte tag. The key schedule and the
// cipher contexts are set up once and reused for every call (no allocation
// per message). Not thread-safe: one object per thread / per owner.
class AesGcm {
 public:
  // InvalidArgument unless key.size() == kAesKeySize.
  static Result<std::unique_ptr<AesGcm>> Create(ByteSpan key);
  ~AesGcm();
  AesGcm(const AesGcm&) = delete;
  AesGcm& operator=(const AesGcm&) = delete;

  // Encrypts `plaintext` into `ciphertext` (same size; may be the same memory
  // for in-place operation) and writes the tag. The caller guarantees that a
  // (key, nonce) pair is never reused. InvalidArgument on size mismatch.
  [[nodiscard]] Status Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext,
                            MutableByteSpan ciphertext, MutableByteSpan tag);
  // Decrypts and authenticates. IntegrityViolation if the tag does not match
  // (then `plaintext` is wiped, so no unauthenticated byte escapes).
  [[nodiscard]] Status Open(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag,
                            MutableByteSpan plaintext);
  // Replaces the key in the existing contexts. InvalidArgument on bad size.
  [[nodiscard]] Status Rekey(ByteSpan key);

 private:
  AesGcm() = default;
  void* enc_ = nullptr;  // EVP_CIPHER_CTX
  void* dec_ = nullptr;
};

// X25519 key pair; the private half is wiped on destruction.
struct X25519KeyPair {
  SecretArray<kX25519KeySize> private_key;
  X25519PublicKey public_key{};
};
// Generates a fresh X25519 key pair.
Result<X25519KeyPair> GenerateX25519();
// Computes the shared secret. IntegrityViolation when the peer key is a
// low-order point (all-zero shared secret); InvalidArgument on bad sizes.
Result<SecretArray<32>> X25519Agree(ByteSpan private_key, ByteSpan peer_public);

// Ed25519 identity key: 32-byte seed (secret) and public key.
struct Ed25519KeyPair {
  SecretArray<kEd25519SeedSize> seed;
  Ed25519PublicKey public_key{};
};
Result<Ed25519KeyPair> GenerateEd25519();
// Rebuilds the key pair from its seed. InvalidArgument on bad size.
Result<Ed25519KeyPair> Ed25519FromSeed(ByteSpan seed);
// Signs `message`. InvalidArgument on a bad seed size.
Result<Ed25519Signature> Ed25519Sign(ByteSpan seed, ByteSpan message);
// Verifies. IntegrityViolation on a bad signature, InvalidArgument on bad
// key or signature sizes.
[[nodiscard]] Status Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature);

}  // namespace cosmos::sec
