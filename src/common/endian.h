// Little-endian load/store helpers for wire formats and on-media layouts. All
// COSMOS formats are little-endian; these compile to plain moves on x86-64.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace cosmos {

static_assert(std::endian::native == std::endian::little,
              "COSMOS formats are little-endian; big-endian hosts need byte swaps here");

template <typename T>
inline T LoadLE(const void* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
inline void StoreLE(void* p, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::memcpy(p, &v, sizeof(T));
}

}  // namespace cosmos
