// Sealed blob v1: parser, sealing key derivation, seal/unseal.
#include "sec/sealing.h"

#include <cstring>

namespace cosmos::sec {

Result<SealedBlobView> ParseSealedBlob(ByteSpan blob) {
  ByteReader r(blob);
  const uint32_t magic = r.U32();
  const uint16_t format = r.U16();
  SealedBlobView v;
  v.purpose_version = r.U16();
  const uint32_t len = r.U32();
  v.nonce = r.View(kGcmNonceSize);
  if (!r.ok() || magic != kSealedMagic) return Status::Corruption("sealed blob: bad magic");
  if (format != kSealedFormatVersion) return Status::Corruption("sealed blob: unknown format");
  if (len > kSealedMaxPayload) return Status::Corruption("sealed blob: payload too large");
  v.ciphertext = r.View(len);
  v.tag = r.View(kGcmTagSize);
  if (!r.AtEndOk()) return Status::Corruption("sealed blob: length mismatch");
  v.header = blob.subspan(0, kSealedHeaderSize);
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
  std::unique_ptr<Sealer> s(new Sealer());
  COSMOS_ASSIGN_OR_RETURN(s->gcm_, AesGcm::Create(sealing_key));
  return s;
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
  w.U32(kSealedMagic);
  w.U16(kSealedFormatVersion);
  w.U16(purpose_version);
  w.U32(static_cast<uint32_t>(plaintext.size()));
  GcmNonce nonce;
  COSMOS_RETURN_IF_ERROR(RandomBytes(nonce));
  w.Raw(nonce);
  blob.resize(kSealedOverhead + plaintext.size());
  const Bytes full_aad = BuildAad(purpose, ByteSpan(blob.data(), kSealedHeaderSize), aad);
  MutableByteSpan ct(blob.data() + kSealedHeaderSize, plaintext.size());
  MutableByteSpan tag(blob.data() + kSealedHeaderSize + plaintext.size(), kGcmTagSize);
  COSMOS_RETURN_IF_ERROR(gcm_->Seal(nonce, full_aad, plaintext, ct, tag));
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
  Status s = gcm_->Open(view->nonce, full_aad, view->ciphertext, view->tag, plain);
  if (!s.ok()) {
    return Status::IntegrityViolation("unseal '" + std::string(purpose) +
                                      "': authentication failed (wrong key, binding or tamper)");
  }
  return plain;
}

}  // namespace cosmos::sec
