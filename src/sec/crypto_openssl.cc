// OpenSSL 3 backend of sec/crypto.h. Algorithms are fetched once per process
// and contexts are kept per object so hot paths do not allocate.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstring>

#include "common/check.h"
#include "sec/crypto.h"

namespace cosmos::sec {
namespace {

// Process-wide prefetched algorithms (fetching is expensive in OpenSSL 3).
struct Algorithms {
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_CIPHER* aes_gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_KDF* hkdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  Algorithms() {
    COSMOS_CHECK_MSG(sha256 && aes_gcm && hmac && hkdf, "OpenSSL algorithms unavailable");
  }
};
const Algorithms& Algs() {
  static const Algorithms* algs = new Algorithms();  // never freed: used until exit
  return *algs;
}

EVP_MD_CTX* Md(void* p) { return static_cast<EVP_MD_CTX*>(p); }
EVP_MAC_CTX* Mac(void* p) { return static_cast<EVP_MAC_CTX*>(p); }
EVP_CIPHER_CTX* Cipher(void* p) { return static_cast<EVP_CIPHER_CTX*>(p); }

bool InitHmac(EVP_MAC_CTX* ctx, ByteSpan key) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  return EVP_MAC_init(ctx, key.data(), key.size(), params) == 1;
}

}  // namespace

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void SecureWipe(MutableByteSpan buf) {
  if (!buf.empty()) OPENSSL_cleanse(buf.data(), buf.size());
}

Status RandomBytes(MutableByteSpan out) {
  if (out.empty()) return Status::Ok();
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return Status::IoError("RAND_bytes failed");
  }
  return Status::Ok();
}

Digest Sha256(ByteSpan data) {
  Digest d;
  unsigned int len = 0;
  COSMOS_CHECK(EVP_Digest(data.data(), data.size(), d.data(), &len, Algs().sha256, nullptr) == 1);
  return d;
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  COSMOS_CHECK(ctx_ != nullptr);
  Reset();
}
Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(Md(ctx_)); }
void Sha256Hasher::Reset() {
  COSMOS_CHECK(EVP_DigestInit_ex(Md(ctx_), Algs().sha256, nullptr) == 1);
}
void Sha256Hasher::Update(ByteSpan data) {
  COSMOS_CHECK(EVP_DigestUpdate(Md(ctx_), data.data(), data.size()) == 1);
}
Digest Sha256Hasher::Final() {
  Digest d;
  unsigned int len = 0;
  COSMOS_CHECK(EVP_DigestFinal_ex(Md(ctx_), d.data(), &len) == 1);
  Reset();
  return d;
}

Digest HmacSha256(ByteSpan key, ByteSpan data) {
  HmacSha256Hasher h(key);
  h.Update(data);
  return h.Final();
}

HmacSha256Hasher::HmacSha256Hasher(ByteSpan key) : ctx_(EVP_MAC_CTX_new(Algs().hmac)) {
  COSMOS_CHECK(ctx_ != nullptr);
  COSMOS_CHECK_MSG(!key.empty(), "HMAC key must not be empty");
  COSMOS_CHECK(InitHmac(Mac(ctx_), key));
}
HmacSha256Hasher::~HmacSha256Hasher() { EVP_MAC_CTX_free(Mac(ctx_)); }
void HmacSha256Hasher::Update(ByteSpan data) {
  COSMOS_CHECK(EVP_MAC_update(Mac(ctx_), data.data(), data.size()) == 1);
}
Digest HmacSha256Hasher::Final() {
  Digest d;
  size_t len = 0;
  COSMOS_CHECK(EVP_MAC_final(Mac(ctx_), d.data(), &len, d.size()) == 1);
  // Re-initialise with the same key (NULL key keeps the previous one).
  COSMOS_CHECK(EVP_MAC_init(Mac(ctx_), nullptr, 0, nullptr) == 1);
  return d;
}

