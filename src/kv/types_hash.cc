// Hash commands (HSET, HGET, HMGET, HGETALL, HDEL, HEXISTS, HLEN, HKEYS,
// HVALS, HINCRBY, HINCRBYFLOAT, HSETNX, HSTRLEN, HSCAN, HMSET, HRANDFIELD)
// with Redis's replies and error texts.
#include <cmath>

#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/store.h"
#include "kv/typed_commands.h"

namespace cosmos::kv {
namespace {

// HSET key field value [field value ...]: number of new fields. HMSET: +OK.
uint64_t HSetImpl(TypedCtx& c, bool reply_ok) {
  if (c.args.size() % 2 != 0) {
    AppendArityError(c);
    return 0;
  }
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  int64_t added = 0;
  for (size_t i = 2; i + 1 < c.args.size(); i += 2) added += h.value.Set(c.args[i], c.args[i + 1]);
  uint64_t seq;
  if (!SaveHash(c, c.args[1], h, &seq)) return 0;
  if (reply_ok) {
    AppendSimple(c.out, "OK");
  } else {
    AppendInteger(c.out, added);
  }
  return seq;
}

uint64_t HSet(TypedCtx& c) { return HSetImpl(c, false); }
uint64_t HMSet(TypedCtx& c) { return HSetImpl(c, true); }

uint64_t HSetNx(TypedCtx& c) {
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  if (h.value.Find(c.args[2]) != nullptr) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  h.value.Set(c.args[2], c.args[3]);
  uint64_t seq;
  if (!SaveHash(c, c.args[1], h, &seq)) return 0;
  AppendInteger(c.out, 1);
  return seq;
}

uint64_t HGet(TypedCtx& c) {
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  const std::string* v = h.value.Find(c.args[2]);
  if (v == nullptr) {
    AppendNull(c.out);
  } else {
    AppendBulk(c.out, *v);
  }
  return ReadSeq(c);
}

uint64_t HMGet(TypedCtx& c) {
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  AppendArrayHeader(c.out, static_cast<int64_t>(c.args.size() - 2));
  for (size_t i = 2; i < c.args.size(); ++i) {
    const std::string* v = h.value.Find(c.args[i]);
    if (v == nullptr) {
      AppendNull(c.out);
    } else {
      AppendBulk(c.out, *v);
    }
  }
  return ReadSeq(c);
}

// HGETALL / HKEYS / HVALS.
uint64_t HListImpl(TypedCtx& c, bool keys, bool values) {
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  AppendArrayHeader(c.out,
                    static_cast<int64_t>(h.value.size() * ((keys ? 1 : 0) + (values ? 1 : 0))));
  for (const auto& [f, v] : h.value.entries()) {
    if (keys) AppendBulk(c.out, f);
    if (values) AppendBulk(c.out, v);
  }
  return ReadSeq(c);
}

uint64_t HGetAll(TypedCtx& c) { return HListImpl(c, true, true); }
uint64_t HKeys(TypedCtx& c) { return HListImpl(c, true, false); }
uint64_t HVals(TypedCtx& c) { return HListImpl(c, false, true); }

uint64_t HDel(TypedCtx& c) {
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  int64_t removed = 0;
  for (size_t i = 2; i < c.args.size(); ++i) removed += h.value.Erase(c.args[i]);
  if (removed == 0) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  uint64_t seq;
  if (!SaveHash(c, c.args[1], h, &seq)) return 0;
  AppendInteger(c.out, removed);
  return seq;
}

uint64_t HExists(TypedCtx& c) {
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  AppendInteger(c.out, h.value.Find(c.args[2]) != nullptr ? 1 : 0);
  return ReadSeq(c);
}

uint64_t HLen(TypedCtx& c) {
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(h.value.size()));
  return ReadSeq(c);
}

uint64_t HStrLen(TypedCtx& c) {
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  const std::string* v = h.value.Find(c.args[2]);
  AppendInteger(c.out, v == nullptr ? 0 : static_cast<int64_t>(v->size()));
  return ReadSeq(c);
}

uint64_t HIncrBy(TypedCtx& c) {
  int64_t delta;
  if (!ParseInt64(c.args[3], &delta)) {
    AppendError(c.out, kNotInteger);
    return 0;
  }
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  int64_t cur = 0;
  if (const std::string* v = h.value.Find(c.args[2]); v != nullptr && !ParseInt64(*v, &cur)) {
    AppendError(c.out, "ERR hash value is not an integer");
    return ReadSeq(c);
  }
  if ((delta < 0 && cur < 0 && delta < INT64_MIN - cur) ||
      (delta > 0 && cur > 0 && delta > INT64_MAX - cur)) {
    AppendError(c.out, "ERR increment or decrement would overflow");
    return ReadSeq(c);
  }
  cur += delta;
  h.value.Set(c.args[2], std::to_string(cur));
  uint64_t seq;
  if (!SaveHash(c, c.args[1], h, &seq)) return 0;
  AppendInteger(c.out, cur);
  return seq;
}

uint64_t HIncrByFloat(TypedCtx& c) {
  long double delta;
  if (!ParseLongDouble(c.args[3], &delta)) {
    AppendError(c.out, kNotFloat);
    return 0;
  }
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  long double cur = 0;
  if (const std::string* v = h.value.Find(c.args[2]); v != nullptr && !ParseLongDouble(*v, &cur)) {
    AppendError(c.out, "ERR hash value is not a float");
    return ReadSeq(c);
  }
  cur += delta;
  if (std::isnan(cur) || std::isinf(cur)) {
    AppendError(c.out, "ERR increment would produce NaN or Infinity");
    return ReadSeq(c);
  }
  const std::string text = FormatLongDouble(cur);
  h.value.Set(c.args[2], text);
  uint64_t seq;
  if (!SaveHash(c, c.args[1], h, &seq)) return 0;
  AppendBulk(c.out, text);
  return seq;
}

uint64_t HScan(TypedCtx& c) {
  ScanArgs scan;
  if (!ParseScanArgs(c, &scan)) return 0;
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  const auto& entries = h.value.entries();
  std::vector<size_t> picked;
  const uint64_t next = PickScanBatch(
      entries.size(), [&](size_t i) { return std::string_view(entries[i].first); }, scan, &picked);
  std::string items;
  int64_t n = 0;
  for (size_t i : picked) {
    const auto& [f, v] = entries[i];
    if (!GlobMatch(scan.pattern, f)) continue;
    AppendBulk(&items, f);
    AppendBulk(&items, v);
    n += 2;
  }
  AppendArrayHeader(c.out, 2);
  AppendBulk(c.out, std::to_string(next));
  AppendArrayHeader(c.out, n);
  c.out->append(items);
  return ReadSeq(c);
}

// HRANDFIELD key [count [WITHVALUES]].
uint64_t HRandField(TypedCtx& c) {
  const bool has_count = c.args.size() >= 3;
  const bool with_values = c.args.size() == 4 && EqualsIgnoreCase(c.args[3], "withvalues");
  if (c.args.size() > 4 || (c.args.size() == 4 && !with_values)) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  int64_t count = 1;
  if (has_count && !ParseRandomCount(c, 2, &count)) return 0;
  Loaded<HashValue> h;
  if (!LoadHash(c, c.args[1], &h)) return 0;
  const std::vector<size_t> picks = PickIndexes(h.value.size(), count);
  if (!has_count) {
    if (picks.empty()) {
      AppendNull(c.out);
    } else {
      AppendBulk(c.out, h.value.entries()[picks[0]].first);
    }
    return ReadSeq(c);
  }
  AppendArrayHeader(c.out, static_cast<int64_t>(picks.size() * (with_values ? 2 : 1)));
  for (size_t i : picks) {
    AppendBulk(c.out, h.value.entries()[i].first);
    if (with_values) AppendBulk(c.out, h.value.entries()[i].second);
  }
  return ReadSeq(c);
}

constexpr TypedCommand kHashCommands[] = {
    {"hset", -4, &HSet, true},      {"hmset", -4, &HMSet, true},
    {"hsetnx", 4, &HSetNx, true},   {"hget", 3, &HGet, false},
    {"hmget", -3, &HMGet, false},   {"hgetall", 2, &HGetAll, false},
    {"hkeys", 2, &HKeys, false},    {"hvals", 2, &HVals, false},
    {"hdel", -3, &HDel, true},      {"hexists", 3, &HExists, false},
    {"hlen", 2, &HLen, false},      {"hstrlen", 3, &HStrLen, false},
    {"hincrby", 4, &HIncrBy, true}, {"hincrbyfloat", 4, &HIncrByFloat, true},
    {"hscan", -3, &HScan, false},   {"hrandfield", -2, &HRandField, false},
};

}  // namespace

std::span<const TypedCommand> HashCommands() { return kHashCommands; }

}  // namespace cosmos::kv
