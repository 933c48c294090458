// Helpers shared by every cosmos-kv command handler: Redis's argument
// parsers (integers, floats), case-insensitive names, number formatting and
// the RESP errors for store failures. One definition of each rule.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cosmos/status.h"
#include "kv/log_format.h"

namespace cosmos::kv {

inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kSyntax = "ERR syntax error";
inline constexpr std::string_view kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// ASCII lower-case copy.
std::string Lower(std::string_view s);
// Redis string2ll: optional '-', digits, no leading zeros, spaces or '+'.
// Returns false if `s` is not exactly a 64-bit integer.
bool ParseInt64(std::string_view s, int64_t* v);
// Unsigned variant (cursors): digits only.
bool ParseUint64(std::string_view s, uint64_t* v);
// Redis string2d: a complete double ("inf", "-inf", "+inf" included), no
// spaces, never NaN. Returns false otherwise.
bool ParseDouble(std::string_view s, double* v);
// Redis string2ld for INCRBYFLOAT/HINCRBYFLOAT: like ParseDouble in long
// double precision; infinities are rejected.
bool ParseLongDouble(std::string_view s, long double* v);
// Redis's reply text for a double (RESP2 bulk): "inf", "-inf", else %.17g.
std::string FormatDouble(double d);
// Redis's human-friendly long double text (HINCRBYFLOAT, INCRBYFLOAT):
// %.17Lf without trailing zeros or a trailing point.
std::string FormatLongDouble(long double d);
// The TYPE reply for a value type ("string", "hash", "list", "set", "zset").
std::string_view TypeName(ValueType type);
// Appends the RESP error for a failed store call: -OOM when the log is full,
// -MISCONF after a storage failure, -ERR otherwise.
void AppendStoreError(std::string* out, const Status& s);

}  // namespace cosmos::kv
