// Stateless connect cookies: a server proves that a connecting client receives
// at its source address before it reserves anything for the connect (the
// scheme of DTLS HelloVerifyRequest and TCP SYN cookies; docs/rpc.md).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "rpc/transport.h"

namespace cosmos::rpc {

// Bytes of a cookie on the wire (ConnectRequestBody::cookie, ConnectCookie payload).
inline constexpr size_t kCookieSize = 16;
using Cookie = std::array<std::byte, kCookieSize>;

// SipHash-2-4 (Aumasson and Bernstein) of `data` under the 128-bit `key`: a
// keyed pseudo-random function with a 64-bit output, the MAC of the Linux
// kernel's SYN cookies. Pinned by the reference test vectors in the unit test.
uint64_t SipHash24(const std::array<uint64_t, 2>& key, std::span<const std::byte> data);

// What a cookie is bound to: the source address and port the connect came
// from and the client's session identity (endpoint epoch, session number).
struct CookieBinding {
  NetAddress from;
  uint32_t client_epoch = 0;
  uint32_t client_session = 0;
};

// Makes and checks cookies: issue time (coarse, seconds of the monotonic
// clock) followed by SipHash-2-4 over the binding and the issue time under a
// secret that is replaced every `rotation_ns` (the previous secret is kept
// for one more period). A cookie is valid for `lifetime_ns` after issue and
// only for the binding it was made for; a replay with other session fields
// or from another address fails. Nothing is stored per cookie.
// Thread-safety: one instance per endpoint thread.
class CookieJar {
 public:
  // Secrets from std::random_device. REQUIRES: lifetime_ns > 0, rotation_ns > 0.
  CookieJar(uint64_t lifetime_ns, uint64_t rotation_ns, uint64_t now_ns);

  // The cookie for `b`, issued at `now_ns` (rotates the secret when due).
  Cookie Make(const CookieBinding& b, uint64_t now_ns);
  // True if `cookie` was made by this jar for `b`, at most lifetime_ns ago,
  // under the current or the previous secret.
  bool Verify(const CookieBinding& b, std::span<const std::byte> cookie, uint64_t now_ns);

 private:
  void MaybeRotate(uint64_t now_ns);
  uint64_t Mac(const std::array<uint64_t, 2>& key, const CookieBinding& b, uint32_t issued) const;

  uint64_t lifetime_ns_;
  uint64_t rotation_ns_;
  uint64_t rotated_at_ns_;
  std::array<uint64_t, 2> current_{};
  std::array<uint64_t, 2> previous_{};
};

}  // namespace cosmos::rpc
