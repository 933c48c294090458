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

namespace cosmos::sec {
namespace {

TEST(SealerSubkeys, ANewSubkeyIsDrawnBeforeOneKeySeesTooManyNonces) {
  auto key = DeriveSealingKey(Bytes(32, 7), AsBytes("m"));
  ASSERT_TRUE(key.ok());
  auto sealer = std::move(*Sealer::Create(key->span()));
  EXPECT_EQ(sealer->subkeys_drawn(), 1u);
  auto first = sealer->Seal("p", 1, {}, AsBytes("first"));
  ASSERT_TRUE(first.ok());
  for (uint64_t i = 1; i < kSealsPerSubkey; ++i) {
    ASSERT_TRUE(sealer->Seal("p", 1, {}, AsBytes("x")).ok());
  }
  EXPECT_EQ(sealer->subkeys_drawn(), 1u);
  EXPECT_EQ(sealer->seals_under_current_subkey(), kSealsPerSubkey);
  auto next = sealer->Seal("p", 1, {}, AsBytes("next"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(sealer->subkeys_drawn(), 2u);
  // Blobs of both sub-keys open (the salt names the sub-key), in any order.
  auto a = sealer->Unseal("p", 1, {}, *first);
  auto b = sealer->Unseal("p", 1, {}, *next);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(std::string(a->begin(), a->end()), "first");
  EXPECT_EQ(std::string(b->begin(), b->end()), "next");
  // The salts differ: the two blobs are under different keys.
  auto va = ParseSealedBlob(*first), vb = ParseSealedBlob(*next);
  ASSERT_TRUE(va.ok() && vb.ok());
  EXPECT_FALSE(std::equal(va->salt.begin(), va->salt.end(), vb->salt.begin()));
  // A flipped salt bit derives another key: authentication fails.
  Bytes bad = *next;
  bad[12] ^= 1;
  EXPECT_EQ(sealer->Unseal("p", 1, {}, bad).status().code(), StatusCode::kIntegrityViolation);
}

}  // namespace
}  // namespace cosmos::sec
