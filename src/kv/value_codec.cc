// Whole-value and delta encodings of hashes, lists, sets and sorted sets
// (format in docs/kv.md "Typed values"), and the in-memory containers'
// journaled operations.
#include "kv/value_codec.h"

#include <cmath>
#include <cstring>

#include "common/check.h"
#include "common/endian.h"

namespace cosmos::kv {
namespace {

// Delta opcodes (docs/kv.md "Typed values"), per value type.
constexpr uint8_t kHashSetOp = 1;        // field, value
constexpr uint8_t kHashDelOp = 2;        // field
constexpr uint8_t kListPushFrontOp = 1;  // element
constexpr uint8_t kListPushBackOp = 2;   // element
constexpr uint8_t kListPopFrontOp = 3;   // -
constexpr uint8_t kListPopBackOp = 4;    // -
constexpr uint8_t kSetAddOp = 1;         // member
constexpr uint8_t kSetRemOp = 2;         // member
constexpr uint8_t kZSetSetOp = 1;        // score, member
constexpr uint8_t kZSetRemOp = 2;        // member

void AppendLength(size_t n, std::string* out) {
  COSMOS_CHECK(n <= UINT32_MAX);
  char len[4];
  StoreLE<uint32_t>(len, static_cast<uint32_t>(n));
  out->append(len, sizeof(len));
}

}  // namespace

void DeltaJournal::AddBare(uint8_t opcode) {
  if (!valid_) return;
  bytes_.push_back(static_cast<char>(opcode));
  ++ops_;
}

void DeltaJournal::Add(uint8_t opcode, std::string_view a) {
  if (!valid_) return;
  AddBare(opcode);
  AppendLength(a.size(), &bytes_);
  bytes_.append(a);
}

void DeltaJournal::Add(uint8_t opcode, std::string_view a, std::string_view b) {
  if (!valid_) return;
  Add(opcode, a);
  AppendLength(b.size(), &bytes_);
  bytes_.append(b);
}

void DeltaJournal::AddScored(uint8_t opcode, double score, std::string_view member) {
  if (!valid_) return;
  AddBare(opcode);
  uint64_t bits;
  std::memcpy(&bits, &score, sizeof(bits));
  char b[8];
  StoreLE<uint64_t>(b, bits);
  bytes_.append(b, sizeof(b));
  AppendLength(member.size(), &bytes_);
  bytes_.append(member);
}

void ListValue::PushFront(std::string_view v) {
  items_.emplace_front(v);
  journal_.Add(kListPushFrontOp, v);
}
void ListValue::PushBack(std::string_view v) {
  items_.emplace_back(v);
  journal_.Add(kListPushBackOp, v);
}
void ListValue::PopFront() {
  COSMOS_CHECK(!items_.empty());
  items_.pop_front();
  journal_.AddBare(kListPopFrontOp);
}
void ListValue::PopBack() {
  COSMOS_CHECK(!items_.empty());
  items_.pop_back();
  journal_.AddBare(kListPopBackOp);
}

const std::string* HashValue::Find(std::string_view field) const {
  auto it = pos_.find(std::string(field));
  return it == pos_.end() ? nullptr : &entries_[it->second].second;
}

bool HashValue::Set(std::string_view field, std::string_view value) {
  auto [it, inserted] = pos_.emplace(std::string(field), entries_.size());
  if (inserted) {
    entries_.emplace_back(std::string(field), std::string(value));
  } else {
    entries_[it->second].second.assign(value);
  }
  journal_.Add(kHashSetOp, field, value);
  return inserted;
}

bool HashValue::Erase(std::string_view field) {
  auto it = pos_.find(std::string(field));
  if (it == pos_.end()) return false;
  const size_t slot = it->second;
  pos_.erase(it);
  entries_.erase(entries_.begin() + static_cast<ptrdiff_t>(slot));
  for (size_t i = slot; i < entries_.size(); ++i) pos_[entries_[i].first] = i;
  journal_.Add(kHashDelOp, field);
  return true;
}

bool SetValue::Add(std::string_view member) {
  auto [it, inserted] = pos_.emplace(std::string(member), members_.size());
  if (inserted) {
    members_.emplace_back(member);
    journal_.Add(kSetAddOp, member);
  }
  return inserted;
}

bool SetValue::Erase(std::string_view member) {
  auto it = pos_.find(std::string(member));
  if (it == pos_.end()) return false;
  const size_t slot = it->second;
  pos_.erase(it);
  members_.erase(members_.begin() + static_cast<ptrdiff_t>(slot));
  for (size_t i = slot; i < members_.size(); ++i) pos_[members_[i]] = i;
  journal_.Add(kSetRemOp, member);
  return true;
}

const double* ZSetValue::Score(std::string_view member) const {
  auto it = scores_.find(std::string(member));
  return it == scores_.end() ? nullptr : &it->second;
}

bool ZSetValue::Set(std::string_view member, double score) {
  COSMOS_CHECK(!std::isnan(score));
  auto [it, inserted] = scores_.emplace(std::string(member), score);
  if (!inserted) {
    if (it->second == score) return false;
    ordered_.erase({it->second, it->first});
    it->second = score;
  }
  ordered_.emplace(score, it->first);
  journal_.AddScored(kZSetSetOp, score, member);
  return inserted;
}

bool ZSetValue::Erase(std::string_view member) {
  auto it = scores_.find(std::string(member));
  if (it == scores_.end()) return false;
  ordered_.erase({it->second, it->first});
  scores_.erase(it);
  journal_.Add(kZSetRemOp, member);
  return true;
}

size_t ZSetValue::Rank(std::string_view member) const {
  const double* s = Score(member);
  COSMOS_CHECK(s != nullptr);
  auto end = ordered_.find({*s, std::string(member)});
  return static_cast<size_t>(std::distance(ordered_.begin(), end));
}

namespace {

void PutHeader(ValueType type, size_t count, std::string* out) {
  COSMOS_CHECK(count <= UINT32_MAX);
  char h[TypedValueLayout::kSize] = {};
  h[TypedValueLayout::kVersion] = static_cast<char>(kTypedValueVersion);
  h[TypedValueLayout::kType] = static_cast<char>(type);
  StoreLE<uint32_t>(h + TypedValueLayout::kCount, static_cast<uint32_t>(count));
  out->append(h, sizeof(h));
}

void PutString(std::string_view s, std::string* out) {
  COSMOS_CHECK(s.size() <= UINT32_MAX);
  char len[4];
  StoreLE<uint32_t>(len, static_cast<uint32_t>(s.size()));
  out->append(len, sizeof(len));
  out->append(s);
}

// Reads elements of a typed value; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  // Checks the header for `type` and `version`; sets *count.
  Status Header(ValueType type, uint32_t* count, uint8_t version = kTypedValueVersion) {
    if (in_.size() < TypedValueLayout::kSize) return Bad("truncated header");
    if (static_cast<uint8_t>(in_[TypedValueLayout::kVersion]) != version) {
      return Bad("unsupported encoding version");
    }
    if (static_cast<uint8_t>(in_[TypedValueLayout::kType]) != static_cast<uint8_t>(type)) {
      return Bad("type mismatch");
    }
    if (LoadLE<uint16_t>(in_.data() + TypedValueLayout::kReserved) != 0) {
      return Bad("reserved bytes not zero");
    }
    *count = LoadLE<uint32_t>(in_.data() + TypedValueLayout::kCount);
    pos_ = TypedValueLayout::kSize;
    // Every element or operation takes at least one byte (elements four):
    // reject counts the bytes cannot hold before anything is allocated.
    const size_t min_size = version == kTypedValueVersion ? 4 : 1;
    if (*count > (in_.size() - pos_) / min_size) return Bad("element count beyond the value");
    return Status::Ok();
  }
  Status Byte(uint8_t* b) {
    if (pos_ >= in_.size()) return Bad("truncated operation");
    *b = static_cast<uint8_t>(in_[pos_++]);
    return Status::Ok();
  }
  Status String(std::string_view* s) {
    if (in_.size() - pos_ < 4) return Bad("truncated length");
    const uint32_t n = LoadLE<uint32_t>(in_.data() + pos_);
    pos_ += 4;
    if (n > in_.size() - pos_) return Bad("length beyond the value");
    *s = in_.substr(pos_, n);
    pos_ += n;
    return Status::Ok();
  }
  Status Double(double* d) {
    if (in_.size() - pos_ < 8) return Bad("truncated score");
    const uint64_t bits = LoadLE<uint64_t>(in_.data() + pos_);
    std::memcpy(d, &bits, sizeof(*d));
    pos_ += 8;
    if (std::isnan(*d)) return Bad("NaN score");
    return Status::Ok();
  }
  Status End() { return pos_ == in_.size() ? Status::Ok() : Bad("trailing bytes"); }
  static Status Bad(const char* what) {
    return Status::Corruption(std::string("kv typed value: ") + what);
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

std::string EncodeHash(const HashValue& hash) {
  std::string out;
  PutHeader(ValueType::kHash, hash.size(), &out);
  for (const auto& [f, v] : hash.entries()) {
    PutString(f, &out);
    PutString(v, &out);
  }
  return out;
}

std::string EncodeList(const ListValue& list) {
  std::string out;
  PutHeader(ValueType::kList, list.size(), &out);
  for (const auto& e : list) PutString(e, &out);
  return out;
}

std::string EncodeSet(const SetValue& set) {
  std::string out;
  PutHeader(ValueType::kSet, set.size(), &out);
  for (const auto& m : set.members()) PutString(m, &out);
  return out;
}

std::string EncodeZSet(const ZSetValue& zset) {
  std::string out;
  PutHeader(ValueType::kZSet, zset.size(), &out);
  for (const auto& [score, member] : zset.ordered()) {
    uint64_t bits;
    std::memcpy(&bits, &score, sizeof(bits));
    char b[8];
    StoreLE<uint64_t>(b, bits);
    out.append(b, sizeof(b));
    PutString(member, &out);
  }
  return out;
}

Result<HashValue> DecodeHash(std::string_view encoded) {
  Reader r(encoded);
  uint32_t n = 0;
  COSMOS_RETURN_IF_ERROR(r.Header(ValueType::kHash, &n));
  HashValue h;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view f, v;
    COSMOS_RETURN_IF_ERROR(r.String(&f));
    COSMOS_RETURN_IF_ERROR(r.String(&v));
    if (!h.Set(f, v)) return Reader::Bad("repeated hash field");
  }
  COSMOS_RETURN_IF_ERROR(r.End());
  h.journal().Clear();
  return h;
}

Result<ListValue> DecodeList(std::string_view encoded) {
  Reader r(encoded);
  uint32_t n = 0;
  COSMOS_RETURN_IF_ERROR(r.Header(ValueType::kList, &n));
  ListValue l;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view e;
    COSMOS_RETURN_IF_ERROR(r.String(&e));
    l.PushBack(e);
  }
  COSMOS_RETURN_IF_ERROR(r.End());
  l.journal().Clear();
  return l;
}

Result<SetValue> DecodeSet(std::string_view encoded) {
  Reader r(encoded);
  uint32_t n = 0;
  COSMOS_RETURN_IF_ERROR(r.Header(ValueType::kSet, &n));
  SetValue s;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view m;
    COSMOS_RETURN_IF_ERROR(r.String(&m));
    if (!s.Add(m)) return Reader::Bad("repeated set member");
  }
  COSMOS_RETURN_IF_ERROR(r.End());
  s.journal().Clear();
  return s;
}

