// Server side of secure connections: handshake in the connect hook and packet
// protection through the enclave.
#include "server/secure_channel_adapter.h"

#include <cstring>
#include <memory>

#include "common/log.h"
#include "rpc/wire.h"
#include "sec/secure_channel.h"

namespace cosmos::server {
using rpc::HeaderSequence;
using sec::AsBytes;
using sec::AsMutableBytes;

EnclavePacketProtector::~EnclavePacketProtector() {
  // NotFound only if the server closed it first; nothing else to do then.
  (void)enclave_->CloseSession(session_);
  if (on_close_) on_close_();
}

size_t EnclavePacketProtector::tag_size() const { return sec::SecureChannel::kTagSize; }

void EnclavePacketProtector::Seal(std::span<const std::byte> header, std::span<std::byte> payload,
                                  std::span<std::byte> tag) {
  Status s;
  if (header.size() != rpc::kHeaderSize || tag.size() != tag_size()) {
    s = Status::InvalidArgument("bad header or tag size");
  } else {
    s = enclave_->SealPacket(session_, HeaderSequence(header), AsBytes(header),
                             AsMutableBytes(payload), AsMutableBytes(tag));
  }
  if (!s.ok()) {
    COSMOS_LOG_ERROR("secure session {}: packet not sealed ({}); sending it unreadable", session_,
                     s.ToString());
    if (!payload.empty()) std::memset(payload.data(), 0, payload.size());
    if (!tag.empty()) std::memset(tag.data(), 0, tag.size());
  }
}

Status EnclavePacketProtector::Open(std::span<const std::byte> header, std::span<std::byte> payload,
                                    std::span<const std::byte> tag) {
  if (header.size() != rpc::kHeaderSize || tag.size() != tag_size()) {
    return Status::IntegrityViolation("secure packet: bad header or tag size");
  }
  Status s = enclave_->OpenPacket(session_, HeaderSequence(header), AsBytes(header),
                                  AsMutableBytes(payload), AsBytes(tag));
  if (s.ok() || s.code() == StatusCode::kIntegrityViolation) return s;
  return Status::IntegrityViolation("secure packet rejected: " + s.ToString());
}

SecureConnectOutcome AcceptSecureConnect(sec::Enclave* enclave,
                                         std::span<const std::byte> connect_payload,
                                         std::function<void(sec::SessionHandle)> on_close) {
  SecureConnectOutcome out;
  Result<sec::AcceptedSession> accepted = enclave->AcceptClientHello(AsBytes(connect_payload));
  if (!accepted.ok()) {
    out.decision.status = accepted.status();
    return out;
  }
  out.session = accepted->session;
  out.client_identity = accepted->client_identity;
  const auto* hello = reinterpret_cast<const std::byte*>(accepted->server_hello.data());
  out.decision.reply.assign(hello, hello + accepted->server_hello.size());
  std::function<void()> closed;
  if (on_close) closed = [on_close, session = accepted->session] { on_close(session); };
  out.decision.protector =
      std::make_unique<EnclavePacketProtector>(enclave, accepted->session, std::move(closed));
  return out;
}

}  // namespace cosmos::server
