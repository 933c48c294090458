// Strict readers of untrusted JSON documents (etcd replies, cluster records):
// bounded size and nesting, typed field access that never throws, and errors
// that name the document and field at fault.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cosmos/result.h"

namespace cosmos::cluster::json {

using Json = nlohmann::json;

// Largest document accepted and deepest nesting (etcd replies nest 5 deep).
inline constexpr size_t kMaxDocumentBytes = 64u << 20;
inline constexpr int kMaxDepth = 32;

// Parses `text` as one JSON object. Corruption (naming `what`) when it is
// too large, too deeply nested, not JSON, or not an object. Never throws.
Result<Json> ParseObject(std::string_view text, std::string_view what);

// Typed field readers of an object `obj` (the caller checked is_object()).
// Each returns Corruption naming `what` and the field when the field has the
// wrong type or value; an absent optional field yields the stated default
// (proto3's JSON form omits fields that hold their zero value).

// A JSON string; absent: "" when optional, Corruption when required.
Result<std::string> String(const Json& obj, std::string_view field, std::string_view what,
                           bool required);
// A protobuf int64 as grpc-gateway writes it: a decimal string ("-1", "42").
// Absent: 0.
Result<int64_t> Int64String(const Json& obj, std::string_view field, std::string_view what);
// A JSON boolean; absent: false.
Result<bool> Bool(const Json& obj, std::string_view field, std::string_view what);
// A JSON non-negative integer number (not a string, not a float); required.
Result<uint64_t> Uint64Number(const Json& obj, std::string_view field, std::string_view what);
// A nested object; absent: Corruption when required, else a null Json.
Result<Json> Object(const Json& obj, std::string_view field, std::string_view what, bool required);
// A nested array; absent: an empty array.
Result<Json> Array(const Json& obj, std::string_view field, std::string_view what);

// Checks the "format" field of a versioned record: a number 1..newest.
// Corruption when missing or 0, FailedPrecondition when newer than `newest`
// (written by a newer build: this one must not guess at it).
Status RecordFormat(const Json& obj, uint64_t newest, std::string_view what);

// Parses a decimal int64 ("-12", "0"): no sign but a leading '-', no
// spaces, no leading '+', no overflow. Corruption naming `what` otherwise.
Result<int64_t> ParseInt64(std::string_view text, std::string_view what);

}  // namespace cosmos::cluster::json
