// Tests of user-supplied region keys: wrapping, unwrapping, receipts and the
// per-region derivation.
#include "sec/user_key.h"

#include <gtest/gtest.h>

#include <string>

namespace cosmos::sec {
namespace {

TEST(UserKey, WrapsForOneSessionUseAndRegionOnly) {
  const Bytes wrap_key(32, 1), other_key(32, 2), material(kUserKeySize, 3);
  auto wrapped = WrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "vault", material);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  ASSERT_EQ(wrapped->size(), kWrappedUserKeySize);
  auto got = UnwrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "vault", *wrapped);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(ConstantTimeEqual(got->span(), material));
  EXPECT_EQ(UnwrapUserKey(other_key, UserKeyUse::kCreateRegion, "vault", *wrapped).status().code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(UnwrapUserKey(wrap_key, UserKeyUse::kRotateKey, "vault", *wrapped).status().code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(UnwrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "vaulT", *wrapped).status().code(),
            StatusCode::kIntegrityViolation);
  // Every single-bit change of the blob is caught; a wrong version or size
  // is refused as malformed.
  for (size_t i = 1; i < wrapped->size(); ++i) {
    Bytes bad = *wrapped;
    bad[i] ^= 0x80;
    EXPECT_EQ(UnwrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "vault", bad).status().code(),
              StatusCode::kIntegrityViolation)
        << "byte " << i;
  }
  Bytes bad_version = *wrapped;
  bad_version[0] = 2;
  EXPECT_EQ(
      UnwrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "vault", bad_version).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(UnwrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "vault",
                          ByteSpan(wrapped->data(), wrapped->size() - 1))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(WrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "vault", Bytes(31, 0)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(UserKey, TwoWrapsOfOneKeyDiffer) {
  const Bytes wrap_key(32, 1), material(kUserKeySize, 3);
  auto a = WrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "v", material);
  auto b = WrapUserKey(wrap_key, UserKeyUse::kCreateRegion, "v", material);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // fresh nonce per wrap
}

TEST(UserKey, ReceiptNamesSessionUseRegionEpochAndKey) {
  const Bytes k(32, 1), m(kUserKeySize, 3);
  const Digest r = UserKeyReceipt(k, UserKeyUse::kRotateKey, "v", 2, m);
  EXPECT_NE(r, UserKeyReceipt(Bytes(32, 9), UserKeyUse::kRotateKey, "v", 2, m));
  EXPECT_NE(r, UserKeyReceipt(k, UserKeyUse::kCreateRegion, "v", 2, m));
  EXPECT_NE(r, UserKeyReceipt(k, UserKeyUse::kRotateKey, "w", 2, m));
  EXPECT_NE(r, UserKeyReceipt(k, UserKeyUse::kRotateKey, "v", 3, m));
  EXPECT_NE(r, UserKeyReceipt(k, UserKeyUse::kRotateKey, "v", 2, Bytes(kUserKeySize, 4)));
}

TEST(UserKey, DerivedKeysDependOnSaltRegionAndEpoch) {
  const Bytes m(kUserKeySize, 3), salt(32, 4), salt2(32, 5);
  uint8_t a[32], b[32];
  ASSERT_TRUE(DeriveRegionKeyFromUserKey(m, salt, "pool/1", 1, a).ok());
  ASSERT_TRUE(DeriveRegionKeyFromUserKey(m, salt, "pool/1", 1, b).ok());
  EXPECT_EQ(Bytes(a, a + 32), Bytes(b, b + 32));
  ASSERT_TRUE(DeriveRegionKeyFromUserKey(m, salt2, "pool/1", 1, b).ok());
  EXPECT_NE(Bytes(a, a + 32), Bytes(b, b + 32));
  ASSERT_TRUE(DeriveRegionKeyFromUserKey(m, salt, "pool/2", 1, b).ok());
  EXPECT_NE(Bytes(a, a + 32), Bytes(b, b + 32));
  ASSERT_TRUE(DeriveRegionKeyFromUserKey(m, salt, "pool/1", 2, b).ok());
  EXPECT_NE(Bytes(a, a + 32), Bytes(b, b + 32));
  EXPECT_NE(Bytes(a, a + 32), m);
}

// Known answer: the wrap format as another AES-GCM implementation (Python's
// cryptography package) produces it; also the fuzz corpus seed.
TEST(UserKey, OpensAWrapMadeByAnotherImplementation) {
  const char* hex =
      "01000102030405060708090a0b42dbb32a475383132de8bfc6b80236a0bb66ecd442382d6b4c9439e0d48d37"
      "5f54ef09e779b5fd479c00782eb20bff59";
  Bytes blob;
  for (size_t i = 0; hex[i] != 0; i += 2) {
    blob.push_back(static_cast<uint8_t>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  }
  auto got = UnwrapUserKey(Bytes(32, 7), UserKeyUse::kCreateRegion, "fuzz", blob);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(ConstantTimeEqual(got->span(), Bytes(kUserKeySize, 0x5a)));
}

}  // namespace
}  // namespace cosmos::sec
