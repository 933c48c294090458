// Quote serialization, signing and verification.
#include "sec/attestation.h"

#include <cstring>

namespace cosmos::sec {
namespace {
Bytes SignedPart(const Quote& q) {
  Bytes b = SerializeQuote(q);
  b.resize(kQuoteSize - kEd25519SignatureSize);
  static constexpr std::string_view kLabel = "cosmos-quote-v1";
  // Sized once and filled with memcpy: g++ 12 at -O3 reports a false
  // -Wstringop-overflow on the incremental vector-growth form.
  Bytes msg(kLabel.size() + b.size());
  std::memcpy(msg.data(), kLabel.data(), kLabel.size());
  std::memcpy(msg.data() + kLabel.size(), b.data(), b.size());
  return msg;
}
}  // namespace

Digest SimulatedMeasurement(std::string_view identity) {
  Sha256Hasher h;
  h.Update(AsBytes("cosmos-measurement-v1"));
  h.Update(AsBytes(identity));
  return h.Final();
}

std::array<uint8_t, 8> PlatformKeyId(const Ed25519PublicKey& key) {
  Digest d = Sha256(key);
  std::array<uint8_t, 8> id;
  std::memcpy(id.data(), d.data(), id.size());
  return id;
}

Bytes SerializeQuote(const Quote& q) {
  Bytes out;
  out.reserve(kQuoteSize);
  ByteWriter w(&out);
  w.U32(kQuoteMagic);
  w.U16(kQuoteVersion);
  w.U16(0);
  w.Raw(q.measurement);
  w.Raw(q.kex_public);
  w.Raw(q.nonce);
  w.Raw(q.report_data);
  w.Raw(q.platform_key_id);
  w.Raw(q.signature);
  return out;
}

Result<Quote> ParseQuote(ByteSpan bytes) {
  ByteReader r(bytes);
  const uint32_t magic = r.U32();
  const uint16_t version = r.U16();
  const uint16_t reserved = r.U16();
  Quote q;
  r.Raw(q.measurement);
  r.Raw(q.kex_public);
  r.Raw(q.nonce);
  r.Raw(q.report_data);
  r.Raw(q.platform_key_id);
  r.Raw(q.signature);
  if (!r.AtEndOk()) return Status::Corruption("quote: wrong length");
  if (magic != kQuoteMagic || version != kQuoteVersion || reserved != 0) {
    return Status::Corruption("quote: bad magic, version or reserved field");
  }
  return q;
}

Status SignQuote(const Ed25519KeyPair& platform_key, Quote* q) {
  q->platform_key_id = PlatformKeyId(platform_key.public_key);
  COSMOS_ASSIGN_OR_RETURN(q->signature, Ed25519Sign(platform_key.seed.span(), SignedPart(*q)));
  return Status::Ok();
}

Status VerifyQuote(const Quote& q, const AttestationPolicy& policy, ByteSpan expected_nonce,
                   ByteSpan expected_report_data) {
  const Ed25519PublicKey* key = nullptr;
  if (q.platform_key_id == PlatformKeyId(policy.platform_public_key)) {
    key = &policy.platform_public_key;
  } else {
    for (const Ed25519PublicKey& k : policy.more_platform_keys) {
      if (q.platform_key_id == PlatformKeyId(k)) {
        key = &k;
        break;
      }
    }
  }
  if (key == nullptr)
    return Status::IntegrityViolation("quote: signed by an untrusted platform key");
  if (!Ed25519Verify(*key, SignedPart(q), q.signature).ok()) {
    return Status::IntegrityViolation("quote: platform signature does not verify");
  }
  if (!ConstantTimeEqual(q.measurement, policy.expected_measurement)) {
    return Status::IntegrityViolation("quote: enclave measurement is not the expected one");
  }
  if (!ConstantTimeEqual(q.nonce, expected_nonce)) {
    return Status::IntegrityViolation("quote: nonce mismatch (replayed quote)");
  }
  if (!ConstantTimeEqual(q.report_data, expected_report_data)) {
    return Status::IntegrityViolation("quote: report data mismatch (quote from another handshake)");
  }
  return Status::Ok();
}

}  // namespace cosmos::sec
