// Tests of key files and access lists.
#include "sec/key_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "sec/access_list.h"

namespace cosmos::sec {
namespace {

std::string TempDir(const char* name) {
  auto d = std::filesystem::temp_directory_path() /
           ("cosmos_keys_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(d);
  return d.string();
}

TEST(KeyFiles, PlatformKeysAreGeneratedLoadableAndPrivate) {
  const std::string dir = TempDir("platform");
  ASSERT_TRUE(GeneratePlatformKeys(dir).ok());
  EXPECT_EQ(GeneratePlatformKeys(dir).code(), StatusCode::kAlreadyExists);
  auto kp = LoadSigningKey(dir + "/platform.key", KeyKind::kPlatformPrivate);
  ASSERT_TRUE(kp.ok());
  auto policy = LoadAttestationPolicy(dir + "/platform.pub", dir + "/measurement");
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->platform_public_key, kp->public_key);
  EXPECT_EQ(policy->expected_measurement, SimulatedMeasurement(kSimulatedEnclaveIdentity));
  struct stat st;
  ASSERT_EQ(::stat((dir + "/platform.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir + "/sealing.secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::filesystem::remove_all(dir);
}

TEST(KeyFiles, ClientCredentialsRoundTrip) {
  const std::string dir = TempDir("client");
  ASSERT_TRUE(GenerateClientCredentials(dir, "alice").ok());
  auto kp = LoadSigningKey(dir + "/alice.key", KeyKind::kClientPrivate);
  auto pub = LoadPublicKey(dir + "/alice.pub", KeyKind::kClientPublic);
  ASSERT_TRUE(kp.ok() && pub.ok());
  EXPECT_EQ(kp->public_key, *pub);
  EXPECT_EQ(GenerateClientCredentials(dir, "../x").code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST(KeyFiles, ParserIsStrictAboutKindAndFormat) {
  Bytes key(32, 0xab);
  const std::string text = FormatKeyFile(KeyKind::kClientPublic, key);
  EXPECT_EQ(*ParseKeyFile(text, KeyKind::kClientPublic), key);
  EXPECT_EQ(ParseKeyFile(text, KeyKind::kPlatformPublic).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseKeyFile(text + "x", KeyKind::kClientPublic).status().code(),
            StatusCode::kCorruption);
  std::string upper = text;
  upper[upper.size() - 2] = 'G';
  EXPECT_EQ(ParseKeyFile(upper, KeyKind::kClientPublic).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseKeyFile("", KeyKind::kClientPublic).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadKeyFile("/nonexistent/key", KeyKind::kClientPublic).status().code(),
            StatusCode::kNotFound);
}

TEST(AccessList, GrantsCheckAndRoundTrip) {
  Ed25519PublicKey a{}, b{}, c{};
  a[0] = 1;
  b[0] = 2;
  c[0] = 3;
  AccessList l;
  ASSERT_TRUE(l.Grant(a, kRightRead | kRightWrite | kRightAdmin).ok());
  ASSERT_TRUE(l.Grant(b, kRightRead).ok());
  EXPECT_TRUE(l.Check(b, kRightRead).ok());
  EXPECT_EQ(l.Check(b, kRightWrite).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(l.Check(c, kRightRead).code(), StatusCode::kPermissionDenied);
  auto back = AccessList::Parse(l.Serialize());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->RightsOf(a), 7);
  EXPECT_EQ(back->RightsOf(b), kRightRead);
  ASSERT_TRUE(l.Grant(b, 0).ok());
  EXPECT_EQ(l.size(), 1u);
}

TEST(AccessList, FourteenEntriesFitIn256BytesAndNoMore) {
  AccessList l;
  for (int i = 0; i < 14; ++i) {
    Ed25519PublicKey k{};
    k[0] = static_cast<uint8_t>(i);
    ASSERT_TRUE(l.Grant(k, kRightRead).ok());
  }
  EXPECT_LE(l.Serialize().size(), 256u);
  Ed25519PublicKey extra{};
  extra[1] = 1;
  EXPECT_EQ(l.Grant(extra, kRightRead).code(), StatusCode::kResourceExhausted);
}

TEST(AccessList, ParserRejectsMalformedBlobs) {
  EXPECT_EQ(AccessList::Parse({}).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(AccessList::Parse(Bytes{2, 0}).status().code(), StatusCode::kCorruption);
  Bytes one{1, 1};
  one.insert(one.end(), 16, 0);
  one.push_back(0);  // rights 0 is not a valid entry
  EXPECT_EQ(AccessList::Parse(one).status().code(), StatusCode::kCorruption);
  Bytes dup{1, 2};
  for (int i = 0; i < 2; ++i) {
    dup.insert(dup.end(), 16, 5);
    dup.push_back(1);
  }
  EXPECT_EQ(AccessList::Parse(dup).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace cosmos::sec
