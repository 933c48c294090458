// Fuzz target: untrusted bytes as the value of a typed log record, decoded
// as a whole value of each type (kPutTyped) and applied as a delta
// (kTypedDelta) to a small value of each type. Decoding must fail cleanly or
// yield a value that re-encodes to the same bytes (whole values are
// canonical, except sorted sets: see below); applying must fail cleanly or
// leave a value that round-trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kv/value_codec.h"

namespace {

using namespace cosmos::kv;

template <typename T>
void CheckRoundTrip(const T& v, std::string (*encode)(const T&),
                    cosmos::Result<T> (*decode)(std::string_view)) {
  const std::string e = encode(v);
  auto again = decode(e);
  if (!again.ok() || encode(*again) != e) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto h = DecodeHash(in); h.ok() && EncodeHash(*h) != in) __builtin_trap();
  if (auto l = DecodeList(in); l.ok() && EncodeList(*l) != in) __builtin_trap();
  if (auto s = DecodeSet(in); s.ok() && EncodeSet(*s) != in) __builtin_trap();
  if (auto z = DecodeZSet(in); z.ok()) {
    // Not canonical byte for byte: -0.0 and 0.0 compare equal, and members
    // re-encode in (score, member) order. The re-encoding must round-trip.
    CheckRoundTrip<ZSetValue>(*z, &EncodeZSet, &DecodeZSet);
  }
  HashValue h;
  h.Set("f", "v");
  if (ApplyDelta(in, &h).ok()) CheckRoundTrip<HashValue>(h, &EncodeHash, &DecodeHash);
  ListValue l = {"a", "b"};
  if (ApplyDelta(in, &l).ok()) CheckRoundTrip<ListValue>(l, &EncodeList, &DecodeList);
  SetValue s;
  s.Add("m");
  if (ApplyDelta(in, &s).ok()) CheckRoundTrip<SetValue>(s, &EncodeSet, &DecodeSet);
  ZSetValue z;
  z.Set("m", 1);
  if (ApplyDelta(in, &z).ok()) CheckRoundTrip<ZSetValue>(z, &EncodeZSet, &DecodeZSet);
  return 0;
}
