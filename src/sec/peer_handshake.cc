// Peer handshake messages and both sides of it.
#include "sec/peer_handshake.h"

#include <cstring>

#include "common/endian.h"

namespace cosmos::sec {
namespace {

Digest HelloReportData() {
  Sha256Hasher h;
  h.Update(AsBytes("cosmos-peer-hello-v1"));
  return h.Final();
}

Digest ReplyReportData(ByteSpan hello, uint64_t channel_id) {
  Sha256Hasher h;
  h.Update(AsBytes("cosmos-peer-reply-v1"));
  h.Update(hello);
  uint8_t id[8];
  StoreLE<uint64_t>(id, channel_id);
  h.Update(ByteSpan(id, 8));
  return h.Final();
}

// Parses the fixed header of a peer message and returns its quote.
Result<Quote> ParsePeerMessage(ByteSpan bytes, uint8_t type, size_t size, uint64_t* channel_id) {
  if (bytes.size() != size) return Status::IntegrityViolation("peer handshake: wrong length");
  ByteReader r(bytes);
  const uint8_t t = r.U8();
  const uint8_t version = r.U8();
  const uint16_t reserved = r.U16();
  if (t != type || version != kPeerHandshakeVersion || reserved != 0) {
    return Status::IntegrityViolation("peer handshake: bad type, version or reserved field");
  }
  if (channel_id != nullptr) *channel_id = r.U64();
  auto q = ParseQuote(r.View(kQuoteSize));
  if (!q.ok()) return Status::IntegrityViolation("peer handshake: " + q.status().message());
  return *q;
}

AttestationPolicy SameCode(AttestationPolicy trusted, const Digest& measurement) {
  trusted.expected_measurement = measurement;
  return trusted;
}

}  // namespace

Result<SessionKeys> DerivePeerKeys(ByteSpan shared_secret, ByteSpan hello, ByteSpan reply) {
  Sha256Hasher h;
  h.Update(hello);
  h.Update(reply);
  const Digest transcript = h.Final();
  Digest prk = HkdfExtract(transcript, shared_secret);
  SessionKeys k;
  Status s = HkdfExpand(prk, AsBytes("cosmos peer i2r v1"), k.client_to_server.mutable_span());
  if (s.ok()) s = HkdfExpand(prk, AsBytes("cosmos peer r2i v1"), k.server_to_client.mutable_span());
  if (s.ok()) s = HkdfExpand(prk, AsBytes("cosmos peer verify v1"), k.verify.mutable_span());
  SecureWipe(prk);
  COSMOS_RETURN_IF_ERROR(s);
  return k;
}

Result<std::unique_ptr<PeerInitiator>> PeerInitiator::Start(const Ed25519KeyPair& platform_key,
                                                            const Digest& measurement,
                                                            const AttestationPolicy& trusted) {
  std::unique_ptr<PeerInitiator> p(new PeerInitiator());
  COSMOS_ASSIGN_OR_RETURN(p->kex_, GenerateX25519());
  COSMOS_RETURN_IF_ERROR(RandomBytes(p->nonce_));
  p->trusted_ = SameCode(trusted, measurement);
  Quote q;
  q.measurement = measurement;
  q.kex_public = p->kex_.public_key;
  q.nonce = p->nonce_;
  q.report_data = HelloReportData();
  COSMOS_RETURN_IF_ERROR(SignQuote(platform_key, &q));
  ByteWriter w(&p->hello_);
  w.U8(kPeerHelloType);
  w.U8(kPeerHandshakeVersion);
  w.U16(0);
  w.Raw(SerializeQuote(q));
  return p;
}

Result<std::unique_ptr<SecureChannel>> PeerInitiator::Finish(ByteSpan reply, uint64_t* channel_id,
                                                             const ChannelOptions& options) {
  uint64_t id = 0;
  COSMOS_ASSIGN_OR_RETURN(Quote q, ParsePeerMessage(reply, kPeerReplyType, kPeerReplySize, &id));
  COSMOS_RETURN_IF_ERROR(VerifyQuote(q, trusted_, nonce_, ReplyReportData(hello_, id)));
  COSMOS_ASSIGN_OR_RETURN(SecretArray<32> shared,
                          X25519Agree(kex_.private_key.span(), q.kex_public));
  COSMOS_ASSIGN_OR_RETURN(SessionKeys keys, DerivePeerKeys(shared.span(), hello_, reply));
  SecureWipe(kex_.private_key.mutable_span());  // single use
  if (channel_id != nullptr) *channel_id = id;
  return SecureChannel::Create(ChannelRole::kClient, id, keys, options);
}

Result<AcceptedPeer> AcceptPeerHello(ByteSpan hello, const Ed25519KeyPair& platform_key,
                                     const Digest& measurement, const AttestationPolicy& trusted,
                                     const ChannelOptions& options) {
  COSMOS_ASSIGN_OR_RETURN(Quote hq,
                          ParsePeerMessage(hello, kPeerHelloType, kPeerHelloSize, nullptr));
  COSMOS_RETURN_IF_ERROR(
      VerifyQuote(hq, SameCode(trusted, measurement), hq.nonce, HelloReportData()));
  AcceptedPeer out;
  out.peer_platform_key_id = hq.platform_key_id;
  COSMOS_RETURN_IF_ERROR(
      RandomBytes(MutableByteSpan(reinterpret_cast<uint8_t*>(&out.channel_id), 8)));
  COSMOS_ASSIGN_OR_RETURN(X25519KeyPair kex, GenerateX25519());
  Quote q;
  q.measurement = measurement;
  q.kex_public = kex.public_key;
  q.nonce = hq.nonce;
  q.report_data = ReplyReportData(hello, out.channel_id);
  COSMOS_RETURN_IF_ERROR(SignQuote(platform_key, &q));
  ByteWriter w(&out.reply);
  w.U8(kPeerReplyType);
  w.U8(kPeerHandshakeVersion);
  w.U16(0);
  w.U64(out.channel_id);
  w.Raw(SerializeQuote(q));
  COSMOS_ASSIGN_OR_RETURN(SecretArray<32> shared,
                          X25519Agree(kex.private_key.span(), hq.kex_public));
  COSMOS_ASSIGN_OR_RETURN(SessionKeys keys, DerivePeerKeys(shared.span(), hello, out.reply));
  COSMOS_ASSIGN_OR_RETURN(
      out.channel, SecureChannel::Create(ChannelRole::kServer, out.channel_id, keys, options));
  return out;
}

}  // namespace cosmos::sec
