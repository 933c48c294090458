// COSMOS RPC wire format v2: the fixed 40-byte packet header, packet types and
// the connect handshake bodies, with defensive parsing of untrusted bytes.
// The normative spec is docs/wire_format.md; the static_asserts below pin it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "cosmos/result.h"
#include "cosmos/status.h"
#include "rpc/connect_cookie.h"

namespace cosmos::rpc {

// Version 2 added the connect cookie (ConnectRequestBody::cookie, packet
// type ConnectCookie), ConnectReplyBody::flags and session-bound resets.
inline constexpr uint8_t kWireVersion = 2;
inline constexpr size_t kHeaderSize = 40;
// Largest authentication tag a PacketProtector may append.
inline constexpr size_t kMaxTagSize = 32;
// Smallest and largest configurable path MTU (UDP payload bytes per datagram).
inline constexpr size_t kMinMtu = 256;
inline constexpr size_t kMaxMtu = 65000;

enum class PacketType : uint8_t {
  kConnectRequest = 1,      // client -> server, body ConnectRequestBody + opaque payload
  kConnectReply = 2,        // server -> client, body ConnectReplyBody + opaque payload
  kRequest = 3,             // client -> server, one packet of a request message
  kCreditReturn = 4,        // server -> client, acknowledges non-final request packet
  kResponse = 5,            // server -> client, one packet of a response message
  kRequestForResponse = 6,  // client -> server, asks for response packet pkt_num
  kPing = 7,                // client -> server heartbeat
  kPong = 8,                // server -> client heartbeat answer
  kDisconnect = 9,          // client -> server, session ends (best effort)
  kReset = 10,              // server -> client, "I do not know this session/epoch" or
                            // (dest_session != 0) "this session ends with code `status`"
  kConnectCookie = 11,      // server -> client, payload: the cookie to repeat in the connect
};
inline constexpr uint8_t kMaxPacketType = 11;

// The decoded header. Field order and widths mirror the wire layout.
struct PacketHeader {
  uint8_t version = kWireVersion;  // offset 0
  PacketType type{};               // offset 1
  uint8_t tag_len = 0;             // offset 2: bytes of auth tag at the datagram's end
  uint8_t status = 0;              // offset 3: StatusCode of a response / connect reply
  uint16_t req_type = 0;           // offset 4: handler type of the request
  uint16_t payload_len = 0;        // offset 6: payload bytes in this datagram
  uint32_t dest_session = 0;       // offset 8: receiver's session number
  uint32_t epoch = 0;              // offset 12: the server endpoint's incarnation
  uint64_t req_num = 0;            // offset 16: request number (slot = req_num % window)
  uint32_t msg_size = 0;           // offset 24: total bytes of the message
  uint32_t pkt_num = 0;            // offset 28: packet index (see docs/wire_format.md)
  uint64_t seq = 0;                // offset 32: per-session, per-direction send counter
};

inline constexpr size_t kOffVersion = 0;
inline constexpr size_t kOffType = 1;
inline constexpr size_t kOffTagLen = 2;
inline constexpr size_t kOffStatus = 3;
inline constexpr size_t kOffReqType = 4;
inline constexpr size_t kOffPayloadLen = 6;
inline constexpr size_t kOffDestSession = 8;
inline constexpr size_t kOffEpoch = 12;
inline constexpr size_t kOffReqNum = 16;
inline constexpr size_t kOffMsgSize = 24;
inline constexpr size_t kOffPktNum = 28;
inline constexpr size_t kOffSeq = 32;
static_assert(kOffSeq + sizeof(uint64_t) == kHeaderSize, "header layout v1 is 40 bytes");
static_assert(kOffPktNum + sizeof(uint32_t) == kOffSeq);
static_assert(kOffReqNum % 8 == 0 && kOffSeq % 8 == 0, "64-bit fields are naturally aligned");

// Connect request body (follows the header; opaque payload follows the body).
struct ConnectRequestBody {
  uint32_t client_session = 0;  // offset 0: client's session number (replies go here)
  uint32_t client_epoch = 0;    // offset 4: client endpoint incarnation
  uint32_t mtu = 0;             // offset 8: client's path MTU
  uint32_t max_msg_size = 0;    // offset 12: largest response the client accepts
  uint16_t credits = 0;         // offset 16: packet credits the client asks for
  uint16_t window = 0;          // offset 18: outstanding requests (slots)
  Cookie cookie{};              // offset 20: the server's cookie; all zero before it has one
};
inline constexpr size_t kConnectRequestBodySize = 36;
static_assert(kConnectRequestBodySize == 20 + kCookieSize, "cookie at offset 20");

// Connect reply body. On rejection (header.status != ok) the opaque payload
// is the server's human-readable reason.
struct ConnectReplyBody {
  uint32_t server_session = 0;  // offset 0
  uint32_t max_msg_size = 0;    // offset 4: largest message the server accepts
  uint32_t mtu = 0;             // offset 8: MTU the server will use (min of both)
  uint16_t credits = 0;         // offset 12: credits granted
  uint16_t window = 0;          // offset 14
  uint16_t flags = 0;           // offset 16: kReplyFlag* bits
  uint16_t reserved = 0;        // offset 18: 0
};
inline constexpr size_t kConnectReplyBodySize = 20;
// The server protects this session (its connect hook installed a protector):
// the client confirms it with a sealed packet once it has installed its own.
inline constexpr uint16_t kReplyFlagProtected = 1;

// Writes `h` into the first kHeaderSize bytes of `out`. REQUIRES: out.size() >= kHeaderSize.
void EncodeHeader(const PacketHeader& h, std::span<std::byte> out);

// A parsed datagram: header plus views into the caller's buffer.
struct ParsedPacket {
  PacketHeader header;
  std::span<std::byte> payload;  // header.payload_len bytes
  std::span<std::byte> tag;      // header.tag_len bytes (empty if none)
};

// Why a datagram was rejected by ParsePacket (each is counted separately).
enum class ParseError : uint8_t {
  kNone = 0,
  kTruncated,   // shorter than a header, or than header + payload + tag
  kBadVersion,  // unknown wire version
  kBadType,     // unknown packet type
  kBadLength,   // trailing bytes, oversized payload or tag, inconsistent sizes
};

// Parses and validates an untrusted datagram. Checks only what is
// self-contained (sizes, version, type, pkt_num < packet count); session,
// epoch and window checks belong to the endpoint. Never reads outside `data`.
ParseError ParsePacket(std::span<std::byte> data, size_t max_payload, ParsedPacket* out);

// Packets needed for a message of `msg_size` bytes with `chunk` payload bytes
// per packet (a zero-byte message still takes one packet). REQUIRES: chunk > 0.
inline uint32_t PacketsFor(uint64_t msg_size, size_t chunk) {
  return msg_size == 0 ? 1u : static_cast<uint32_t>((msg_size + chunk - 1) / chunk);
}

void EncodeConnectRequest(const ConnectRequestBody& b, std::span<std::byte> out);
void EncodeConnectReply(const ConnectReplyBody& b, std::span<std::byte> out);
// Return false if `in` is shorter than the body.
bool DecodeConnectRequest(std::span<const std::byte> in, ConnectRequestBody* out);
bool DecodeConnectReply(std::span<const std::byte> in, ConnectReplyBody* out);

}  // namespace cosmos::rpc
