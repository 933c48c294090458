// Sealed blobs (v2, salted sub-keys; v1 read-only): parser, sealing key
// derivation, seal/unseal.
#include "sec/sealing.h"

#include <algorithm>
#include <cstring>

namespace cosmos::sec {

Result<SealedBlobView> ParseSealedBlob(ByteSpan blob) {
  ByteReader r(blob);
  const uint32_t magic = r.U32();
  SealedBlobView v;
  v.format_version = r.U16();
  v.purpose_version = r.U16();
  const uint32_t len = r.U32();
  if (!r.ok() || magic != kSealedMagic) return Status::Corruption("sealed blob: bad magic");
  size_t header = 0;
  if (v.format_version == kSealedFormatVersion) {
    v.salt = r.View(kSealedSaltSize);
    header = kSealedHeaderSize;
  } else if (v.format_version == kSealedFormatVersionV1) {
    header = kSealedHeaderSizeV1;
  } else {
    return Status::Corruption("sealed blob: unknown format");
  }
  v.nonce = r.View(kGcmNonceSize);
  if (!r.ok()) return Status::Corruption("sealed blob: truncated header");
  if (len > kSealedMaxPayload) return Status::Corruption("sealed blob: payload too large");
  v.ciphertext = r.View(len);
  v.tag = r.View(kGcmTagSize);
  if (!r.AtEndOk()) return Status::Corruption("sealed blob: length mismatch");
  v.header = blob.subspan(0, header);
  return v;
}

Result<AesKey> DeriveSealingKey(ByteSpan platform_secret, ByteSpan measurement) {
  if (platform_secret.size() < 32) {
    return Status::InvalidArgument("platform secret must be at least 32 bytes");
  }
  Bytes info;
  ByteWriter w(&info);
  w.Raw(AsBytes("cosmos-seal-key-v1"));
  w.Raw(measurement);
  AesKey key;
  COSMOS_RETURN_IF_ERROR(
      HkdfSha256(platform_secret, AsBytes("cosmos-sealing-salt-v1"), info, key.mutable_span()));
  return key;
}

Result<std::unique_ptr<Sealer>> Sealer::Create(ByteSpan sealing_key) {
  if (sealing_key.size() != kAesKeySize) {
    return Status::InvalidArgument("sealing key must be 32 bytes");
  }
  std::unique_ptr<Sealer> s(new Sealer());
  COSMOS_ASSIGN_OR_RETURN(s->key_, LockedBuffer::Create(kAesKeySize));
  std::memcpy(s->key_->data(), sealing_key.data(), kAesKeySize);
  COSMOS_ASSIGN_OR_RETURN(s->legacy_, AesGcm::Create(sealing_key));
  COSMOS_ASSIGN_OR_RETURN(s->open_gcm_, AesGcm::Create(sealing_key));  // rekeyed before use
  COSMOS_ASSIGN_OR_RETURN(s->seal_gcm_, AesGcm::Create(sealing_key));  // rekeyed below
  COSMOS_RETURN_IF_ERROR(s->NewSubkey());
  return s;
}

Status Sealer::DeriveSubkey(ByteSpan salt, AesGcm* gcm) {
  SecretArray<kAesKeySize> sub;
  COSMOS_RETURN_IF_ERROR(
      HkdfSha256(key_->span(), salt, AsBytes("cosmos-seal-subkey-v2"), sub.mutable_span()));
  return gcm->Rekey(sub.span());
}

Status Sealer::NewSubkey() {
  COSMOS_RETURN_IF_ERROR(RandomBytes(seal_salt_));
  COSMOS_RETURN_IF_ERROR(DeriveSubkey(seal_salt_, seal_gcm_.get()));
  seals_under_subkey_ = 0;
  ++subkeys_drawn_;
  return Status::Ok();
}

Bytes Sealer::BuildAad(std::string_view purpose, ByteSpan header, ByteSpan aad) {
  Bytes out;
  ByteWriter w(&out);
  w.Raw(AsBytes("cosmos-seal-v1"));
  w.U8(static_cast<uint8_t>(purpose.size()));
  w.Raw(AsBytes(purpose));
  w.Raw(header);
  w.Raw(aad);
  return out;
}

Result<Bytes> Sealer::Seal(std::string_view purpose, uint16_t purpose_version, ByteSpan aad,
                           ByteSpan plaintext) {
  if (purpose.empty() || purpose.size() > 255) {
    return Status::InvalidArgument("seal: purpose must be 1..255 bytes");
  }
  if (plaintext.size() > kSealedMaxPayload) return Status::InvalidArgument("seal: too large");
  Bytes blob;
  blob.reserve(kSealedOverhead + plaintext.size());
  ByteWriter w(&blob);
  if (seals_under_subkey_ >= kSealsPerSubkey) COSMOS_RETURN_IF_ERROR(NewSubkey());
  ++seals_under_subkey_;
  w.U32(kSealedMagic);
  w.U16(kSealedFormatVersion);
  w.U16(purpose_version);
  w.U32(static_cast<uint32_t>(plaintext.size()));
  w.Raw(seal_salt_);
  GcmNonce nonce;
  COSMOS_RETURN_IF_ERROR(RandomBytes(nonce));
  w.Raw(nonce);
  blob.resize(kSealedOverhead + plaintext.size());
  const Bytes full_aad = BuildAad(purpose, ByteSpan(blob.data(), kSealedHeaderSize), aad);
  MutableByteSpan ct(blob.data() + kSealedHeaderSize, plaintext.size());
  MutableByteSpan tag(blob.data() + kSealedHeaderSize + plaintext.size(), kGcmTagSize);
  COSMOS_RETURN_IF_ERROR(seal_gcm_->Seal(nonce, full_aad, plaintext, ct, tag));
  return blob;
}

Result<Bytes> Sealer::Unseal(std::string_view purpose, uint16_t purpose_version, ByteSpan aad,
                             ByteSpan blob) {
  auto view = ParseSealedBlob(blob);
  if (!view.ok()) {
    return Status::IntegrityViolation("unseal '" + std::string(purpose) +
                                      "': " + view.status().message());
  }
  if (view->purpose_version != purpose_version) {
    return Status::IntegrityViolation("unseal '" + std::string(purpose) +
                                      "': purpose version mismatch");
  }
  const Bytes full_aad = BuildAad(purpose, view->header, aad);
  Bytes plain(view->ciphertext.size());
  AesGcm* gcm = legacy_.get();
  if (view->format_version == kSealedFormatVersion) {
    if (std::equal(view->salt.begin(), view->salt.end(), seal_salt_.begin())) {
      gcm = seal_gcm_.get();
    } else {
      if (!open_valid_ || !std::equal(view->salt.begin(), view->salt.end(), open_salt_.begin())) {
        open_valid_ = false;
        COSMOS_RETURN_IF_ERROR(DeriveSubkey(view->salt, open_gcm_.get()));
        std::copy(view->salt.begin(), view->salt.end(), open_salt_.begin());
        open_valid_ = true;
      }
      gcm = open_gcm_.get();
    }
  }
  Status s = gcm->Open(view->nonce, full_aad, view->ciphertext, view->tag, plain);
  if (!s.ok()) {
    return Status::IntegrityViolation("unseal '" + std::string(purpose) +
                                      "': authentication failed (wrong key, binding or tamper)");
  }
  return plain;
}

}  // namespace cosmos::sec
