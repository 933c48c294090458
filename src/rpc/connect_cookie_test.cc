// Tests of SipHash-2-4 (reference vectors) and of the connect cookies: bound
// to address, port and session fields, expiring, surviving one rotation.
#include "rpc/connect_cookie.h"

#include <gtest/gtest.h>

#include <vector>

namespace cosmos::rpc {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

std::array<uint64_t, 2> ReferenceKey() { return {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}; }

std::vector<std::byte> Counting(size_t n) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i);
  return v;
}

TEST(SipHash24, MatchesTheReferenceVectors) {
  // Key 00..0f and message 00..(n-1), from the SipHash paper and its
  // reference implementation's vectors.
  EXPECT_EQ(SipHash24(ReferenceKey(), Counting(0)), 0x726fdb47dd0e0e31ull);
  EXPECT_EQ(SipHash24(ReferenceKey(), Counting(8)), 0x93f5f5799a932462ull);
  EXPECT_EQ(SipHash24(ReferenceKey(), Counting(15)), 0xa129ca6149be45e5ull);
}

TEST(CookieJar, AcceptsItsCookieForTheSameBindingOnly) {
  CookieJar jar(4 * kSecond, 30 * kSecond, 100 * kSecond);
  const CookieBinding b{{0x7f000001, 4000}, 77, 5};
  const Cookie c = jar.Make(b, 100 * kSecond);
  EXPECT_TRUE(jar.Verify(b, c, 101 * kSecond));
  CookieBinding other = b;
  other.from.port = 4001;
  EXPECT_FALSE(jar.Verify(other, c, 101 * kSecond));
  other = b;
  other.from.ip = 0x7f000002;
  EXPECT_FALSE(jar.Verify(other, c, 101 * kSecond));
  other = b;
  other.client_epoch = 78;
  EXPECT_FALSE(jar.Verify(other, c, 101 * kSecond));
  other = b;
  other.client_session = 6;
  EXPECT_FALSE(jar.Verify(other, c, 101 * kSecond));
  Cookie flipped = c;
  flipped[12] ^= std::byte{1};
  EXPECT_FALSE(jar.Verify(b, flipped, 101 * kSecond));
  Cookie zero{};
  EXPECT_FALSE(jar.Verify(b, zero, 101 * kSecond));
  EXPECT_FALSE(jar.Verify(b, std::span<const std::byte>(c).first(8), 101 * kSecond));
}

TEST(CookieJar, BindsIpv6SourcesByTheWholeAddress) {
  CookieJar jar(4 * kSecond, 30 * kSecond, 100 * kSecond);
  auto a = NetAddress::Parse("[2001:db8::1]:4000");
  ASSERT_TRUE(a.ok());
  const CookieBinding b{*a, 77, 5};
  const Cookie c = jar.Make(b, 100 * kSecond);
  EXPECT_TRUE(jar.Verify(b, c, 101 * kSecond));
  for (size_t i = 0; i < 16; ++i) {
    CookieBinding other = b;
    other.from.ip6[i] ^= 1;
    EXPECT_FALSE(jar.Verify(other, c, 101 * kSecond)) << "byte " << i;
  }
  CookieBinding other = b;
  other.from.port = 4001;
  EXPECT_FALSE(jar.Verify(other, c, 101 * kSecond));
  // Not valid for an IPv4 source either.
  EXPECT_FALSE(jar.Verify({{0x7f000001, 4000}, 77, 5}, c, 101 * kSecond));
}

TEST(CookieJar, CookiesExpireAndAreNotValidBeforeTheirIssueTime) {
  CookieJar jar(4 * kSecond, 30 * kSecond, 100 * kSecond);
  const CookieBinding b{{0x0a000001, 9}, 1, 2};
  const Cookie c = jar.Make(b, 100 * kSecond);
  EXPECT_TRUE(jar.Verify(b, c, 104 * kSecond));
  EXPECT_FALSE(jar.Verify(b, c, 106 * kSecond));
  EXPECT_FALSE(jar.Verify(b, c, 99 * kSecond));
  // Moving the issue time forward (to extend the lifetime) breaks the MAC.
  Cookie later = c;
  later[0] = static_cast<std::byte>(std::to_integer<uint8_t>(later[0]) + 5);
  EXPECT_FALSE(jar.Verify(b, later, 106 * kSecond));
}

TEST(CookieJar, SurvivesOneSecretRotationNotTwo) {
  CookieJar jar(100 * kSecond, 10 * kSecond, 0);
  const CookieBinding b{{0x0a000001, 9}, 1, 2};
  const Cookie c = jar.Make(b, 9 * kSecond);
  EXPECT_TRUE(jar.Verify(b, c, 12 * kSecond));   // rotated once: previous secret
  EXPECT_FALSE(jar.Verify(b, c, 23 * kSecond));  // rotated twice: gone
  // Two jars never share secrets.
  CookieJar other(100 * kSecond, 10 * kSecond, 0);
  EXPECT_FALSE(other.Verify(b, jar.Make(b, 23 * kSecond), 23 * kSecond));
}

}  // namespace
}  // namespace cosmos::rpc
