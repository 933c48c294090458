// Tests of packet protection: round trips both ways, modification, replay,
// reordering, header binding, direction binding and forced key rotation.
#include "sec/secure_channel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace cosmos::sec {
namespace {

SessionKeys Keys(uint8_t base) {
  SessionKeys k;
  k.client_to_server.bytes.fill(base);
  k.server_to_client.bytes.fill(static_cast<uint8_t>(base + 1));
  k.verify.bytes.fill(static_cast<uint8_t>(base + 2));
  return k;
}

struct Pair {
  std::unique_ptr<SecureChannel> client, server;
};
Pair MakePair(ChannelOptions o = {}) {
  return {std::move(*SecureChannel::Create(ChannelRole::kClient, 42, Keys(1), o)),
          std::move(*SecureChannel::Create(ChannelRole::kServer, 42, Keys(1), o))};
}

struct Packet {
  uint64_t seq;
  Bytes header;
  Bytes payload;
  Bytes tag;
};
Packet SealOne(SecureChannel* c, uint64_t seq, std::string_view text) {
  Packet p{seq, Bytes(40, static_cast<uint8_t>(seq)), Bytes(text.begin(), text.end()), Bytes(16)};
  EXPECT_TRUE(c->Seal(seq, p.header, p.payload, p.tag).ok());
  return p;
}
Status OpenOne(SecureChannel* c, Packet p, std::string* out = nullptr) {
  Status s = c->Open(p.seq, p.header, p.payload, p.tag);
  if (out) *out = std::string(p.payload.begin(), p.payload.end());
  return s;
}

TEST(SecureChannel, RoundTripsInBothDirectionsAndHidesPayload) {
  Pair p = MakePair();
  Packet a = SealOne(p.client.get(), 0, "write block 7");
  EXPECT_EQ(std::string(a.payload.begin(), a.payload.end()).find("block"), std::string::npos);
  std::string got;
  ASSERT_TRUE(OpenOne(p.server.get(), a, &got).ok());
  EXPECT_EQ(got, "write block 7");
  Packet b = SealOne(p.server.get(), 0, "ok");
  ASSERT_TRUE(OpenOne(p.client.get(), b, &got).ok());
  EXPECT_EQ(got, "ok");
  EXPECT_EQ(p.client->verify_key().size(), 32u);
}

TEST(SecureChannel, ModifiedPayloadHeaderOrTagIsRejected) {
  Pair p = MakePair();
  Packet a = SealOne(p.client.get(), 1, "payload bytes");
  for (int field = 0; field < 4; ++field) {
    Packet m = a;
    switch (field) {
      case 0:
        m.payload[2] ^= 1;
        break;
      case 1:
        m.header[5] ^= 0x40;
        break;
      case 2:
        m.tag[0] ^= 1;
        break;
      case 3:
        m.seq = 2;
        break;  // sequence number is part of the nonce
    }
    EXPECT_EQ(OpenOne(p.server.get(), m).code(), StatusCode::kIntegrityViolation) << field;
  }
  EXPECT_TRUE(OpenOne(p.server.get(), a).ok());
  EXPECT_EQ(p.server->stats().auth_failures, 4u);
}

TEST(SecureChannel, ReplayedPacketIsRejected) {
  Pair p = MakePair();
  Packet a = SealOne(p.client.get(), 5, "x");
  ASSERT_TRUE(OpenOne(p.server.get(), a).ok());
  EXPECT_EQ(OpenOne(p.server.get(), a).code(), StatusCode::kIntegrityViolation);
  EXPECT_EQ(p.server->stats().replays_rejected, 1u);
}

TEST(SecureChannel, ReorderingWithinWindowIsAcceptedOnceAndTooOldIsRejected) {
  Pair p = MakePair();
  std::vector<Packet> pkts;
  for (uint64_t s = 0; s < 2000; ++s) pkts.push_back(SealOne(p.client.get(), s, "data"));
  std::mt19937_64 rng(7);
  std::shuffle(pkts.begin() + 1500, pkts.end(), rng);
  for (size_t i = 1500; i < 2000; ++i) ASSERT_TRUE(OpenOne(p.server.get(), pkts[i]).ok()) << i;
  for (size_t i = 1500; i < 2000; ++i) {
    EXPECT_EQ(OpenOne(p.server.get(), pkts[i]).code(), StatusCode::kIntegrityViolation);
  }
  // Seq 100 is more than the 1024-packet window behind 1999.
  EXPECT_EQ(OpenOne(p.server.get(), pkts[100]).code(), StatusCode::kIntegrityViolation);
  // Seq 1200 is inside the window and never seen: accepted once.
  EXPECT_TRUE(OpenOne(p.server.get(), pkts[1200]).ok());
  EXPECT_EQ(OpenOne(p.server.get(), pkts[1200]).code(), StatusCode::kIntegrityViolation);
}

TEST(SecureChannel, SwappedHeadersBetweenPacketsAreRejected) {
  Pair p = MakePair();
  Packet a = SealOne(p.client.get(), 10, "first");
  Packet b = SealOne(p.client.get(), 11, "second");
  std::swap(a.header, b.header);
  EXPECT_EQ(OpenOne(p.server.get(), a).code(), StatusCode::kIntegrityViolation);
  EXPECT_EQ(OpenOne(p.server.get(), b).code(), StatusCode::kIntegrityViolation);
}

TEST(SecureChannel, PacketReflectedBackToItsSenderIsRejected) {
  Pair p = MakePair();
  Packet a = SealOne(p.client.get(), 3, "to server");
  EXPECT_EQ(OpenOne(p.client.get(), a).code(), StatusCode::kIntegrityViolation);
}

TEST(SecureChannel, OtherSessionKeysCannotOpen) {
  Pair p = MakePair();
  auto other = std::move(*SecureChannel::Create(ChannelRole::kServer, 42, Keys(9)));
  EXPECT_EQ(OpenOne(other.get(), SealOne(p.client.get(), 0, "x")).code(),
            StatusCode::kIntegrityViolation);
}

TEST(SecureChannel, SenderRefusesToReuseASequenceNumber) {
  Pair p = MakePair();
  SealOne(p.client.get(), 4, "a");
  Bytes payload(3), tag(16);
  EXPECT_EQ(p.client->Seal(4, {}, payload, tag).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(p.client->Seal(3, {}, payload, tag).code(), StatusCode::kFailedPrecondition);
  auto next = p.client->SealNext({}, payload, tag);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 5u);
}

TEST(SecureChannel, KeysRotateAtTheForcedThresholdAndOldEpochsAreErased) {
  ChannelOptions o;
  o.rekey_interval = 4;
  Pair p = MakePair(o);
  std::vector<Packet> pkts;
  for (uint64_t s = 0; s < 40; ++s) {
    pkts.push_back(SealOne(p.client.get(), s, "rotating"));
    std::string got;
    ASSERT_TRUE(OpenOne(p.server.get(), pkts.back(), &got).ok()) << s;
    EXPECT_EQ(got, "rotating");
  }
  EXPECT_EQ(p.client->send_epoch(), 9u);
  EXPECT_EQ(p.server->receive_epoch(), 9u);
  EXPECT_EQ(p.client->stats().send_rekeys, 9u);
  // The same seq sealed under epoch 0's key would differ from epoch 9's:
  // ciphertexts of the same plaintext in different epochs are unrelated.
  EXPECT_NE(pkts[0].payload, pkts[36].payload);
  // A late packet from an erased epoch is rejected even though it is
  // authentic and inside the replay window.
  Pair q = MakePair(o);
  Packet early = SealOne(q.client.get(), 1, "late");
  for (uint64_t s = 2; s < 20; ++s)
    ASSERT_TRUE(OpenOne(q.server.get(), SealOne(q.client.get(), s, "x")).ok());
  EXPECT_EQ(OpenOne(q.server.get(), early).code(), StatusCode::kIntegrityViolation);
}

TEST(SecureChannel, ReorderingAcrossOneRekeyBoundaryWorks) {
  ChannelOptions o;
  o.rekey_interval = 4;
  Pair p = MakePair(o);
  Packet a = SealOne(p.client.get(), 3, "epoch0");
  Packet b = SealOne(p.client.get(), 4, "epoch1");
  ASSERT_TRUE(OpenOne(p.server.get(), b).ok());
  ASSERT_TRUE(OpenOne(p.server.get(), a).ok());  // previous epoch still held
}

TEST(SecureChannel, ForgedFarFutureSequenceIsRejectedCheaply) {
  ChannelOptions o;
  o.rekey_interval = 4;
  Pair p = MakePair(o);
  Packet a = SealOne(p.client.get(), 0, "x");
  a.seq = 1ull << 62;
  EXPECT_EQ(OpenOne(p.server.get(), a).code(), StatusCode::kIntegrityViolation);
  EXPECT_EQ(p.server->receive_epoch(), 0u);
  Bytes payload(1), tag(16);
  EXPECT_EQ(p.client->Seal(1ull << 62, {}, payload, tag).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cosmos::sec
