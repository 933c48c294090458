// Memory for secrets of the simulated enclave: page-aligned, mlock'ed (not
// swapped out), MADV_DONTDUMP (left out of core dumps), wiped on release.
// This hardens a normal process; it is not hardware isolation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cosmos/result.h"
#include "sec/bytes.h"

namespace cosmos::sec {

// A fixed-size secret buffer. Thread-safety: the object is not synchronised.
class LockedBuffer {
 public:
  // Maps `size` bytes (rounded up to pages), zero-filled. If mlock fails
  // (RLIMIT_MEMLOCK too low) the buffer is still usable and locked() is false;
  // the simulated enclave logs that. ResourceExhausted if mmap fails.
  static Result<std::unique_ptr<LockedBuffer>> Create(size_t size);
  ~LockedBuffer();
  LockedBuffer(const LockedBuffer&) = delete;
  LockedBuffer& operator=(const LockedBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  MutableByteSpan span() { return {data_, size_}; }
  ByteSpan span() const { return {data_, size_}; }
  // True when mlock succeeded.
  bool locked() const { return locked_; }
  // True when madvise(MADV_DONTDUMP) succeeded.
  bool dont_dump() const { return dont_dump_; }

 private:
  LockedBuffer() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
  bool locked_ = false;
  bool dont_dump_ = false;
};

}  // namespace cosmos::sec
