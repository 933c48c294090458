// In-memory forms of the Redis data types (hash, list, set, sorted set) and
// their whole-value encoding in kPutTyped log records (spec: docs/kv.md
// "Typed values"). Decoding parses bytes read back from the log, which a
// damaged or hostile medium may have produced: every length is checked.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cosmos/result.h"
#include "kv/log_format.h"

namespace cosmos::kv {

// A hash: fields in insertion order (as Redis's small listpack hashes reply),
// with an index for lookups. Invariant: pos_ maps each field to its slot.
class HashValue {
 public:
  // The value of `field`, nullptr if absent. Valid until the next mutation.
  const std::string* Find(std::string_view field) const;
  // Sets `field`; returns true if it was new.
  bool Set(std::string_view field, std::string_view value);
  // Removes `field`; returns true if it was present. Keeps the others' order.
  bool Erase(std::string_view field);
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
  std::unordered_map<std::string, size_t> pos_;
};

// A set: members in insertion order, with an index for membership.
class SetValue {
 public:
  bool Contains(std::string_view member) const { return pos_.count(std::string(member)) != 0; }
  // Adds `member`; returns true if it was new.
  bool Add(std::string_view member);
  // Removes `member`; returns true if it was present.
  bool Erase(std::string_view member);
  size_t size() const { return members_.size(); }
  const std::vector<std::string>& members() const { return members_; }

 private:
  std::vector<std::string> members_;
  std::unordered_map<std::string, size_t> pos_;
};

// A sorted set: members ordered by (score, member) as Redis orders them.
// Scores are never NaN.
class ZSetValue {
 public:
  // The score of `member`, nullptr if absent.
  const double* Score(std::string_view member) const;
  // Sets the score of `member` (adds it if absent); returns true if new.
  // REQUIRES: score is not NaN.
  bool Set(std::string_view member, double score);
  // Removes `member`; returns true if it was present.
  bool Erase(std::string_view member);
  size_t size() const { return scores_.size(); }
  // Members in ascending (score, member) order.
  const std::set<std::pair<double, std::string>>& ordered() const { return ordered_; }
  // 0-based rank of a present member in ascending order (linear time).
  size_t Rank(std::string_view member) const;

 private:
  std::unordered_map<std::string, double> scores_;
  std::set<std::pair<double, std::string>> ordered_;
};

using ListValue = std::deque<std::string>;

// Encoders: the complete kPutTyped value (TypedValueLayout header, then the
// elements). Never fail; element counts above 2^32 - 1 are a caller bug
// (checked).
std::string EncodeHash(const HashValue& hash);
std::string EncodeList(const ListValue& list);
std::string EncodeSet(const SetValue& set);
std::string EncodeZSet(const ZSetValue& zset);

// Decoders of a complete kPutTyped value. Errors: Corruption when the
// header's version or type does not match, a length runs past the end,
// bytes trail the last element, a field or member repeats, or a score is
// NaN. Never read outside `encoded`.
[[nodiscard]] Result<HashValue> DecodeHash(std::string_view encoded);
[[nodiscard]] Result<ListValue> DecodeList(std::string_view encoded);
[[nodiscard]] Result<SetValue> DecodeSet(std::string_view encoded);
[[nodiscard]] Result<ZSetValue> DecodeZSet(std::string_view encoded);

}  // namespace cosmos::kv
