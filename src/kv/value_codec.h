// In-memory forms of the Redis data types (hash, list, set, sorted set),
// their whole-value encoding in kPutTyped log records and their delta
// encoding in kTypedDelta records (spec: docs/kv.md "Typed values").
// Mutators record what they change in a DeltaJournal, so a command can log
// only its change. Decoding parses bytes read back from the log, which a
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

// The changes made to a value since it was decoded (or the journal was
// cleared), as delta operations. A change no operation expresses (LSET,
// LREM, ...) invalidates the journal: the value must then be written whole.
class DeltaJournal {
 public:
  // Appends an operation: opcode, then each string length-prefixed.
  void Add(uint8_t opcode, std::string_view a);
  void Add(uint8_t opcode, std::string_view a, std::string_view b);
  // Opcode, the score's bits (u64 LE), then the member length-prefixed.
  void AddScored(uint8_t opcode, double score, std::string_view member);
  void AddBare(uint8_t opcode);
  void Invalidate() { valid_ = false; }
  void Clear() {
    ops_ = 0;
    bytes_.clear();
    valid_ = true;
  }
  bool valid() const { return valid_; }
  uint32_t ops() const { return ops_; }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
  uint32_t ops_ = 0;
  bool valid_ = true;
};

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
  DeltaJournal& journal() { return journal_; }
  const DeltaJournal& journal() const { return journal_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
  std::unordered_map<std::string, size_t> pos_;
  DeltaJournal journal_;
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
  DeltaJournal& journal() { return journal_; }
  const DeltaJournal& journal() const { return journal_; }

 private:
  std::vector<std::string> members_;
  std::unordered_map<std::string, size_t> pos_;
  DeltaJournal journal_;
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
  DeltaJournal& journal() { return journal_; }
  const DeltaJournal& journal() const { return journal_; }

 private:
  std::unordered_map<std::string, double> scores_;
  std::set<std::pair<double, std::string>> ordered_;
  DeltaJournal journal_;
};

// A list: pushes and pops at either end are journaled; any other change
// goes through mutable_items(), which invalidates the journal.
class ListValue {
 public:
  ListValue() = default;
  ListValue(std::initializer_list<std::string> items) : items_(items) {}
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::string& operator[](size_t i) const { return items_[i]; }
  const std::string& front() const { return items_.front(); }
  const std::string& back() const { return items_.back(); }
  std::deque<std::string>::const_iterator begin() const { return items_.begin(); }
  std::deque<std::string>::const_iterator end() const { return items_.end(); }
  void PushFront(std::string_view v);
  void PushBack(std::string_view v);
  // REQUIRES: !empty().
  void PopFront();
  void PopBack();
  // For changes no delta operation expresses (the value is then written whole).
  std::deque<std::string>& mutable_items() {
    journal_.Invalidate();
    return items_;
  }
  bool operator==(const ListValue& o) const { return items_ == o.items_; }
  DeltaJournal& journal() { return journal_; }
  const DeltaJournal& journal() const { return journal_; }

 private:
  std::deque<std::string> items_;
  DeltaJournal journal_;
};

// Encoders: the complete kPutTyped value (TypedValueLayout header, then the
// elements). Never fail; element counts above 2^32 - 1 are a caller bug
// (checked).
std::string EncodeHash(const HashValue& hash);
std::string EncodeList(const ListValue& list);
std::string EncodeSet(const SetValue& set);
std::string EncodeZSet(const ZSetValue& zset);

// The kTypedDelta value for the operations in `journal` on a value of
// `type`. REQUIRES: journal.valid().
std::string EncodeDelta(ValueType type, const DeltaJournal& journal);

// Apply a kTypedDelta value to a decoded value; the value's journal is
// cleared afterwards. Errors: Corruption for a malformed delta, a delta of
// another type, or an operation that does not fit the value (a pop from an
// empty list, a removal of an absent member): the log and the base disagree.
[[nodiscard]] Status ApplyDelta(std::string_view delta, HashValue* hash);
[[nodiscard]] Status ApplyDelta(std::string_view delta, ListValue* list);
[[nodiscard]] Status ApplyDelta(std::string_view delta, SetValue* set);
[[nodiscard]] Status ApplyDelta(std::string_view delta, ZSetValue* zset);

// The whole kPutTyped value for `base` (a kPutTyped value) with `deltas`
// applied in order (RENAME moves a value as one whole record). Errors as
// the decoders and ApplyDelta.
[[nodiscard]] Result<std::string> FoldTypedValue(std::string_view base,
                                                 const std::vector<std::string>& deltas);

// Decoders of a complete kPutTyped value. Errors: Corruption when the
// header's version or type does not match, a length runs past the end,
// bytes trail the last element, a field or member repeats, or a score is
// NaN. Never read outside `encoded`.
[[nodiscard]] Result<HashValue> DecodeHash(std::string_view encoded);
[[nodiscard]] Result<ListValue> DecodeList(std::string_view encoded);
[[nodiscard]] Result<SetValue> DecodeSet(std::string_view encoded);
[[nodiscard]] Result<ZSetValue> DecodeZSet(std::string_view encoded);

}  // namespace cosmos::kv
