// The one size grammar of every COSMOS binary and config file: a decimal
// byte count with an optional binary unit ("4096", "64K", "64M", "64MiB",
// "64mb", "2G", "1T"). docs/operations.md "Size units" documents it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cosmos/result.h"

namespace cosmos {

// Parses `text` as a size in bytes. Grammar (case-insensitive, no spaces):
// DIGITS [UNIT], UNIT one of B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB,
// TiB. Every unit is binary (K = KB = KiB = 1024 bytes; note Redis's "1m" is
// 10^6, ours is 2^20). A bare number is bytes.
// Errors (InvalidArgument, the same text in every binary): empty text, a sign
// or other non-digit start, an unknown unit, or a value above 2^64-1.
// Thread-safe (pure function).
[[nodiscard]] Result<uint64_t> ParseSize(std::string_view text);

// Renders `bytes` in the grammar ParseSize accepts, exactly: the largest unit
// that divides it ("64M", "1536K", "4097"). ParseSize(FormatSize(n)) == n.
std::string FormatSize(uint64_t bytes);

}  // namespace cosmos
