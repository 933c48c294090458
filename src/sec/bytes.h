// Byte-buffer vocabulary of the security layer: owned buffers, spans, a
// bounds-checked little-endian reader/writer for strict parsers, and
// constant-time comparison / wiping helpers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "common/endian.h"

namespace cosmos::sec {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

// Views a string's characters as bytes (no copy).
inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Views std::byte buffers (the RPC and client APIs) as the uint8_t spans of
// this layer (no copy).
inline ByteSpan AsBytes(std::span<const std::byte> s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline MutableByteSpan AsMutableBytes(std::span<std::byte> s) {
  return MutableByteSpan(reinterpret_cast<uint8_t*>(s.data()), s.size());
}

// Compares two byte ranges in time independent of their contents (not of
// their lengths). Returns false for different lengths.
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

// Overwrites `buf` with zeros in a way the compiler cannot elide.
void SecureWipe(MutableByteSpan buf);

// Appends little-endian fields to a growing buffer (serializers).
class ByteWriter {
 public:
  explicit ByteWriter(Bytes* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Put(v); }
  void U32(uint32_t v) { Put(v); }
  void U64(uint64_t v) { Put(v); }
  void Raw(ByteSpan b) { out_->insert(out_->end(), b.begin(), b.end()); }

 private:
  template <typename T>
  void Put(T v) {
    uint8_t tmp[sizeof(T)];
    StoreLE<T>(tmp, v);
    out_->insert(out_->end(), tmp, tmp + sizeof(T));
  }
  Bytes* out_;
};

// Reads little-endian fields from untrusted bytes. Every read is bounds
// checked; after the first short read the reader is "failed" and all later
// reads return zeros, so parsers check ok() once at the end.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan in) : in_(in) {}
  uint8_t U8() { return Get<uint8_t>(); }
  uint16_t U16() { return Get<uint16_t>(); }
  uint32_t U32() { return Get<uint32_t>(); }
  uint64_t U64() { return Get<uint64_t>(); }
  // Copies exactly out.size() bytes, or fails.
  void Raw(MutableByteSpan out) {
    if (!Need(out.size())) {
      std::memset(out.data(), 0, out.size());
      return;
    }
    std::memcpy(out.data(), in_.data() + pos_, out.size());
    pos_ += out.size();
  }
  // Returns a view of the next n bytes (empty on failure).
  ByteSpan View(size_t n) {
    if (!Need(n)) return {};
    ByteSpan v = in_.subspan(pos_, n);
    pos_ += n;
    return v;
  }
  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  size_t position() const { return pos_; }
  // True when every byte was consumed without a short read.
  bool AtEndOk() const { return ok_ && pos_ == in_.size(); }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  template <typename T>
  T Get() {
    if (!Need(sizeof(T))) return 0;
    T v = LoadLE<T>(in_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  ByteSpan in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace cosmos::sec