Result<ZSetValue> DecodeZSet(std::string_view encoded) {
  Reader r(encoded);
  uint32_t n = 0;
  COSMOS_RETURN_IF_ERROR(r.Header(ValueType::kZSet, &n));
  ZSetValue z;
  for (uint32_t i = 0; i < n; ++i) {
    double score;
    std::string_view m;
    COSMOS_RETURN_IF_ERROR(r.Double(&score));
    COSMOS_RETURN_IF_ERROR(r.String(&m));
    if (z.Score(m) != nullptr) return Reader::Bad("repeated sorted-set member");
    z.Set(m, score);
  }
  COSMOS_RETURN_IF_ERROR(r.End());
  z.journal().Clear();
  return z;
}

std::string EncodeDelta(ValueType type, const DeltaJournal& journal) {
  COSMOS_CHECK(journal.valid());
  std::string out;
  char h[TypedValueLayout::kSize] = {};
  h[TypedValueLayout::kVersion] = static_cast<char>(kTypedDeltaVersion);
  h[TypedValueLayout::kType] = static_cast<char>(type);
  StoreLE<uint32_t>(h + TypedValueLayout::kCount, journal.ops());
  out.append(h, sizeof(h));
  out.append(journal.bytes());
  return out;
}

namespace {

// Runs `apply_one(reader, opcode)` for every operation of `delta` (a delta
// of `type`) on `value`, then checks nothing trails and clears the value's
// journal (the applied operations are already in the log).
template <typename T, typename F>
Status ApplyOps(std::string_view delta, ValueType type, T* value, F apply_one) {
  Reader r(delta);
  uint32_t n = 0;
  COSMOS_RETURN_IF_ERROR(r.Header(type, &n, kTypedDeltaVersion));
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t op = 0;
    COSMOS_RETURN_IF_ERROR(r.Byte(&op));
    COSMOS_RETURN_IF_ERROR(apply_one(r, op));
  }
  COSMOS_RETURN_IF_ERROR(r.End());
  value->journal().Clear();
  return Status::Ok();
}

}  // namespace

