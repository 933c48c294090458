// Fuzzes the enclave's unwrapping of a user-supplied region key (bytes from a
// request): anything but an authentic wrap is refused as malformed
// (InvalidArgument) or unauthentic (IntegrityViolation), never a crash, and
// never yields key material.
#include <cstdint>
#include <cstdlib>

#include "sec/user_key.h"

using namespace cosmos::sec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Bytes wrap_key(32, 7);
  ByteSpan in(data, size);
  for (UserKeyUse use : {UserKeyUse::kCreateRegion, UserKeyUse::kRotateKey}) {
    auto got = UnwrapUserKey(wrap_key, use, "fuzz", in);
    if (got.ok()) {
      // Only a blob wrapped under this key for this use and name opens: the
      // corpus seed is one (create, "fuzz", material of 0x5a bytes).
      if (size != kWrappedUserKeySize) std::abort();
      continue;
    }
    const auto code = got.status().code();
    if (code != cosmos::StatusCode::kInvalidArgument &&
        code != cosmos::StatusCode::kIntegrityViolation) {
      std::abort();
    }
    if (code == cosmos::StatusCode::kInvalidArgument && size == kWrappedUserKeySize &&
        data[0] == kWrappedUserKeyVersion) {
      std::abort();  // a well-formed blob must reach authentication
    }
  }
  return 0;
}
