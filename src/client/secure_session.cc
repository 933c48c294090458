// Client side of secure connections: configuration loading, handshake and
// packet protection with a SecureChannel.
#include "client/secure_session.h"

#include <cstring>

#include "common/check.h"
#include "common/log.h"
#include "rpc/wire.h"
#include "sec/key_files.h"

namespace cosmos::client {
using rpc::HeaderSequence;
using sec::AsBytes;
using sec::AsMutableBytes;

Result<SecureClientConfig> SecureClientConfig::Load(const std::string& platform_public_path,
                                                    const std::string& measurement_path,
                                                    const std::string& client_key_path) {
  SecureClientConfig config;
  COSMOS_ASSIGN_OR_RETURN(config.policy,
                          sec::LoadAttestationPolicy(platform_public_path, measurement_path));
  COSMOS_ASSIGN_OR_RETURN(config.identity,
                          sec::LoadSigningKey(client_key_path, sec::KeyKind::kClientPrivate));
  return config;
}

size_t ChannelPacketProtector::tag_size() const { return sec::SecureChannel::kTagSize; }

void ChannelPacketProtector::Seal(std::span<const std::byte> header, std::span<std::byte> payload,
                                  std::span<std::byte> tag) {
  Status s;
  if (header.size() != rpc::kHeaderSize || tag.size() != tag_size()) {
    s = Status::InvalidArgument("bad header or tag size");
  } else {
    s = channel_->Seal(HeaderSequence(header), AsBytes(header), AsMutableBytes(payload),
                       AsMutableBytes(tag));
  }
  if (!s.ok()) {
    COSMOS_LOG_ERROR("secure session {}: packet not sealed ({}); sending it unreadable",
                     channel_->session_id(), s.ToString());
    if (!payload.empty()) std::memset(payload.data(), 0, payload.size());
    if (!tag.empty()) std::memset(tag.data(), 0, tag.size());
  }
}

Status ChannelPacketProtector::Open(std::span<const std::byte> header, std::span<std::byte> payload,
                                    std::span<const std::byte> tag) {
  if (header.size() != rpc::kHeaderSize || tag.size() != tag_size()) {
    return Status::IntegrityViolation("secure packet: bad header or tag size");
  }
  return channel_->Open(HeaderSequence(header), AsBytes(header), AsMutableBytes(payload),
                        AsBytes(tag));
}

Result<std::unique_ptr<SecureConnector>> SecureConnector::Start(const SecureClientConfig& config) {
  std::unique_ptr<SecureConnector> c(new SecureConnector());
  COSMOS_ASSIGN_OR_RETURN(c->handshake_,
                          sec::ClientHandshake::Start(config.identity, config.policy));
  c->channel_options_ = config.channel_options;
  return c;
}

std::span<const std::byte> SecureConnector::connect_payload() const {
  const sec::Bytes& hello = handshake_->hello();
  return {reinterpret_cast<const std::byte*>(hello.data()), hello.size()};
}

Result<SecureSessionKeys> SecureConnector::Finish(std::span<const std::byte> connect_reply) {
  COSMOS_ASSIGN_OR_RETURN(std::unique_ptr<sec::SecureChannel> channel,
                          handshake_->Finish(AsBytes(connect_reply), channel_options_));
  SecureSessionKeys keys;
  const sec::ByteSpan verify = channel->verify_key();
  COSMOS_CHECK(verify.size() == keys.verify_key.size());
  std::memcpy(keys.verify_key.data(), verify.data(), verify.size());
  const sec::ByteSpan wrap = channel->key_wrap_key();
  COSMOS_CHECK(wrap.size() == keys.key_wrap_key.size());
  std::memcpy(keys.key_wrap_key.data(), wrap.data(), wrap.size());
  keys.session_id = channel->session_id();
  COSMOS_ASSIGN_OR_RETURN(keys.batch_channel, channel->NewBatchChannel(channel_options_));
  keys.protector = std::make_unique<ChannelPacketProtector>(std::move(channel));
  return keys;
}

}  // namespace cosmos::client
