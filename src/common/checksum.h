// Checksums for on-media and on-wire structures: XXH3-64 from libxxhash
// (fast, well-tested; not cryptographic: integrity against an adversary is
// the security layer's job, with AES-GCM and a hash tree).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cosmos {

// 64-bit XXH3 of `data`, with an optional seed (use distinct seeds for
// distinct structure types so a valid checksum of one is not valid for another).
uint64_t Checksum64(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t Checksum64(std::span<const std::byte> data, uint64_t seed = 0) {
  return Checksum64(data.data(), data.size(), seed);
}

// Streaming form for checksums over several discontiguous pieces.
class Checksum64Builder {
 public:
  explicit Checksum64Builder(uint64_t seed = 0);
  ~Checksum64Builder();
  Checksum64Builder(const Checksum64Builder&) = delete;
  Checksum64Builder& operator=(const Checksum64Builder&) = delete;
  void Update(const void* data, size_t size);
  uint64_t Finish() const;

 private:
  void* state_;  // XXH3_state_t, kept opaque so xxhash.h stays private
};

}  // namespace cosmos
