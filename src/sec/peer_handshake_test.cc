// Peer handshake between two enclaves: mutual quotes, trust list, and what a
// forged, replayed or foreign message gets.
#include "sec/peer_handshake.h"

#include <gtest/gtest.h>

namespace cosmos::sec {
namespace {

class PeerHandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = std::move(*GenerateEd25519());
    b_ = std::move(*GenerateEd25519());
    outsider_ = std::move(*GenerateEd25519());
    code_ = SimulatedMeasurement(kSimulatedEnclaveIdentity);
    trusted_.platform_public_key = a_.public_key;
    trusted_.more_platform_keys = {b_.public_key};
  }
  Ed25519KeyPair a_, b_, outsider_;
  Digest code_{};
  AttestationPolicy trusted_;
};

TEST_F(PeerHandshakeTest, BothEndsAgreeAndEachDirectionHasItsOwnKey) {
  auto init = PeerInitiator::Start(a_, code_, trusted_);
  ASSERT_TRUE(init.ok()) << init.status();
  EXPECT_EQ((*init)->hello().size(), kPeerHelloSize);
  auto accepted = AcceptPeerHello((*init)->hello(), b_, code_, trusted_);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->reply.size(), kPeerReplySize);
  EXPECT_EQ(accepted->peer_platform_key_id, PlatformKeyId(a_.public_key));
  uint64_t id = 0;
  auto mine = (*init)->Finish(accepted->reply, &id);
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_EQ(id, accepted->channel_id);

  Bytes header = {1, 2, 3}, tag(16);
  Bytes msg = {'w', 'r', 'i', 't', 'e'};
  ASSERT_TRUE((*mine)->Seal(1, header, msg, tag).ok());
  Bytes copy = msg;
  ASSERT_TRUE(accepted->channel->Open(1, header, msg, tag).ok());
  EXPECT_EQ(msg, Bytes({'w', 'r', 'i', 't', 'e'}));
  // Replayed: refused.
  EXPECT_EQ(accepted->channel->Open(1, header, copy, tag).code(), StatusCode::kIntegrityViolation);
  // The other direction.
  Bytes ack = {'o', 'k'};
  ASSERT_TRUE(accepted->channel->Seal(1, header, ack, tag).ok());
  ASSERT_TRUE((*mine)->Open(1, header, ack, tag).ok());
  EXPECT_EQ(ack, Bytes({'o', 'k'}));
}

TEST_F(PeerHandshakeTest, AnUntrustedPlatformIsRefusedByEitherSide) {
  // The initiator runs on an outsider platform: the responder refuses.
  auto init = PeerInitiator::Start(outsider_, code_, trusted_);
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(AcceptPeerHello((*init)->hello(), b_, code_, trusted_).status().code(),
            StatusCode::kIntegrityViolation);
  // The responder runs on an outsider platform: the initiator refuses.
  auto init2 = PeerInitiator::Start(a_, code_, trusted_);
  AttestationPolicy everyone = trusted_;
  everyone.more_platform_keys.push_back(outsider_.public_key);
  auto fake = AcceptPeerHello((*init2)->hello(), outsider_, code_, everyone);
  ASSERT_TRUE(fake.ok()) << fake.status();
  uint64_t id = 0;
  EXPECT_EQ((*init2)->Finish(fake->reply, &id).status().code(), StatusCode::kIntegrityViolation);
}

TEST_F(PeerHandshakeTest, OtherEnclaveCodeIsRefused) {
  const Digest other = SimulatedMeasurement("cosmos-sec-enclave/0/old");
  auto init = PeerInitiator::Start(a_, other, trusted_);
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(AcceptPeerHello((*init)->hello(), b_, code_, trusted_).status().code(),
            StatusCode::kIntegrityViolation);
  auto init2 = PeerInitiator::Start(a_, code_, trusted_);
  auto old = AcceptPeerHello((*init2)->hello(), b_, other, trusted_);
  // The old responder does not accept the new code either; a reply it would
  // have made for its own code is refused by the initiator.
  EXPECT_FALSE(old.ok());
}

TEST_F(PeerHandshakeTest, ARepliedHelloOfAnotherAttemptOrATamperedMessageIsRefused) {
  auto first = PeerInitiator::Start(a_, code_, trusted_);
  auto second = PeerInitiator::Start(a_, code_, trusted_);
  auto reply = AcceptPeerHello((*first)->hello(), b_, code_, trusted_);
  ASSERT_TRUE(reply.ok());
  uint64_t id = 0;
  // A reply made for another hello (a replay) does not finish this attempt.
  EXPECT_EQ((*second)->Finish(reply->reply, &id).status().code(), StatusCode::kIntegrityViolation);
  // Any flipped bit of the reply is refused.
  for (size_t i = 0; i < reply->reply.size(); i += 7) {
    auto attempt = PeerInitiator::Start(a_, code_, trusted_);
    auto r = AcceptPeerHello((*attempt)->hello(), b_, code_, trusted_);
    ASSERT_TRUE(r.ok());
    Bytes bad = r->reply;
    bad[i] ^= 0x01;
    EXPECT_FALSE((*attempt)->Finish(bad, &id).ok()) << i;
  }
  Bytes hello = (*first)->hello();
  for (size_t i = 0; i < hello.size(); i += 5) {
    Bytes bad = hello;
    bad[i] ^= 0x80;
    EXPECT_FALSE(AcceptPeerHello(bad, b_, code_, trusted_).ok()) << i;
  }
  EXPECT_FALSE(AcceptPeerHello(Bytes(hello.begin(), hello.end() - 1), b_, code_, trusted_).ok());
}

TEST_F(PeerHandshakeTest, KeysDependOnTheWholeTranscript) {
  Bytes secret(32, 7), hello(10, 1), reply(10, 2);
  auto k1 = DerivePeerKeys(secret, hello, reply);
  reply[3] = 9;
  auto k2 = DerivePeerKeys(secret, hello, reply);
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_NE(
      std::vector<uint8_t>(k1->client_to_server.span().begin(), k1->client_to_server.span().end()),
      std::vector<uint8_t>(k2->client_to_server.span().begin(), k2->client_to_server.span().end()));
  EXPECT_NE(
      std::vector<uint8_t>(k1->client_to_server.span().begin(), k1->client_to_server.span().end()),
      std::vector<uint8_t>(k1->server_to_client.span().begin(), k1->server_to_client.span().end()));
}

}  // namespace
}  // namespace cosmos::sec
