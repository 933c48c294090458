// Unit tests of the crypto wrappers against RFC/NIST vectors and misuse.
#include "sec/crypto.h"

#include <gtest/gtest.h>

#include <string>

namespace cosmos::sec {
namespace {

Bytes FromHex(std::string_view hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(Crypto, Sha256MatchesKnownVector) {
  Digest d = Sha256(AsBytes("abc"));
  EXPECT_EQ(Bytes(d.begin(), d.end()),
            FromHex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  Sha256Hasher h;
  h.Update(AsBytes("a"));
  h.Update(AsBytes("bc"));
  EXPECT_EQ(h.Final(), d);
  h.Update(AsBytes("abc"));  // context is reusable after Final
  EXPECT_EQ(h.Final(), d);
}

TEST(Crypto, HmacSha256MatchesRfc4231Case2) {
  Digest d = HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"));
  EXPECT_EQ(Bytes(d.begin(), d.end()),
            FromHex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
  HmacSha256Hasher h(AsBytes("Jefe"));
  h.Update(AsBytes("what do ya want "));
  h.Update(AsBytes("for nothing?"));
  EXPECT_EQ(h.Final(), d);
  h.Update(AsBytes("what do ya want for nothing?"));
  EXPECT_EQ(h.Final(), d);
}

TEST(Crypto, HkdfMatchesRfc5869Case1) {
  Bytes ikm(22, 0x0b);
  Bytes salt = FromHex("000102030405060708090a0b0c");
  Bytes info = FromHex("f0f1f2f3f4f5f6f7f8f9");
  Bytes okm(42);
  ASSERT_TRUE(HkdfSha256(ikm, salt, info, okm).ok());
  EXPECT_EQ(okm, FromHex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208"
                         "d5b887185865"));
  Bytes too_long(255 * 32 + 1);
  EXPECT_EQ(HkdfExpand(HkdfExtract(salt, ikm), info, too_long).code(),
            StatusCode::kInvalidArgument);
}

TEST(Crypto, AesGcmRoundTripsAndRejectsAnyModification) {
  Bytes key(32, 7);
  auto gcm = AesGcm::Create(key);
  ASSERT_TRUE(gcm.ok());
  GcmNonce nonce{};
  nonce[0] = 1;
  std::string msg = "persistent memory secret";
  Bytes ct(msg.size()), tag(16), back(msg.size());
  ASSERT_TRUE((*gcm)->Seal(nonce, AsBytes("hdr"), AsBytes(msg), ct, tag).ok());
  EXPECT_NE(std::string(ct.begin(), ct.end()), msg);
  ASSERT_TRUE((*gcm)->Open(nonce, AsBytes("hdr"), ct, tag, back).ok());
  EXPECT_EQ(std::string(back.begin(), back.end()), msg);

  Bytes bad = ct;
  bad[3] ^= 1;
  EXPECT_EQ((*gcm)->Open(nonce, AsBytes("hdr"), bad, tag, back).code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(back, Bytes(msg.size(), 0));  // no unauthenticated plaintext escapes
  EXPECT_EQ((*gcm)->Open(nonce, AsBytes("hdx"), ct, tag, back).code(),
            StatusCode::kIntegrityViolation);
  Bytes bad_tag = tag;
  bad_tag[15] ^= 0x80;
  EXPECT_EQ((*gcm)->Open(nonce, AsBytes("hdr"), ct, bad_tag, back).code(),
            StatusCode::kIntegrityViolation);
  GcmNonce other = nonce;
  other[11] = 9;
  EXPECT_EQ((*gcm)->Open(other, AsBytes("hdr"), ct, tag, back).code(),
            StatusCode::kIntegrityViolation);
  ASSERT_TRUE((*gcm)->Rekey(Bytes(32, 8)).ok());
  EXPECT_EQ((*gcm)->Open(nonce, AsBytes("hdr"), ct, tag, back).code(),
            StatusCode::kIntegrityViolation);
}

TEST(Crypto, AesGcmMatchesNistVectorAndWorksInPlace) {
  // NIST GCM test case 13 (256-bit zero key, zero IV, empty plaintext).
  auto gcm = AesGcm::Create(Bytes(32, 0));
  ASSERT_TRUE(gcm.ok());
  GcmNonce nonce{};
  Bytes tag(16);
  ASSERT_TRUE((*gcm)->Seal(nonce, {}, {}, {}, tag).ok());
  EXPECT_EQ(tag, FromHex("530f8afbc74536b9a963b4f1c4cb738b"));
  // Test case 14: one zero block.
  Bytes buf(16, 0);
  ASSERT_TRUE((*gcm)->Seal(nonce, {}, buf, buf, tag).ok());
  EXPECT_EQ(buf, FromHex("cea7403d4d606b6e074ec5d3baf39d18"));
  EXPECT_EQ(tag, FromHex("d0d1c8a799996bf0265b98b5d48ab919"));
  ASSERT_TRUE((*gcm)->Open(nonce, {}, buf, tag, buf).ok());
  EXPECT_EQ(buf, Bytes(16, 0));
}

TEST(Crypto, AesGcmRejectsBadSizes) {
  EXPECT_EQ(AesGcm::Create(Bytes(16)).status().code(), StatusCode::kInvalidArgument);
  auto gcm = AesGcm::Create(Bytes(32));
  Bytes tag(16), out(4);
  EXPECT_EQ((*gcm)->Seal(Bytes(8), {}, Bytes(4), out, tag).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*gcm)->Seal(Bytes(12), {}, Bytes(5), out, tag).code(), StatusCode::kInvalidArgument);
}

TEST(Crypto, X25519PartiesAgreeAndLowOrderKeyIsRejected) {
  auto a = GenerateX25519();
  auto b = GenerateX25519();
  ASSERT_TRUE(a.ok() && b.ok());
  auto s1 = X25519Agree(a->private_key.span(), b->public_key);
  auto s2 = X25519Agree(b->private_key.span(), a->public_key);
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(s1->bytes, s2->bytes);
  Bytes zero_point(32, 0);
  EXPECT_EQ(X25519Agree(a->private_key.span(), zero_point).status().code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(X25519Agree(a->private_key.span(), Bytes(31)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Crypto, Ed25519SignsVerifiesAndRejectsForgeries) {
  auto k = GenerateEd25519();
  ASSERT_TRUE(k.ok());
  auto sig = Ed25519Sign(k->seed.span(), AsBytes("transcript"));
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(Ed25519Verify(k->public_key, AsBytes("transcript"), *sig).ok());
  EXPECT_EQ(Ed25519Verify(k->public_key, AsBytes("transcripT"), *sig).code(),
            StatusCode::kIntegrityViolation);
  Ed25519Signature bad = *sig;
  bad[10] ^= 4;
  EXPECT_EQ(Ed25519Verify(k->public_key, AsBytes("transcript"), bad).code(),
            StatusCode::kIntegrityViolation);
  auto other = GenerateEd25519();
  EXPECT_EQ(Ed25519Verify(other->public_key, AsBytes("transcript"), *sig).code(),
            StatusCode::kIntegrityViolation);
  auto again = Ed25519FromSeed(k->seed.span());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_key, k->public_key);
}

TEST(Crypto, RandomBytesAreNotConstant) {
  Bytes a(32), b(32);
  ASSERT_TRUE(RandomBytes(a).ok());
  ASSERT_TRUE(RandomBytes(b).ok());
  EXPECT_NE(a, b);
}

TEST(Crypto, ConstantTimeEqualComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("ab")));
}

}  // namespace
}  // namespace cosmos::sec
