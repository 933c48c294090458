// Unit tests of sealing: round trip, binding to purpose/AAD/key, tamper.
#include "sec/sealing.h"

#include <gtest/gtest.h>

namespace cosmos::sec {
namespace {

std::unique_ptr<Sealer> MakeSealer(uint8_t secret_byte, std::string_view measurement = "m1") {
  auto key = DeriveSealingKey(Bytes(32, secret_byte), AsBytes(measurement));
  EXPECT_TRUE(key.ok());
  auto s = Sealer::Create(key->span());
  EXPECT_TRUE(s.ok());
  return std::move(*s);
}

TEST(Sealing, RoundTripsAndHidesPlaintext) {
  auto s = MakeSealer(1);
  const std::string secret = "region key material 0123456789";
  auto blob = s->Seal("cosmos.test", 1, AsBytes("region-7"), AsBytes(secret));
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(blob->size(), secret.size() + kSealedOverhead);
  EXPECT_EQ(std::string(blob->begin(), blob->end()).find(secret), std::string::npos);
  auto back = s->Unseal("cosmos.test", 1, AsBytes("region-7"), *blob);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::string(back->begin(), back->end()), secret);
}

TEST(Sealing, RejectsWrongPurposeVersionAadKeyOrMeasurement) {
  auto s = MakeSealer(1);
  auto blob = s->Seal("cosmos.test", 1, AsBytes("a"), AsBytes("x"));
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(s->Unseal("cosmos.other", 1, AsBytes("a"), *blob).status().code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(s->Unseal("cosmos.test", 2, AsBytes("a"), *blob).status().code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(s->Unseal("cosmos.test", 1, AsBytes("b"), *blob).status().code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(MakeSealer(2)->Unseal("cosmos.test", 1, AsBytes("a"), *blob).status().code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(MakeSealer(1, "m2")->Unseal("cosmos.test", 1, AsBytes("a"), *blob).status().code(),
            StatusCode::kIntegrityViolation);
}

TEST(Sealing, EveryBitFlipAndTruncationIsAnIntegrityViolation) {
  auto s = MakeSealer(3);
  auto blob = s->Seal("p", 1, {}, AsBytes("hello sealed world"));
  ASSERT_TRUE(blob.ok());
  for (size_t i = 0; i < blob->size() * 8; ++i) {
    Bytes b = *blob;
    b[i / 8] ^= static_cast<uint8_t>(1u << (i % 8));
    EXPECT_EQ(s->Unseal("p", 1, {}, b).status().code(), StatusCode::kIntegrityViolation) << i;
  }
  for (size_t n = 0; n < blob->size(); ++n) {
    EXPECT_EQ(s->Unseal("p", 1, {}, ByteSpan(blob->data(), n)).status().code(),
              StatusCode::kIntegrityViolation);
  }
  Bytes longer = *blob;
  longer.push_back(0);
  EXPECT_EQ(s->Unseal("p", 1, {}, longer).status().code(), StatusCode::kIntegrityViolation);
}

TEST(Sealing, ParserRejectsMalformedHeaders) {
  EXPECT_EQ(ParseSealedBlob({}).status().code(), StatusCode::kCorruption);
  Bytes b(kSealedOverhead, 0);
  EXPECT_EQ(ParseSealedBlob(b).status().code(), StatusCode::kCorruption);  // bad magic
}

TEST(Sealing, SealingKeyNeedsA32ByteSecret) {
  EXPECT_EQ(DeriveSealingKey(Bytes(16), {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cosmos::sec