namespace {
Status RunHkdf(int mode, ByteSpan salt, ByteSpan key, ByteSpan info, MutableByteSpan out) {
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(Algs().hkdf);
  if (kctx == nullptr) return Status::Internal("EVP_KDF_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[6];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  // OpenSSL rejects an empty key; HKDF treats a missing salt as zeros.
  static const uint8_t kZero[kSha256Size] = {};
  ByteSpan k = key.empty() ? ByteSpan(kZero, sizeof(kZero)) : key;
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<uint8_t*>(k.data()), k.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<uint8_t*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();
  int rc = EVP_KDF_derive(kctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(kctx);
  if (rc != 1) return Status::InvalidArgument("HKDF derive failed (bad length?)");
  return Status::Ok();
}
}  // namespace

Digest HkdfExtract(ByteSpan salt, ByteSpan ikm) {
  Digest prk;
  // With an empty salt RFC 5869 uses HashLen zeros; OpenSSL does the same.
  COSMOS_CHECK_OK(RunHkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, ikm, {}, prk));
  return prk;
}

Status HkdfExpand(ByteSpan prk, ByteSpan info, MutableByteSpan out) {
  if (out.empty() || out.size() > 255 * kSha256Size || prk.size() < kSha256Size) {
    return Status::InvalidArgument("HKDF-Expand: bad output or PRK length");
  }
  return RunHkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, {}, prk, info, out);
}

Status HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, MutableByteSpan out) {
  Digest prk = HkdfExtract(salt, ikm);
  Status s = HkdfExpand(prk, info, out);
  SecureWipe(prk);
  return s;
}

Result<std::unique_ptr<AesGcm>> AesGcm::Create(ByteSpan key) {
  std::unique_ptr<AesGcm> g(new AesGcm());
  g->enc_ = EVP_CIPHER_CTX_new();
  g->dec_ = EVP_CIPHER_CTX_new();
  if (g->enc_ == nullptr || g->dec_ == nullptr) return Status::Internal("EVP_CIPHER_CTX_new");
  COSMOS_RETURN_IF_ERROR(g->Rekey(key));
  return g;
}

AesGcm::~AesGcm() {
  EVP_CIPHER_CTX_free(Cipher(enc_));  // frees and cleanses the key schedule
  EVP_CIPHER_CTX_free(Cipher(dec_));
}

Status AesGcm::Rekey(ByteSpan key) {
  if (key.size() != kAesKeySize) return Status::InvalidArgument("AES-256 key must be 32 bytes");
  if (EVP_EncryptInit_ex2(Cipher(enc_), Algs().aes_gcm, key.data(), nullptr, nullptr) != 1 ||
      EVP_DecryptInit_ex2(Cipher(dec_), Algs().aes_gcm, key.data(), nullptr, nullptr) != 1) {
    return Status::Internal("AES-GCM key setup failed");
  }
  return Status::Ok();
}

Status AesGcm::Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan ciphertext,
                    MutableByteSpan tag) {
  if (nonce.size() != kGcmNonceSize || tag.size() != kGcmTagSize ||
      ciphertext.size() != plaintext.size()) {
    return Status::InvalidArgument("AES-GCM seal: bad nonce, tag or buffer size");
  }
  EVP_CIPHER_CTX* c = Cipher(enc_);
  int len = 0;
  if (EVP_EncryptInit_ex2(c, nullptr, nullptr, nonce.data(), nullptr) != 1) {
    return Status::Internal("AES-GCM nonce setup failed");
  }
  if (!aad.empty() &&
      EVP_EncryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return Status::Internal("AES-GCM AAD failed");
  }
  if (!plaintext.empty() && EVP_EncryptUpdate(c, ciphertext.data(), &len, plaintext.data(),
                                              static_cast<int>(plaintext.size())) != 1) {
    return Status::Internal("AES-GCM encrypt failed");
  }
  if (EVP_EncryptFinal_ex(c, ciphertext.data() + plaintext.size(), &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kGcmTagSize, tag.data()) != 1) {
    return Status::Internal("AES-GCM finalisation failed");
  }
  return Status::Ok();
}

Status AesGcm::Open(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag,
                    MutableByteSpan plaintext) {
  if (nonce.size() != kGcmNonceSize || tag.size() != kGcmTagSize ||
      ciphertext.size() != plaintext.size()) {
    return Status::InvalidArgument("AES-GCM open: bad nonce, tag or buffer size");
  }
  EVP_CIPHER_CTX* c = Cipher(dec_);
  int len = 0;
  if (EVP_DecryptInit_ex2(c, nullptr, nullptr, nonce.data(), nullptr) != 1) {
    return Status::Internal("AES-GCM nonce setup failed");
  }
  if (!aad.empty() &&
      EVP_DecryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return Status::Internal("AES-GCM AAD failed");
  }
  if (!ciphertext.empty() && EVP_DecryptUpdate(c, plaintext.data(), &len, ciphertext.data(),
                                               static_cast<int>(ciphertext.size())) != 1) {
    return Status::Internal("AES-GCM decrypt failed");
  }
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kGcmTagSize, const_cast<uint8_t*>(tag.data())) !=
      1) {
    return Status::Internal("AES-GCM tag setup failed");
  }
  if (EVP_DecryptFinal_ex(c, plaintext.data() + ciphertext.size(), &len) != 1) {
    SecureWipe(plaintext);
    return Status::IntegrityViolation("AES-GCM authentication tag mismatch");
  }
  return Status::Ok();
}

