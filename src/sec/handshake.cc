// Handshake messages, key schedule, client and server handshake steps.
#include "sec/handshake.h"

#include <cstring>

#include "common/endian.h"

namespace cosmos::sec {
namespace {
constexpr size_t kClientSignedBytes = 100;

Bytes ClientSignedMessage(ByteSpan hello_prefix) {
  Bytes m;
  ByteWriter w(&m);
  w.Raw(AsBytes("cosmos-client-hello-v1"));
  w.Raw(hello_prefix);
  return m;
}
}  // namespace

Bytes SerializeClientHello(const ClientHello& h) {
  Bytes out;
  out.reserve(kClientHelloSize);
  ByteWriter w(&out);
  w.U8(kClientHelloType);
  w.U8(kHandshakeVersion);
  w.U16(0);
  w.Raw(h.kex_public);
  w.Raw(h.nonce);
  w.Raw(h.identity);
  w.Raw(h.signature);
  return out;
}

Result<ClientHello> ParseClientHello(ByteSpan bytes) {
  ByteReader r(bytes);
  const uint8_t type = r.U8();
  const uint8_t version = r.U8();
  const uint16_t reserved = r.U16();
  ClientHello h;
  r.Raw(h.kex_public);
  r.Raw(h.nonce);
  r.Raw(h.identity);
  r.Raw(h.signature);
  if (!r.AtEndOk()) return Status::Corruption("client hello: wrong length");
  if (type != kClientHelloType || version != kHandshakeVersion || reserved != 0) {
    return Status::Corruption("client hello: bad type, version or reserved field");
  }
  return h;
}

Bytes SerializeServerHello(const ServerHello& h) {
  Bytes out;
  out.reserve(kServerHelloSize);
  ByteWriter w(&out);
  w.U8(kServerHelloType);
  w.U8(kHandshakeVersion);
  w.U16(0);
  w.U64(h.session_id);
  w.Raw(SerializeQuote(h.quote));
  return out;
}

Result<ServerHello> ParseServerHello(ByteSpan bytes) {
  ByteReader r(bytes);
  const uint8_t type = r.U8();
  const uint8_t version = r.U8();
  const uint16_t reserved = r.U16();
  ServerHello h;
  h.session_id = r.U64();
  ByteSpan quote = r.View(kQuoteSize);
  if (!r.AtEndOk()) return Status::Corruption("server hello: wrong length");
  if (type != kServerHelloType || version != kHandshakeVersion || reserved != 0) {
    return Status::Corruption("server hello: bad type, version or reserved field");
  }
  COSMOS_ASSIGN_OR_RETURN(h.quote, ParseQuote(quote));
  return h;
}

Digest HandshakeReportData(ByteSpan client_hello, uint64_t session_id) {
  Sha256Hasher h;
  h.Update(AsBytes("cosmos-hello-binding-v1"));
  h.Update(client_hello);
  uint8_t id[8];
  StoreLE<uint64_t>(id, session_id);
  h.Update(ByteSpan(id, 8));
  return h.Final();
}

Result<SessionKeys> DeriveSessionKeys(ByteSpan shared_secret, ByteSpan client_hello,
                                      ByteSpan server_hello) {
  Sha256Hasher h;
  h.Update(client_hello);
  h.Update(server_hello);
  const Digest transcript = h.Final();
  Digest prk = HkdfExtract(transcript, shared_secret);
  SessionKeys k;
  Status s = HkdfExpand(prk, AsBytes("cosmos c2s v1"), k.client_to_server.mutable_span());
  if (s.ok()) s = HkdfExpand(prk, AsBytes("cosmos s2c v1"), k.server_to_client.mutable_span());
  if (s.ok()) s = HkdfExpand(prk, AsBytes("cosmos verify v1"), k.verify.mutable_span());
  if (s.ok()) s = HkdfExpand(prk, AsBytes("cosmos key wrap v1"), k.key_wrap.mutable_span());
  if (s.ok()) {
    s = HkdfExpand(prk, AsBytes("cosmos batch c2s v1"), k.batch_client_to_server.mutable_span());
  }
  if (s.ok()) {
    s = HkdfExpand(prk, AsBytes("cosmos batch s2c v1"), k.batch_server_to_client.mutable_span());
  }
  SecureWipe(prk);
  COSMOS_RETURN_IF_ERROR(s);
  return k;
}

Result<std::unique_ptr<ClientHandshake>> ClientHandshake::Start(const Ed25519KeyPair& identity,
                                                                const AttestationPolicy& policy) {
  std::unique_ptr<ClientHandshake> hs(new ClientHandshake());
  COSMOS_ASSIGN_OR_RETURN(hs->kex_, GenerateX25519());
  COSMOS_RETURN_IF_ERROR(RandomBytes(hs->nonce_));
  hs->policy_ = policy;
  ClientHello h;
  h.kex_public = hs->kex_.public_key;
  h.nonce = hs->nonce_;
  h.identity = identity.public_key;
  Bytes bytes = SerializeClientHello(h);
  COSMOS_ASSIGN_OR_RETURN(
      h.signature, Ed25519Sign(identity.seed.span(),
                               ClientSignedMessage(ByteSpan(bytes.data(), kClientSignedBytes))));
  hs->hello_ = SerializeClientHello(h);
  return hs;
}

Result<std::unique_ptr<SecureChannel>> ClientHandshake::Finish(ByteSpan server_hello,
                                                               const ChannelOptions& options) {
  auto sh = ParseServerHello(server_hello);
  if (!sh.ok())
    return Status::IntegrityViolation("malformed server hello: " + sh.status().message());
  COSMOS_RETURN_IF_ERROR(
      VerifyQuote(sh->quote, policy_, nonce_, HandshakeReportData(hello_, sh->session_id)));
  COSMOS_ASSIGN_OR_RETURN(SecretArray<32> shared,
                          X25519Agree(kex_.private_key.span(), sh->quote.kex_public));
  COSMOS_ASSIGN_OR_RETURN(SessionKeys keys, DeriveSessionKeys(shared.span(), hello_, server_hello));
  SecureWipe(kex_.private_key.mutable_span());  // single use
  return SecureChannel::Create(ChannelRole::kClient, sh->session_id, keys, options);
}

Result<ServerSession> AcceptClientHello(
    ByteSpan client_hello, const Ed25519KeyPair& platform_key, const Digest& measurement,
    const std::function<bool(const Ed25519PublicKey&)>& client_allowed,
    const ChannelOptions& options) {
  auto ch = ParseClientHello(client_hello);
  if (!ch.ok())
    return Status::IntegrityViolation("malformed client hello: " + ch.status().message());
  if (!Ed25519Verify(ch->identity, ClientSignedMessage(client_hello.subspan(0, kClientSignedBytes)),
                     ch->signature)
           .ok()) {
    return Status::IntegrityViolation("client hello signature does not verify");
  }
  if (!client_allowed || !client_allowed(ch->identity)) {
    return Status::PermissionDenied("client identity is not on the node's allow list");
  }
  ServerSession out;
  out.client_identity = ch->identity;
  COSMOS_RETURN_IF_ERROR(
      RandomBytes(MutableByteSpan(reinterpret_cast<uint8_t*>(&out.session_id), 8)));
  COSMOS_ASSIGN_OR_RETURN(X25519KeyPair kex, GenerateX25519());
  ServerHello sh;
  sh.session_id = out.session_id;
  sh.quote.measurement = measurement;
  sh.quote.kex_public = kex.public_key;
  sh.quote.nonce = ch->nonce;
  sh.quote.report_data = HandshakeReportData(client_hello, out.session_id);
  COSMOS_RETURN_IF_ERROR(SignQuote(platform_key, &sh.quote));
  out.server_hello = SerializeServerHello(sh);
  COSMOS_ASSIGN_OR_RETURN(SecretArray<32> shared,
                          X25519Agree(kex.private_key.span(), ch->kex_public));
  COSMOS_ASSIGN_OR_RETURN(SessionKeys keys,
                          DeriveSessionKeys(shared.span(), client_hello, out.server_hello));
  COSMOS_ASSIGN_OR_RETURN(
      out.channel, SecureChannel::Create(ChannelRole::kServer, out.session_id, keys, options));
  return out;
}

}  // namespace cosmos::sec
