// Monotonic time helpers used for latency measurement and timeouts.
#pragma once

#include <cstdint>
#include <ctime>

namespace cosmos {

// Nanoseconds from CLOCK_MONOTONIC (vDSO, ~20 ns per call).
inline uint64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace cosmos
