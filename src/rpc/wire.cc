// Encoding and defensive parsing of the RPC wire format (docs/wire_format.md).
#include "rpc/wire.h"

#include <cstring>

#include "common/check.h"
#include "common/endian.h"

namespace cosmos::rpc {

void EncodeHeader(const PacketHeader& h, std::span<std::byte> out) {
  COSMOS_CHECK(out.size() >= kHeaderSize);
  std::byte* p = out.data();
  StoreLE<uint8_t>(p + kOffVersion, h.version);
  StoreLE<uint8_t>(p + kOffType, static_cast<uint8_t>(h.type));
  StoreLE<uint8_t>(p + kOffTagLen, h.tag_len);
  StoreLE<uint8_t>(p + kOffStatus, h.status);
  StoreLE<uint16_t>(p + kOffReqType, h.req_type);
  StoreLE<uint16_t>(p + kOffPayloadLen, h.payload_len);
  StoreLE<uint32_t>(p + kOffDestSession, h.dest_session);
  StoreLE<uint32_t>(p + kOffEpoch, h.epoch);
  StoreLE<uint64_t>(p + kOffReqNum, h.req_num);
  StoreLE<uint32_t>(p + kOffMsgSize, h.msg_size);
  StoreLE<uint32_t>(p + kOffPktNum, h.pkt_num);
  StoreLE<uint64_t>(p + kOffSeq, h.seq);
}

ParseError ParsePacket(std::span<std::byte> data, size_t max_payload, ParsedPacket* out) {
  if (data.size() < kHeaderSize) return ParseError::kTruncated;
  const std::byte* p = data.data();
  PacketHeader& h = out->header;
  h.version = LoadLE<uint8_t>(p + kOffVersion);
  if (h.version != kWireVersion) return ParseError::kBadVersion;
  const uint8_t type = LoadLE<uint8_t>(p + kOffType);
  if (type == 0 || type > kMaxPacketType) return ParseError::kBadType;
  h.type = static_cast<PacketType>(type);
  h.tag_len = LoadLE<uint8_t>(p + kOffTagLen);
  h.status = LoadLE<uint8_t>(p + kOffStatus);
  h.req_type = LoadLE<uint16_t>(p + kOffReqType);
  h.payload_len = LoadLE<uint16_t>(p + kOffPayloadLen);
  h.dest_session = LoadLE<uint32_t>(p + kOffDestSession);
  h.epoch = LoadLE<uint32_t>(p + kOffEpoch);
  h.req_num = LoadLE<uint64_t>(p + kOffReqNum);
  h.msg_size = LoadLE<uint32_t>(p + kOffMsgSize);
  h.pkt_num = LoadLE<uint32_t>(p + kOffPktNum);
  h.seq = LoadLE<uint64_t>(p + kOffSeq);
  if (h.tag_len > kMaxTagSize) return ParseError::kBadLength;
  if (h.payload_len > max_payload) return ParseError::kBadLength;
  const size_t want = kHeaderSize + h.payload_len + h.tag_len;
  if (data.size() < want) return ParseError::kTruncated;
  if (data.size() != want) return ParseError::kBadLength;
  if (h.type == PacketType::kRequest || h.type == PacketType::kResponse) {
    if (h.payload_len > h.msg_size) return ParseError::kBadLength;
  }
  out->payload = data.subspan(kHeaderSize, h.payload_len);
  out->tag = data.subspan(kHeaderSize + h.payload_len, h.tag_len);
  return ParseError::kNone;
}

void EncodeConnectRequest(const ConnectRequestBody& b, std::span<std::byte> out) {
  COSMOS_CHECK(out.size() >= kConnectRequestBodySize);
  std::byte* p = out.data();
  StoreLE<uint32_t>(p + 0, b.client_session);
  StoreLE<uint32_t>(p + 4, b.client_epoch);
  StoreLE<uint32_t>(p + 8, b.mtu);
  StoreLE<uint32_t>(p + 12, b.max_msg_size);
  StoreLE<uint16_t>(p + 16, b.credits);
  StoreLE<uint16_t>(p + 18, b.window);
  std::memcpy(p + 20, b.cookie.data(), kCookieSize);
}

void EncodeConnectReply(const ConnectReplyBody& b, std::span<std::byte> out) {
  COSMOS_CHECK(out.size() >= kConnectReplyBodySize);
  std::byte* p = out.data();
  StoreLE<uint32_t>(p + 0, b.server_session);
  StoreLE<uint32_t>(p + 4, b.max_msg_size);
  StoreLE<uint32_t>(p + 8, b.mtu);
  StoreLE<uint16_t>(p + 12, b.credits);
  StoreLE<uint16_t>(p + 14, b.window);
  StoreLE<uint16_t>(p + 16, b.flags);
  StoreLE<uint16_t>(p + 18, b.reserved);
}

bool DecodeConnectRequest(std::span<const std::byte> in, ConnectRequestBody* out) {
  if (in.size() < kConnectRequestBodySize) return false;
  const std::byte* p = in.data();
  out->client_session = LoadLE<uint32_t>(p + 0);
  out->client_epoch = LoadLE<uint32_t>(p + 4);
  out->mtu = LoadLE<uint32_t>(p + 8);
  out->max_msg_size = LoadLE<uint32_t>(p + 12);
  out->credits = LoadLE<uint16_t>(p + 16);
  out->window = LoadLE<uint16_t>(p + 18);
  std::memcpy(out->cookie.data(), p + 20, kCookieSize);
  return true;
}

bool DecodeConnectReply(std::span<const std::byte> in, ConnectReplyBody* out) {
  if (in.size() < kConnectReplyBodySize) return false;
  const std::byte* p = in.data();
  out->server_session = LoadLE<uint32_t>(p + 0);
  out->max_msg_size = LoadLE<uint32_t>(p + 4);
  out->mtu = LoadLE<uint32_t>(p + 8);
  out->credits = LoadLE<uint16_t>(p + 12);
  out->window = LoadLE<uint16_t>(p + 14);
  out->flags = LoadLE<uint16_t>(p + 16);
  out->reserved = LoadLE<uint16_t>(p + 18);
  return true;
}

}  // namespace cosmos::rpc
