// Tests for the RPC wire format: layout, round trips and rejection of bad bytes.
#include "rpc/wire.h"

#include <gtest/gtest.h>

#include <vector>

namespace cosmos::rpc {
namespace {

PacketHeader SampleHeader() {
  PacketHeader h;
  h.type = PacketType::kRequest;
  h.status = 0;
  h.req_type = 0x1234;
  h.payload_len = 5;
  h.dest_session = 0xAABBCCDD;
  h.epoch = 77;
  h.req_num = 0x0102030405060708ull;
  h.msg_size = 5;
  h.pkt_num = 0;
  h.seq = 99;
  return h;
}

TEST(Wire, HeaderRoundTripsAndIsLittleEndian) {
  std::vector<std::byte> buf(kHeaderSize + 5);
  EncodeHeader(SampleHeader(), buf);
  EXPECT_EQ(buf[kOffVersion], std::byte{kWireVersion});
  EXPECT_EQ(buf[kOffReqType], std::byte{0x34});
  EXPECT_EQ(buf[kOffReqNum], std::byte{0x08});
  ParsedPacket p;
  ASSERT_EQ(ParsePacket(buf, 1400, &p), ParseError::kNone);
  EXPECT_EQ(p.header.req_type, 0x1234);
  EXPECT_EQ(p.header.dest_session, 0xAABBCCDDu);
  EXPECT_EQ(p.header.req_num, 0x0102030405060708ull);
  EXPECT_EQ(p.header.seq, 99u);
  EXPECT_EQ(p.payload.size(), 5u);
  EXPECT_TRUE(p.tag.empty());
}

TEST(Wire, RejectsTruncatedPackets) {
  std::vector<std::byte> buf(kHeaderSize + 5);
  EncodeHeader(SampleHeader(), buf);
  ParsedPacket p;
  EXPECT_EQ(ParsePacket(std::span(buf).first(10), 1400, &p), ParseError::kTruncated);
  EXPECT_EQ(ParsePacket(std::span(buf).first(kHeaderSize + 4), 1400, &p), ParseError::kTruncated);
}

TEST(Wire, RejectsWrongVersionTypeAndTrailingBytes) {
  std::vector<std::byte> buf(kHeaderSize + 5);
  EncodeHeader(SampleHeader(), buf);
  ParsedPacket p;
  auto bad = buf;
  bad[kOffVersion] = std::byte{kWireVersion + 1};
  EXPECT_EQ(ParsePacket(bad, 1400, &p), ParseError::kBadVersion);
  bad[kOffVersion] = std::byte{1};  // version 1 (before connect cookies) is not spoken
  EXPECT_EQ(ParsePacket(bad, 1400, &p), ParseError::kBadVersion);
  bad = buf;
  bad[kOffType] = std::byte{0};
  EXPECT_EQ(ParsePacket(bad, 1400, &p), ParseError::kBadType);
  bad[kOffType] = std::byte{kMaxPacketType + 1};
  EXPECT_EQ(ParsePacket(bad, 1400, &p), ParseError::kBadType);
  bad = buf;
  bad.push_back(std::byte{0});
  EXPECT_EQ(ParsePacket(bad, 1400, &p), ParseError::kBadLength);
}

TEST(Wire, RejectsOversizedPayloadAndTag) {
  PacketHeader h = SampleHeader();
  h.tag_len = kMaxTagSize + 1;
  std::vector<std::byte> buf(kHeaderSize + 5 + h.tag_len);
  EncodeHeader(h, buf);
  ParsedPacket p;
  EXPECT_EQ(ParsePacket(buf, 1400, &p), ParseError::kBadLength);
  h = SampleHeader();
  h.msg_size = 3;  // payload larger than the whole message
  EncodeHeader(h, buf);
  EXPECT_EQ(ParsePacket(std::span(buf).first(kHeaderSize + 5), 1400, &p), ParseError::kBadLength);
  h = SampleHeader();
  EncodeHeader(h, buf);
  EXPECT_EQ(ParsePacket(std::span(buf).first(kHeaderSize + 5), 4, &p), ParseError::kBadLength);
}

TEST(Wire, ConnectBodiesRoundTrip) {
  ConnectRequestBody a{1, 2, 1472, 1 << 20, 32, 8};
  for (size_t i = 0; i < kCookieSize; ++i) a.cookie[i] = static_cast<std::byte>(i + 1);
  std::byte buf[kConnectRequestBodySize];
  EncodeConnectRequest(a, buf);
  ConnectRequestBody b;
  ASSERT_TRUE(DecodeConnectRequest(buf, &b));
  EXPECT_EQ(b.client_session, 1u);
  EXPECT_EQ(b.max_msg_size, 1u << 20);
  EXPECT_EQ(b.window, 8);
  EXPECT_EQ(b.cookie, a.cookie);
  EXPECT_EQ(buf[20], std::byte{1});  // the cookie sits at offset 20
  EXPECT_FALSE(
      DecodeConnectRequest(std::span<const std::byte>(buf, kConnectRequestBodySize - 1), &b));
  ConnectReplyBody r{5, 6, 1400, 16, 8, kReplyFlagProtected, 0};
  std::byte rbuf[kConnectReplyBodySize];
  EncodeConnectReply(r, rbuf);
  ConnectReplyBody r2;
  ASSERT_TRUE(DecodeConnectReply(rbuf, &r2));
  EXPECT_EQ(r2.server_session, 5u);
  EXPECT_EQ(r2.credits, 16);
  EXPECT_EQ(r2.flags, kReplyFlagProtected);
  EXPECT_FALSE(
      DecodeConnectReply(std::span<const std::byte>(rbuf, kConnectReplyBodySize - 1), &r2));
}

TEST(Wire, PacketsForCountsZeroByteMessageAsOnePacket) {
  EXPECT_EQ(PacketsFor(0, 100), 1u);
  EXPECT_EQ(PacketsFor(100, 100), 1u);
  EXPECT_EQ(PacketsFor(101, 100), 2u);
}

}  // namespace
}  // namespace cosmos::rpc