Status ApplyDelta(std::string_view delta, HashValue* hash) {
  return ApplyOps(delta, ValueType::kHash, hash, [&](Reader& r, uint8_t op) -> Status {
    std::string_view field, value;
    COSMOS_RETURN_IF_ERROR(r.String(&field));
    if (op == kHashSetOp) {
      COSMOS_RETURN_IF_ERROR(r.String(&value));
      hash->Set(field, value);
    } else if (op != kHashDelOp || !hash->Erase(field)) {
      return Reader::Bad("hash delta operation does not apply");
    }
    return Status::Ok();
  });
}

Status ApplyDelta(std::string_view delta, ListValue* list) {
  return ApplyOps(delta, ValueType::kList, list, [&](Reader& r, uint8_t op) -> Status {
    std::string_view e;
    if (op == kListPushFrontOp || op == kListPushBackOp) {
      COSMOS_RETURN_IF_ERROR(r.String(&e));
      if (op == kListPushFrontOp) {
        list->PushFront(e);
      } else {
        list->PushBack(e);
      }
    } else if ((op == kListPopFrontOp || op == kListPopBackOp) && !list->empty()) {
      if (op == kListPopFrontOp) {
        list->PopFront();
      } else {
        list->PopBack();
      }
    } else {
      return Reader::Bad("list delta operation does not apply");
    }
    return Status::Ok();
  });
}

