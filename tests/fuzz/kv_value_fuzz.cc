// Fuzz target: untrusted bytes as the value of a typed (kPutTyped) log
// record, decoded as each of hash, list, set and sorted set. Decoding must
// fail cleanly or yield a value that re-encodes to the same bytes (the
// encoding is canonical) and decodes again to the same value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kv/value_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto h = cosmos::kv::DecodeHash(in); h.ok()) {
    if (cosmos::kv::EncodeHash(*h) != in) __builtin_trap();
  }
  if (auto l = cosmos::kv::DecodeList(in); l.ok()) {
    if (cosmos::kv::EncodeList(*l) != in) __builtin_trap();
  }
  if (auto s = cosmos::kv::DecodeSet(in); s.ok()) {
    if (cosmos::kv::EncodeSet(*s) != in) __builtin_trap();
  }
  if (auto z = cosmos::kv::DecodeZSet(in); z.ok()) {
    // Not canonical byte for byte: -0.0 and 0.0 compare equal, and members
    // re-encode in (score, member) order. Decoding the re-encoding must
    // give the same members and scores.
    auto again = cosmos::kv::DecodeZSet(cosmos::kv::EncodeZSet(*z));
    if (!again.ok() || again->ordered() != z->ordered()) __builtin_trap();
  }
  return 0;
}