namespace {
struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

PkeyPtr Generate(const char* name) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, name);
  return PkeyPtr(key);
}
}  // namespace

Result<X25519KeyPair> GenerateX25519() {
  PkeyPtr key = Generate("X25519");
  if (!key) return Status::Internal("X25519 key generation failed");
  X25519KeyPair kp;
  size_t priv_len = kX25519KeySize, pub_len = kX25519KeySize;
  if (EVP_PKEY_get_raw_private_key(key.get(), kp.private_key.data(), &priv_len) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), kp.public_key.data(), &pub_len) != 1) {
    return Status::Internal("X25519 raw key export failed");
  }
  return kp;
}

Result<SecretArray<32>> X25519Agree(ByteSpan private_key, ByteSpan peer_public) {
  if (private_key.size() != kX25519KeySize || peer_public.size() != kX25519KeySize) {
    return Status::InvalidArgument("X25519 keys must be 32 bytes");
  }
  PkeyPtr priv(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                            private_key.size()));
  PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(),
                                           peer_public.size()));
  if (!priv || !peer) return Status::InvalidArgument("X25519 key import failed");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, priv.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) return Status::Internal("X25519 derive init");
  // Derivation fails for low-order peer points (all-zero result).
  if (EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 1) != 1) {
    return Status::IntegrityViolation("X25519 peer key rejected");
  }
  SecretArray<32> shared;
  size_t len = shared.size();
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &len) != 1 || len != shared.size()) {
    return Status::IntegrityViolation("X25519 derivation failed (low-order peer key)");
  }
  static const uint8_t kZero[32] = {};
  if (ConstantTimeEqual(shared.span(), ByteSpan(kZero, 32))) {
    return Status::IntegrityViolation("X25519 shared secret is zero (low-order peer key)");
  }
  return shared;
}

Result<Ed25519KeyPair> GenerateEd25519() {
  Ed25519KeyPair kp;
  COSMOS_RETURN_IF_ERROR(RandomBytes(kp.seed.mutable_span()));
  return Ed25519FromSeed(kp.seed.span());
}

Result<Ed25519KeyPair> Ed25519FromSeed(ByteSpan seed) {
  if (seed.size() != kEd25519SeedSize) return Status::InvalidArgument("Ed25519 seed size");
  PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!key) return Status::Internal("Ed25519 key import failed");
  Ed25519KeyPair kp;
  std::memcpy(kp.seed.data(), seed.data(), seed.size());
  size_t len = kp.public_key.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), kp.public_key.data(), &len) != 1) {
    return Status::Internal("Ed25519 public key export failed");
  }
  return kp;
}

Result<Ed25519Signature> Ed25519Sign(ByteSpan seed, ByteSpan message) {
  if (seed.size() != kEd25519SeedSize) return Status::InvalidArgument("Ed25519 seed size");
  PkeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!key || !md) return Status::Internal("Ed25519 setup failed");
  Ed25519Signature sig;
  size_t len = sig.size();
  if (EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(md.get(), sig.data(), &len, message.data(), message.size()) != 1) {
    return Status::Internal("Ed25519 signing failed");
  }
  return sig;
}

Status Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
  if (public_key.size() != kEd25519PublicKeySize || signature.size() != kEd25519SignatureSize) {
    return Status::InvalidArgument("Ed25519 key or signature size");
  }
  PkeyPtr key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  if (!key) return Status::IntegrityViolation("Ed25519 public key rejected");
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!md) return Status::Internal("EVP_MD_CTX_new failed");
  if (EVP_DigestVerifyInit(md.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return Status::Internal("Ed25519 verify init failed");
  }
  if (EVP_DigestVerify(md.get(), signature.data(), signature.size(), message.data(),
                       message.size()) != 1) {
    return Status::IntegrityViolation("Ed25519 signature does not verify");
  }
  return Status::Ok();
}

}  // namespace cosmos::sec
