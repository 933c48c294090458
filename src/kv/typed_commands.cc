// The registry of the data-type command families and the load/stage/save
// helpers their handlers share.
#include "kv/typed_commands.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <random>
#include <unordered_map>

#include "common/checksum.h"
#include "kv/command_util.h"
#include "kv/resp.h"

namespace cosmos::kv {

const TypedCommand* FindTypedCommand(std::string_view name) {
  static const auto* table = [] {
    auto* t = new std::unordered_map<std::string, const TypedCommand*>();
    for (auto family : {HashCommands(), ListCommands(), SetCommands(), ZSetCommands(),
                        KeyspaceCommands(), StringCommands()}) {
      for (const TypedCommand& c : family) (*t)[c.name] = &c;
    }
    return t;
  }();
  if (name.size() > 32) return nullptr;
  auto it = table->find(Lower(name));
  return it == table->end() ? nullptr : it->second;
}

size_t TypedCommandCount() {
  return HashCommands().size() + ListCommands().size() + SetCommands().size() +
         ZSetCommands().size() + KeyspaceCommands().size() + StringCommands().size();
}

bool RejectStringCommandOnOtherType(Store* store, std::string_view lower_name,
                                    std::span<const std::string_view> args, std::string* out) {
  // String commands whose first key is read as a string (SET without GET,
  // SETNX, MGET and the like overwrite or skip other types, as in Redis).
  static const std::unordered_map<std::string_view, bool> kReadsString = {
      {"get", true},  {"getset", true}, {"getdel", true}, {"incr", true},   {"incrby", true},
      {"decr", true}, {"decrby", true}, {"append", true}, {"strlen", true}, {"set", false},
  };
  auto it = kReadsString.find(lower_name);
  if (it == kReadsString.end() || args.size() < 2) return false;
  if (!it->second) {  // SET: only with the GET option
    bool get = false;
    for (size_t i = 3; i < args.size(); ++i) get = get || EqualsIgnoreCase(args[i], "get");
    if (!get) return false;
  }
  auto info = store->Lookup(args[1]);
  if (!info.ok() || !info->has_value() || (*info)->type == ValueType::kString) return false;
  AppendError(out, kWrongType);
  return true;
}

namespace {

bool SameRecords(const KeyVersion& a, const KeyVersion& b) {
  return a.generation == b.generation && a.value_pos == b.value_pos;
}

}  // namespace

template <typename T>
std::optional<T> ValueCache::Take(std::string_view key, const KeyVersion& version) {
  auto it = map_.find(std::string(key));
  if (it == map_.end()) return std::nullopt;
  std::optional<T> out;
  if (SameRecords(it->second.version, version) && std::holds_alternative<T>(it->second.value)) {
    out = std::move(std::get<T>(it->second.value));
  }
  bytes_ -= it->second.bytes;
  map_.erase(it);  // taken, or stale
  return out;
}

void ValueCache::Put(std::string_view key, const KeyVersion& version, uint64_t bytes, Value value) {
  Erase(key);
  while (!map_.empty() && bytes_ + bytes > max_bytes_) {
    bytes_ -= map_.begin()->second.bytes;
    map_.erase(map_.begin());
  }
  if (bytes > max_bytes_) return;
  map_.emplace(std::string(key), Entry{version, bytes, std::move(value)});
  bytes_ += bytes;
}

void ValueCache::Erase(std::string_view key) {
  auto it = map_.find(std::string(key));
  if (it == map_.end()) return;
  bytes_ -= it->second.bytes;
  map_.erase(it);
}

template <typename T>
void ReturnToCache(Loaded<T>* v) {
  if (v->cache == nullptr || (!v->found && !v->saved) || v->value.size() == 0) return;
  const DeltaJournal& j = v->value.journal();
  const bool unchanged = j.valid() && j.ops() == 0;
  if (!unchanged && !v->saved) return;  // not written: the log does not hold it
  const uint64_t bytes = v->base_len + v->delta_bytes;
  if (bytes < kMinDeltaBase) return;  // small values decode cheaply
  v->value.journal().Clear();
  v->cache->Put(v->key, v->version, bytes, ValueCache::Value(std::move(v->value)));
  v->cache = nullptr;
}

template void ReturnToCache(Loaded<HashValue>*);
template void ReturnToCache(Loaded<ListValue>*);
template void ReturnToCache(Loaded<SetValue>*);
template void ReturnToCache(Loaded<ZSetValue>*);

namespace {

template <typename T>
bool Load(TypedCtx& c, std::string_view key, ValueType want, Result<T> (*decode)(std::string_view),
          Loaded<T>* v) {
  auto info = c.store->Lookup(key);
  if (!info.ok()) {
    AppendStoreError(c.out, info.status());
    return false;
  }
  v->found = false;
  v->cache = c.cache;
  v->key = std::string(key);
  if (!info->has_value()) {
    if (c.cache != nullptr) c.cache->Erase(key);
    return true;
  }
  if ((*info)->type != want) {
    AppendError(c.out, kWrongType);
    return false;
  }
  v->expiry_ms = (*info)->expiry_ms;
  v->base_len = (*info)->value_len;
  v->delta_count = (*info)->delta_count;
  v->delta_bytes = (*info)->delta_bytes;
  v->version = (*info)->version;
  if (c.cache != nullptr) {
    if (std::optional<T> hit = c.cache->Take<T>(key, v->version)) {
      v->value = std::move(*hit);
      v->found = true;
      return true;
    }
  }
  ValueType type;
  std::string raw;
  std::vector<std::string> deltas;
  auto got = c.store->GetValue(key, &type, &raw, &deltas);
  if (!got.ok()) {
    AppendStoreError(c.out, got.status());
    return false;
  }
  if (!*got) return true;
  auto decoded = decode(raw);
  Status s = decoded.status();
  for (size_t i = 0; s.ok() && i < deltas.size(); ++i) s = ApplyDelta(deltas[i], &*decoded);
  if (!s.ok()) {
    AppendError(c.out, "ERR cosmos-kv cannot decode the value of this key: " + s.ToString());
    return false;
  }
  v->value = std::move(*decoded);
  v->found = true;
  return true;
}

template <typename T>
void Stage(std::string_view key, const Loaded<T>& v, ValueType type,
           std::string (*encode)(const T&), WriteBatch* batch, std::deque<std::string>* storage) {
  if (v.value.size() == 0) {
    batch->Delete(key);
    return;
  }
  const DeltaJournal& j = v.value.journal();
  if (v.found && j.valid() &&
      ShouldWriteDelta(v.base_len, v.delta_count, v.delta_bytes, j.bytes().size())) {
    if (j.ops() == 0) return;  // nothing changed
    storage->push_back(EncodeDelta(type, j));
    batch->PutDelta(key, storage->back());
    return;
  }
  storage->push_back(encode(v.value));
  batch->PutTyped(key, storage->back(), v.expiry_ms);
}

}  // namespace

bool LoadHash(TypedCtx& c, std::string_view key, Loaded<HashValue>* v) {
  return Load(c, key, ValueType::kHash, &DecodeHash, v);
}
bool LoadList(TypedCtx& c, std::string_view key, Loaded<ListValue>* v) {
  return Load(c, key, ValueType::kList, &DecodeList, v);
}
bool LoadSet(TypedCtx& c, std::string_view key, Loaded<SetValue>* v) {
  return Load(c, key, ValueType::kSet, &DecodeSet, v);
}
bool LoadZSet(TypedCtx& c, std::string_view key, Loaded<ZSetValue>* v) {
  return Load(c, key, ValueType::kZSet, &DecodeZSet, v);
}

void StageHash(std::string_view key, const Loaded<HashValue>& v, WriteBatch* batch,
               std::deque<std::string>* storage) {
  Stage(key, v, ValueType::kHash, &EncodeHash, batch, storage);
}
void StageList(std::string_view key, const Loaded<ListValue>& v, WriteBatch* batch,
               std::deque<std::string>* storage) {
  Stage(key, v, ValueType::kList, &EncodeList, batch, storage);
}
void StageSet(std::string_view key, const Loaded<SetValue>& v, WriteBatch* batch,
              std::deque<std::string>* storage) {
  Stage(key, v, ValueType::kSet, &EncodeSet, batch, storage);
}
void StageZSet(std::string_view key, const Loaded<ZSetValue>& v, WriteBatch* batch,
               std::deque<std::string>* storage) {
  Stage(key, v, ValueType::kZSet, &EncodeZSet, batch, storage);
}

bool ShouldWriteDelta(uint64_t base_len, uint32_t delta_count, uint64_t delta_bytes,
                      uint64_t journal_bytes) {
  return base_len >= kMinDeltaBase && delta_count < kMaxDeltaChain &&
         delta_bytes + journal_bytes + TypedValueLayout::kSize <= base_len;
}

bool ApplyBatch(TypedCtx& c, const WriteBatch& batch, uint64_t* seq) {
  auto r = c.store->Apply(batch);
  if (!r.ok()) {
    AppendStoreError(c.out, r.status());
    return false;
  }
  *seq = *r;
  return true;
}

namespace {
template <typename T>
bool Save(TypedCtx& c, std::string_view key, Loaded<T>& v,
          void (*stage)(std::string_view, const Loaded<T>&, WriteBatch*, std::deque<std::string>*),
          uint64_t* seq) {
  WriteBatch b;
  std::deque<std::string> storage;  // a deque never moves its elements
  stage(key, v, &b, &storage);
  if (!ApplyBatch(c, b, seq)) return false;
  // The value now matches the key's records: it may go back to the cache.
  auto info = c.store->Lookup(key);
  if (info.ok() && info->has_value()) {
    v.saved = true;
    v.version = (*info)->version;
    v.base_len = (*info)->value_len;
    v.delta_count = (*info)->delta_count;
    v.delta_bytes = (*info)->delta_bytes;
  }
  return true;
}
}  // namespace

bool SaveHash(TypedCtx& c, std::string_view key, Loaded<HashValue>& v, uint64_t* seq) {
  return Save(c, key, v, &StageHash, seq);
}
bool SaveList(TypedCtx& c, std::string_view key, Loaded<ListValue>& v, uint64_t* seq) {
  return Save(c, key, v, &StageList, seq);
}
bool SaveSet(TypedCtx& c, std::string_view key, Loaded<SetValue>& v, uint64_t* seq) {
  return Save(c, key, v, &StageSet, seq);
}
bool SaveZSet(TypedCtx& c, std::string_view key, Loaded<ZSetValue>& v, uint64_t* seq) {
  return Save(c, key, v, &StageZSet, seq);
}

uint64_t ReadSeq(TypedCtx& c) { return c.store->last_sequence(); }

bool ParseIntArg(TypedCtx& c, size_t i, int64_t* v) {
  if (ParseInt64(c.args[i], v)) return true;
  AppendError(c.out, kNotInteger);
  return false;
}

bool ParseRandomCount(TypedCtx& c, size_t i, int64_t* count) {
  if (!ParseIntArg(c, i, count)) return false;
  if (*count == INT64_MIN || *count < -kMaxRandomCount) {
    AppendError(c.out, "ERR value is out of range");
    return false;
  }
  return true;
}

std::vector<size_t> PickIndexes(size_t n, int64_t count) {
  static std::mt19937_64 rng(std::random_device{}());
  std::vector<size_t> out;
  if (n == 0) return out;
  if (count < 0) {
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    for (int64_t k = 0; k < -count; ++k) out.push_back(pick(rng));
    return out;
  }
  out.resize(n);
  for (size_t k = 0; k < n; ++k) out[k] = k;
  std::shuffle(out.begin(), out.end(), rng);
  out.resize(std::min<size_t>(n, static_cast<size_t>(count)));
  return out;
}

bool ParseBlockTimeout(TypedCtx& c, size_t i, int64_t* timeout_ms) {
  long double seconds;
  if (!ParseLongDouble(c.args[i], &seconds)) {
    double d;  // Redis parses "inf" and "-inf": both wrap to a negative timeout
    const bool inf = ParseDouble(c.args[i], &d);
    AppendError(c.out,
                inf ? "ERR timeout is negative" : "ERR timeout is not a float or out of range");
    return false;
  }
  // Redis 7.0 converts ceil(ms) to a long long: beyond its range the value
  // wraps to LLONG_MIN and is reported as negative.
  const long double rounded = std::ceil(seconds * 1000.0L);
  if (rounded < 0 || rounded >= 9223372036854775807.0L) {
    AppendError(c.out, "ERR timeout is negative");
    return false;
  }
  *timeout_ms = static_cast<int64_t>(rounded);
  return true;
}

void BlockOrTimeOut(TypedCtx& c, std::vector<std::string> keys, ValueType type, int64_t timeout_ms,
                    bool null_array) {
  if (c.block == nullptr) {
    c.out->append(null_array ? "*-1\r\n" : "$-1\r\n");
    return;
  }
  std::vector<std::string> unique;
  for (auto& k : keys) {
    if (std::find(unique.begin(), unique.end(), k) == unique.end()) unique.push_back(std::move(k));
  }
  c.block->blocked = true;
  c.block->args.assign(c.args.begin(), c.args.end());
  c.block->keys = std::move(unique);
  c.block->type = type;
  c.block->timeout_ms = timeout_ms;
}

bool ParseMultiPopArgs(TypedCtx& c, size_t numkeys_index, std::string_view first,
                       std::string_view second, MultiPopArgs* out) {
  int64_t numkeys;
  if (!ParseInt64(c.args[numkeys_index], &numkeys) || numkeys < 1) {
    AppendError(c.out, "ERR numkeys should be greater than 0");
    return false;
  }
  // The end's index must be inside args (checked before adding, so a huge
  // numkeys cannot overflow).
  if (static_cast<uint64_t>(numkeys) >= c.args.size() - numkeys_index - 1) {
    AppendError(c.out, kSyntax);
    return false;
  }
  const size_t end_index = numkeys_index + static_cast<size_t>(numkeys) + 1;
  if (EqualsIgnoreCase(c.args[end_index], first)) {
    out->second = false;
  } else if (EqualsIgnoreCase(c.args[end_index], second)) {
    out->second = true;
  } else {
    AppendError(c.out, kSyntax);
    return false;
  }
  bool has_count = false;
  for (size_t i = end_index + 1; i < c.args.size(); ++i) {
    if (!has_count && EqualsIgnoreCase(c.args[i], "count") && i + 1 < c.args.size()) {
      if (!ParseInt64(c.args[++i], &out->count) || out->count < 1) {
        AppendError(c.out, "ERR count should be greater than 0");
        return false;
      }
      has_count = true;
    } else {
      AppendError(c.out, kSyntax);
      return false;
    }
  }
  out->first_key = numkeys_index + 1;
  out->numkeys = static_cast<size_t>(numkeys);
  return true;
}

void AppendArityError(TypedCtx& c) {
  AppendError(c.out, "ERR wrong number of arguments for '" + Lower(c.args[0]) + "' command");
}

bool ParseScanArgs(TypedCtx& c, ScanArgs* args) {
  if (!ParseUint64(c.args[2], &args->cursor)) {
    AppendError(c.out, "ERR invalid cursor");
    return false;
  }
  for (size_t i = 3; i < c.args.size(); i += 2) {
    if (i + 1 >= c.args.size()) {
      AppendError(c.out, kSyntax);
      return false;
    }
    if (EqualsIgnoreCase(c.args[i], "match")) {
      args->pattern = c.args[i + 1];
    } else if (EqualsIgnoreCase(c.args[i], "count")) {
      int64_t n;
      if (!ParseInt64(c.args[i + 1], &n)) {
        AppendError(c.out, kNotInteger);
        return false;
      }
      if (n < 1) {
        AppendError(c.out, kSyntax);
        return false;
      }
      args->count = static_cast<uint64_t>(n);
    } else {
      AppendError(c.out, kSyntax);
      return false;
    }
  }
  return true;
}

uint64_t PickScanBatch(size_t n, const std::function<std::string_view(size_t)>& name_of,
                       const ScanArgs& args, std::vector<size_t>* picked) {
  picked->clear();
  if (n <= kScanAllAtOnce) {
    for (size_t i = 0; i < n; ++i) picked->push_back(i);
    return 0;
  }
  constexpr uint64_t kSeed = 0x5ca7c0de5ca7c0deull;
  std::vector<std::pair<uint64_t, size_t>> ahead;  // (hash, index) at or after the cursor
  for (size_t i = 0; i < n; ++i) {
    const std::string_view name = name_of(i);
    const uint64_t h = Checksum64(name.data(), name.size(), kSeed) | 1;
    if (h >= args.cursor) ahead.emplace_back(h, i);
  }
  const size_t take = static_cast<size_t>(std::min<uint64_t>(args.count, ahead.size()));
  if (take < ahead.size()) {
    std::nth_element(ahead.begin(), ahead.begin() + static_cast<std::ptrdiff_t>(take), ahead.end());
  }
  std::sort(ahead.begin(), ahead.begin() + static_cast<std::ptrdiff_t>(take));
  for (size_t i = 0; i < take; ++i) picked->push_back(ahead[i].second);
  if (take == ahead.size()) return 0;
  // The smallest hash not returned (ahead[take] after nth_element). Equal
  // hashes split across calls come again: duplicates, never a miss.
  return ahead[take].first;
}

}  // namespace cosmos::kv
