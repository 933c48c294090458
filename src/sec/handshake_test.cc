// Tests of attestation and the handshake: a good handshake yields matching
// channels; forged, replayed or mis-bound quotes, wrong platform keys or
// measurements, bad client signatures and unlisted clients are refused.
#include "sec/handshake.h"

#include <gtest/gtest.h>

namespace cosmos::sec {
namespace {

class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_ = std::move(*GenerateEd25519());
    client_ = std::move(*GenerateEd25519());
    measurement_ = SimulatedMeasurement(kSimulatedEnclaveIdentity);
    policy_.platform_public_key = platform_.public_key;
    policy_.expected_measurement = measurement_;
  }
  Result<ServerSession> Accept(ByteSpan hello) {
    return AcceptClientHello(hello, platform_, measurement_,
                             [this](const Ed25519PublicKey& k) { return k == client_.public_key; });
  }
  Ed25519KeyPair platform_, client_;
  Digest measurement_;
  AttestationPolicy policy_;
};

TEST_F(HandshakeTest, GoodHandshakeYieldsMatchingChannels) {
  auto hs = ClientHandshake::Start(client_, policy_);
  ASSERT_TRUE(hs.ok());
  EXPECT_EQ((*hs)->hello().size(), kClientHelloSize);
  auto server = Accept((*hs)->hello());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(server->server_hello.size(), kServerHelloSize);
  EXPECT_EQ(server->client_identity, client_.public_key);
  auto client = (*hs)->Finish(server->server_hello);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->session_id(), server->session_id);
  Bytes payload = {'h', 'i'}, tag(16);
  ASSERT_TRUE((*client)->Seal(0, AsBytes("hdr"), payload, tag).ok());
  ASSERT_TRUE(server->channel->Open(0, AsBytes("hdr"), payload, tag).ok());
  EXPECT_EQ(payload, Bytes({'h', 'i'}));
  EXPECT_TRUE(ConstantTimeEqual((*client)->verify_key(), server->channel->verify_key()));
}

TEST_F(HandshakeTest, ReplayedQuoteFromAnEarlierHandshakeIsRefused) {
  auto old_hs = ClientHandshake::Start(client_, policy_);
  auto old_server = Accept((*old_hs)->hello());
  ASSERT_TRUE(old_server.ok());
  auto hs = ClientHandshake::Start(client_, policy_);
  auto r = (*hs)->Finish(old_server->server_hello);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation);
}

TEST_F(HandshakeTest, EveryBitFlipInTheServerHelloIsRefused) {
  auto hs = ClientHandshake::Start(client_, policy_);
  auto server = Accept((*hs)->hello());
  ASSERT_TRUE(server.ok());
  for (size_t bit = 0; bit < server->server_hello.size() * 8; bit += 3) {
    Bytes m = server->server_hello;
    m[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    // The tampered reply must fail for the handshake it answers.
    auto r = (*hs)->Finish(m);
    ASSERT_FALSE(r.ok()) << bit;
    EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation) << bit;
  }
}

TEST_F(HandshakeTest, ForgedQuoteSignedByAnotherKeyIsRefused) {
  auto hs = ClientHandshake::Start(client_, policy_);
  Ed25519KeyPair attacker = std::move(*GenerateEd25519());
  auto forged = AcceptClientHello((*hs)->hello(), attacker, measurement_,
                                  [](const Ed25519PublicKey&) { return true; });
  ASSERT_TRUE(forged.ok());
  auto r = (*hs)->Finish(forged->server_hello);
  EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation);
}

TEST_F(HandshakeTest, WrongMeasurementIsRefused) {
  auto hs = ClientHandshake::Start(client_, policy_);
  auto other =
      AcceptClientHello((*hs)->hello(), platform_, SimulatedMeasurement("cosmos-sec-enclave/0/old"),
                        [](const Ed25519PublicKey&) { return true; });
  ASSERT_TRUE(other.ok());
  auto r = (*hs)->Finish(other->server_hello);
  EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation);
  EXPECT_NE(r.status().message().find("measurement"), std::string::npos);
}

TEST_F(HandshakeTest, ClientConfiguredWithWrongPlatformKeyRefuses) {
  AttestationPolicy wrong = policy_;
  wrong.platform_public_key = GenerateEd25519()->public_key;
  auto hs = ClientHandshake::Start(client_, wrong);
  auto server = Accept((*hs)->hello());
  ASSERT_TRUE(server.ok());
  EXPECT_EQ((*hs)->Finish(server->server_hello).status().code(), StatusCode::kIntegrityViolation);
}

TEST_F(HandshakeTest, ClientNotOnAllowListIsDenied) {
  Ed25519KeyPair stranger = std::move(*GenerateEd25519());
  auto hs = ClientHandshake::Start(stranger, policy_);
  EXPECT_EQ(Accept((*hs)->hello()).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(HandshakeTest, ClientHelloWithForgedIdentityOrModifiedFieldsIsRefused) {
  auto hs = ClientHandshake::Start(client_, policy_);
  for (size_t byte = 0; byte < kClientHelloSize; byte += 5) {
    Bytes m = (*hs)->hello();
    m[byte] ^= 0x10;
    auto r = Accept(m);
    ASSERT_FALSE(r.ok()) << byte;
    EXPECT_TRUE(r.status().code() == StatusCode::kIntegrityViolation ||
                r.status().code() == StatusCode::kPermissionDenied)
        << byte << " " << r.status();
  }
}

TEST_F(HandshakeTest, ParsersRejectWrongSizesAndVersions) {
  EXPECT_EQ(ParseClientHello(Bytes(kClientHelloSize - 1)).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseServerHello(Bytes(kServerHelloSize + 1)).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseQuote(Bytes(kQuoteSize)).status().code(), StatusCode::kCorruption);
  auto hs = ClientHandshake::Start(client_, policy_);
  Bytes m = (*hs)->hello();
  m[1] = 2;  // unknown version
  EXPECT_EQ(ParseClientHello(m).status().code(), StatusCode::kCorruption);
}

TEST(Attestation, QuoteRoundTripsAndVerifies) {
  Ed25519KeyPair platform = std::move(*GenerateEd25519());
  Quote q;
  q.measurement = SimulatedMeasurement("x");
  q.nonce.fill(3);
  q.report_data.fill(4);
  ASSERT_TRUE(SignQuote(platform, &q).ok());
  auto back = ParseQuote(SerializeQuote(q));
  ASSERT_TRUE(back.ok());
  AttestationPolicy p{platform.public_key, q.measurement};
  EXPECT_TRUE(VerifyQuote(*back, p, q.nonce, q.report_data).ok());
  std::array<uint8_t, 32> other_nonce{};
  EXPECT_EQ(VerifyQuote(*back, p, other_nonce, q.report_data).code(),
            StatusCode::kIntegrityViolation);
  EXPECT_NE(SimulatedMeasurement("a"), SimulatedMeasurement("b"));
}

}  // namespace
}  // namespace cosmos::sec
