// SipHash-2-4 and the stateless connect cookies built on it.
#include "rpc/connect_cookie.h"

#include <cstring>
#include <random>

#include "common/check.h"
#include "common/endian.h"

namespace cosmos::rpc {
namespace {

constexpr uint64_t kSecondNs = 1'000'000'000;

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = Rotl(v1, 13);
  v1 ^= v0;
  v0 = Rotl(v0, 32);
  v2 += v3;
  v3 = Rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = Rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = Rotl(v1, 17);
  v1 ^= v2;
  v2 = Rotl(v2, 32);
}

std::array<uint64_t, 2> RandomKey() {
  std::random_device rd;
  std::array<uint64_t, 2> k;
  for (uint64_t& w : k) w = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return k;
}

}  // namespace

uint64_t SipHash24(const std::array<uint64_t, 2>& key, std::span<const std::byte> data) {
  uint64_t v0 = 0x736f6d6570736575ull ^ key[0];
  uint64_t v1 = 0x646f72616e646f6dull ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ull ^ key[0];
  uint64_t v3 = 0x7465646279746573ull ^ key[1];
  const size_t n = data.size();
  const size_t full = n & ~size_t{7};
  for (size_t i = 0; i < full; i += 8) {
    const uint64_t m = LoadLE<uint64_t>(data.data() + i);
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(n & 0xff) << 56;
  for (size_t i = full; i < n; ++i) {
    last |= static_cast<uint64_t>(std::to_integer<uint8_t>(data[i])) << (8 * (i - full));
  }
  v3 ^= last;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) SipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

CookieJar::CookieJar(uint64_t lifetime_ns, uint64_t rotation_ns, uint64_t now_ns)
    : lifetime_ns_(lifetime_ns),
      rotation_ns_(rotation_ns),
      rotated_at_ns_(now_ns),
      current_(RandomKey()),
      previous_(RandomKey()) {
  COSMOS_CHECK(lifetime_ns > 0 && rotation_ns > 0);
}

void CookieJar::MaybeRotate(uint64_t now_ns) {
  if (now_ns - rotated_at_ns_ < rotation_ns_) return;
  // After a long pause both secrets are stale: replace both.
  previous_ = now_ns - rotated_at_ns_ >= 2 * rotation_ns_ ? RandomKey() : current_;
  current_ = RandomKey();
  rotated_at_ns_ = now_ns;
}

uint64_t CookieJar::Mac(const std::array<uint64_t, 2>& key, const CookieBinding& b,
                        uint32_t issued) const {
  // IPv4: [ip:4][port:2][epoch:4][session:4][issued:4]; IPv6: the same
  // with the 16 address bytes in front instead of the 4 (the lengths differ,
  // so a v4 and a v6 binding never share an input).
  std::byte in[34];
  size_t n = 0;
  if (b.from.v6) {
    std::memcpy(in, b.from.ip6.data(), 16);
    n = 16;
  } else {
    StoreLE<uint32_t>(in, b.from.ip);
    n = 4;
  }
  StoreLE<uint16_t>(in + n, b.from.port);
  StoreLE<uint32_t>(in + n + 2, b.client_epoch);
  StoreLE<uint32_t>(in + n + 6, b.client_session);
  StoreLE<uint32_t>(in + n + 10, issued);
  return SipHash24(key, std::span<const std::byte>(in, n + 14));
}

Cookie CookieJar::Make(const CookieBinding& b, uint64_t now_ns) {
  MaybeRotate(now_ns);
  const uint32_t issued = static_cast<uint32_t>(now_ns / kSecondNs);
  Cookie c{};
  StoreLE<uint32_t>(c.data(), issued);
  StoreLE<uint32_t>(c.data() + 4, 0);  // reserved
  StoreLE<uint64_t>(c.data() + 8, Mac(current_, b, issued));
  return c;
}

bool CookieJar::Verify(const CookieBinding& b, std::span<const std::byte> cookie, uint64_t now_ns) {
  if (cookie.size() != kCookieSize) return false;
  MaybeRotate(now_ns);
  const uint32_t issued = LoadLE<uint32_t>(cookie.data());
  const uint32_t now_s = static_cast<uint32_t>(now_ns / kSecondNs);
  if (issued > now_s) return false;
  // Issue times have one-second resolution: a cookie is accepted for up to
  // lifetime + 1 s.
  if (static_cast<uint64_t>(now_s - issued) * kSecondNs > lifetime_ns_) return false;
  if (LoadLE<uint32_t>(cookie.data() + 4) != 0) return false;
  const uint64_t mac = LoadLE<uint64_t>(cookie.data() + 8);
  return mac == Mac(current_, b, issued) || mac == Mac(previous_, b, issued);
}

}  // namespace cosmos::rpc