Status ApplyDelta(std::string_view delta, SetValue* set) {
  return ApplyOps(delta, ValueType::kSet, set, [&](Reader& r, uint8_t op) -> Status {
    std::string_view m;
    COSMOS_RETURN_IF_ERROR(r.String(&m));
    const bool ok = (op == kSetAddOp && set->Add(m)) || (op == kSetRemOp && set->Erase(m));
    return ok ? Status::Ok() : Reader::Bad("set delta operation does not apply");
  });
}

Status ApplyDelta(std::string_view delta, ZSetValue* zset) {
  return ApplyOps(delta, ValueType::kZSet, zset, [&](Reader& r, uint8_t op) -> Status {
    std::string_view m;
    if (op == kZSetSetOp) {
      double score = 0;
      COSMOS_RETURN_IF_ERROR(r.Double(&score));
      COSMOS_RETURN_IF_ERROR(r.String(&m));
      zset->Set(m, score);
    } else {
      COSMOS_RETURN_IF_ERROR(r.String(&m));
      if (op != kZSetRemOp || !zset->Erase(m)) {
        return Reader::Bad("sorted-set delta operation does not apply");
      }
    }
    return Status::Ok();
  });
}

namespace {

template <typename T>
Result<std::string> Fold(std::string_view base, const std::vector<std::string>& deltas,
                         Result<T> (*decode)(std::string_view), std::string (*encode)(const T&)) {
  COSMOS_ASSIGN_OR_RETURN(T value, decode(base));
  for (const auto& d : deltas) COSMOS_RETURN_IF_ERROR(ApplyDelta(d, &value));
  return encode(value);
}

}  // namespace

Result<std::string> FoldTypedValue(std::string_view base, const std::vector<std::string>& deltas) {
  if (base.size() < TypedValueLayout::kSize) return Reader::Bad("truncated header");
  switch (static_cast<ValueType>(base[TypedValueLayout::kType])) {
    case ValueType::kHash:
      return Fold<HashValue>(base, deltas, &DecodeHash, &EncodeHash);
    case ValueType::kList:
      return Fold<ListValue>(base, deltas, &DecodeList, &EncodeList);
    case ValueType::kSet:
      return Fold<SetValue>(base, deltas, &DecodeSet, &EncodeSet);
    case ValueType::kZSet:
      return Fold<ZSetValue>(base, deltas, &DecodeZSet, &EncodeZSet);
    case ValueType::kString:
      break;
  }
  return Reader::Bad("unknown value type");
}

}  // namespace cosmos::kv
