// List commands (LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE,
// LINDEX, LSET, LREM, LTRIM, LINSERT, LMOVE, RPOPLPUSH, LPOS, LMPOP) and the
// blocking BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP with Redis's replies and error
// texts. A blocking command that finds nothing parks itself (BlockOrTimeOut);
// the RESP server runs it again when a key it waits on receives a list.
#include <algorithm>

#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/typed_commands.h"

namespace cosmos::kv {
namespace {

constexpr std::string_view kMustBePositive = "ERR value is out of range, must be positive";

// Normalises a Redis [start, stop] index range over `len` elements; returns
// false if it selects nothing.
bool NormalizeRange(int64_t start, int64_t stop, int64_t len, int64_t* from, int64_t* to) {
  if (start < 0) start = std::max<int64_t>(len + start, 0);
  if (stop < 0) stop = len + stop;
  if (stop >= len) stop = len - 1;
  if (start > stop || start >= len) return false;
  *from = start;
  *to = stop;
  return true;
}

// LPUSH/RPUSH (create) and LPUSHX/RPUSHX (existing only).
uint64_t PushImpl(TypedCtx& c, bool left, bool existing_only) {
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  if (existing_only && !l.found) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  for (size_t i = 2; i < c.args.size(); ++i) {
    if (left) {
      l.value.PushFront(c.args[i]);
    } else {
      l.value.PushBack(c.args[i]);
    }
  }
  uint64_t seq;
  if (!SaveList(c, c.args[1], l, &seq)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(l.value.size()));
  return seq;
}

uint64_t LPush(TypedCtx& c) { return PushImpl(c, true, false); }
uint64_t RPush(TypedCtx& c) { return PushImpl(c, false, false); }
uint64_t LPushX(TypedCtx& c) { return PushImpl(c, true, true); }
uint64_t RPushX(TypedCtx& c) { return PushImpl(c, false, true); }

// LPOP/RPOP key [count].
uint64_t PopImpl(TypedCtx& c, bool left) {
  if (c.args.size() > 3) {
    AppendArityError(c);
    return 0;
  }
  const bool has_count = c.args.size() == 3;
  int64_t count = 1;
  if (has_count && (!ParseInt64(c.args[2], &count) || count < 0)) {
    AppendError(c.out, kMustBePositive);
    return 0;
  }
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  if (!l.found) {
    if (has_count) {
      c.out->append("*-1\r\n");
    } else {
      AppendNull(c.out);
    }
    return ReadSeq(c);
  }
  if (has_count && count == 0) {
    AppendArrayHeader(c.out, 0);
    return ReadSeq(c);
  }
  const size_t n = std::min<size_t>(static_cast<size_t>(count), l.value.size());
  std::string reply;
  if (has_count) AppendArrayHeader(&reply, static_cast<int64_t>(n));
  for (size_t i = 0; i < n; ++i) {
    if (left) {
      AppendBulk(&reply, l.value.front());
      l.value.PopFront();
    } else {
      AppendBulk(&reply, l.value.back());
      l.value.PopBack();
    }
  }
  uint64_t seq;
  if (!SaveList(c, c.args[1], l, &seq)) return 0;
  c.out->append(reply);
  return seq;
}

uint64_t LPop(TypedCtx& c) { return PopImpl(c, true); }
uint64_t RPop(TypedCtx& c) { return PopImpl(c, false); }

uint64_t LLen(TypedCtx& c) {
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(l.value.size()));
  return ReadSeq(c);
}

uint64_t LRange(TypedCtx& c) {
  int64_t start, stop;
  if (!ParseIntArg(c, 2, &start) || !ParseIntArg(c, 3, &stop)) return 0;
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  int64_t from, to;
  if (!NormalizeRange(start, stop, static_cast<int64_t>(l.value.size()), &from, &to)) {
    AppendArrayHeader(c.out, 0);
    return ReadSeq(c);
  }
  AppendArrayHeader(c.out, to - from + 1);
  for (int64_t i = from; i <= to; ++i) AppendBulk(c.out, l.value[static_cast<size_t>(i)]);
  return ReadSeq(c);
}

// Resolves a possibly negative index; false if out of range.
bool ResolveIndex(int64_t index, size_t len, size_t* out) {
  const int64_t n = static_cast<int64_t>(len);
  if (index < 0) index += n;
  if (index < 0 || index >= n) return false;
  *out = static_cast<size_t>(index);
  return true;
}

uint64_t LIndex(TypedCtx& c) {
  int64_t index;
  if (!ParseIntArg(c, 2, &index)) return 0;
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  size_t i;
  if (ResolveIndex(index, l.value.size(), &i)) {
    AppendBulk(c.out, l.value[i]);
  } else {
    AppendNull(c.out);
  }
  return ReadSeq(c);
}

uint64_t LSet(TypedCtx& c) {
  int64_t index;
  if (!ParseIntArg(c, 2, &index)) return 0;
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  if (!l.found) {
    AppendError(c.out, "ERR no such key");
    return ReadSeq(c);
  }
  size_t i;
  if (!ResolveIndex(index, l.value.size(), &i)) {
    AppendError(c.out, "ERR index out of range");
    return ReadSeq(c);
  }
  l.value.mutable_items()[i] = std::string(c.args[3]);
  uint64_t seq;
  if (!SaveList(c, c.args[1], l, &seq)) return 0;
  AppendSimple(c.out, "OK");
  return seq;
}

// LREM key count element: count > 0 from the head, < 0 from the tail, 0 all.
uint64_t LRem(TypedCtx& c) {
  int64_t count;
  if (!ParseIntArg(c, 2, &count)) return 0;
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  const std::string_view target = c.args[3];
  const uint64_t limit = count == 0 ? UINT64_MAX
                                    : (count < 0 ? static_cast<uint64_t>(-(count + 1)) + 1
                                                 : static_cast<uint64_t>(count));
  uint64_t removed = 0;
  std::deque<std::string> kept;
  std::deque<std::string>& items = l.value.mutable_items();
  if (count >= 0) {
    for (auto& e : items) {
      if (removed < limit && e == target) {
        ++removed;
      } else {
        kept.push_back(std::move(e));
      }
    }
  } else {
    for (auto it = items.rbegin(); it != items.rend(); ++it) {
      if (removed < limit && *it == target) {
        ++removed;
      } else {
        kept.push_front(std::move(*it));
      }
    }
  }
  if (removed == 0) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  items = std::move(kept);
  uint64_t seq;
  if (!SaveList(c, c.args[1], l, &seq)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(removed));
  return seq;
}

uint64_t LTrim(TypedCtx& c) {
  int64_t start, stop;
  if (!ParseIntArg(c, 2, &start) || !ParseIntArg(c, 3, &stop)) return 0;
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  if (!l.found) {
    AppendSimple(c.out, "OK");
    return ReadSeq(c);
  }
  int64_t from, to;
  // Trimming is pops at both ends, so it is logged as a small delta (the
  // capped-list pattern LPUSH + LTRIM stays cheap on long lists).
  const int64_t len = static_cast<int64_t>(l.value.size());
  int64_t pop_front = len, pop_back = 0;
  if (NormalizeRange(start, stop, len, &from, &to)) {
    pop_front = from;
    pop_back = len - 1 - to;
  }
  for (int64_t i = 0; i < pop_front; ++i) l.value.PopFront();
  for (int64_t i = 0; i < pop_back; ++i) l.value.PopBack();
  uint64_t seq;
  if (!SaveList(c, c.args[1], l, &seq)) return 0;
  AppendSimple(c.out, "OK");
  return seq;
}

uint64_t LInsert(TypedCtx& c) {
  const bool before = EqualsIgnoreCase(c.args[2], "before");
  if (!before && !EqualsIgnoreCase(c.args[2], "after")) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  if (!l.found) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  auto found = std::find(l.value.begin(), l.value.end(), c.args[3]);
  if (found == l.value.end()) {
    AppendInteger(c.out, -1);
    return ReadSeq(c);
  }
  const auto at = found - l.value.begin();
  std::deque<std::string>& items = l.value.mutable_items();
  items.insert(items.begin() + at + (before ? 0 : 1), std::string(c.args[4]));
  uint64_t seq;
  if (!SaveList(c, c.args[1], l, &seq)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(l.value.size()));
  return seq;
}

// Moves one element from src (left or right end) to dst (left or right end)
// as one batch; replies with the element or nil.
uint64_t MoveImpl(TypedCtx& c, std::string_view src_key, std::string_view dst_key, bool from_left,
                  bool to_left) {
  Loaded<ListValue> src;
  if (!LoadList(c, src_key, &src)) return 0;
  if (!src.found) {
    AppendNull(c.out);
    return ReadSeq(c);
  }
  Loaded<ListValue> dst;
  if (!LoadList(c, dst_key, &dst)) return 0;
  std::string element = from_left ? src.value.front() : src.value.back();
  if (from_left) {
    src.value.PopFront();
  } else {
    src.value.PopBack();
  }
  Loaded<ListValue>* target = &dst;
  if (src_key == dst_key) target = &src;  // rotation within one list
  if (to_left) {
    target->value.PushFront(element);
  } else {
    target->value.PushBack(element);
  }
  WriteBatch b;
  std::deque<std::string> storage;
  StageList(src_key, src, &b, &storage);
  if (src_key != dst_key) StageList(dst_key, dst, &b, &storage);
  uint64_t seq;
  if (!ApplyBatch(c, b, &seq)) return 0;
  AppendBulk(c.out, element);
  return seq;
}

bool ParseSide(std::string_view s, bool* left) {
  if (EqualsIgnoreCase(s, "left")) {
    *left = true;
    return true;
  }
  if (EqualsIgnoreCase(s, "right")) {
    *left = false;
    return true;
  }
  return false;
}

uint64_t LMove(TypedCtx& c) {
  bool from_left, to_left;
  if (!ParseSide(c.args[3], &from_left) || !ParseSide(c.args[4], &to_left)) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  return MoveImpl(c, c.args[1], c.args[2], from_left, to_left);
}

uint64_t RPopLPush(TypedCtx& c) { return MoveImpl(c, c.args[1], c.args[2], false, true); }

// LPOS key element [RANK rank] [COUNT num] [MAXLEN len].
uint64_t LPos(TypedCtx& c) {
  int64_t rank = 1, count = -1, maxlen = 0;  // count -1: single reply
  for (size_t i = 3; i < c.args.size(); i += 2) {
    if (i + 1 >= c.args.size()) {
      AppendError(c.out, kSyntax);
      return 0;
    }
    int64_t v;
    if (!ParseInt64(c.args[i + 1], &v)) {
      AppendError(c.out, kNotInteger);
      return 0;
    }
    if (EqualsIgnoreCase(c.args[i], "rank")) {
      if (v == 0 || v == INT64_MIN) {
        AppendError(c.out, v == 0 ? "ERR RANK can't be zero: use 1 to start from the first "
                                    "match, 2 from the second ... or use negative to start from "
                                    "the end of the list"
                                  : "ERR value is out of range");
        return 0;
      }
      rank = v;
    } else if (EqualsIgnoreCase(c.args[i], "count")) {
      if (v < 0) {
        AppendError(c.out, "ERR COUNT can't be negative");
        return 0;
      }
      count = v;
    } else if (EqualsIgnoreCase(c.args[i], "maxlen")) {
      if (v < 0) {
        AppendError(c.out, "ERR MAXLEN can't be negative");
        return 0;
      }
      maxlen = v;
    } else {
      AppendError(c.out, kSyntax);
      return 0;
    }
  }
  Loaded<ListValue> l;
  if (!LoadList(c, c.args[1], &l)) return 0;
  std::vector<int64_t> matches;
  const int64_t n = static_cast<int64_t>(l.value.size());
  const uint64_t want = count == 0 ? UINT64_MAX : (count < 0 ? 1 : static_cast<uint64_t>(count));
  int64_t skip = (rank > 0 ? rank : -rank) - 1;
  for (int64_t step = 0; step < n && (maxlen == 0 || step < maxlen) && matches.size() < want;
       ++step) {
    const int64_t i = rank > 0 ? step : n - 1 - step;
    if (l.value[static_cast<size_t>(i)] != c.args[2]) continue;
    if (skip > 0) {
      --skip;
      continue;
    }
    matches.push_back(i);
  }
  if (count < 0) {
    if (matches.empty()) {
      AppendNull(c.out);
    } else {
      AppendInteger(c.out, matches[0]);
    }
  } else {
    AppendArrayHeader(c.out, static_cast<int64_t>(matches.size()));
    for (int64_t m : matches) AppendInteger(c.out, m);
  }
  return ReadSeq(c);
}

// BLPOP/BRPOP key [key ...] timeout: pops from the first non-empty list
// (WRONGTYPE for a key of another type met before one), else blocks.
uint64_t BlockingPop(TypedCtx& c, bool left) {
  int64_t timeout_ms;
  if (!ParseBlockTimeout(c, c.args.size() - 1, &timeout_ms)) return 0;
  std::vector<std::string> keys;
  for (size_t i = 1; i + 1 < c.args.size(); ++i) {
    Loaded<ListValue> l;
    if (!LoadList(c, c.args[i], &l)) return 0;
    if (!l.found) {
      keys.emplace_back(c.args[i]);
      continue;
    }
    std::string element = left ? l.value.front() : l.value.back();
    if (left) {
      l.value.PopFront();
    } else {
      l.value.PopBack();
    }
    uint64_t seq;
    if (!SaveList(c, c.args[i], l, &seq)) return 0;
    AppendArrayHeader(c.out, 2);
    AppendBulk(c.out, c.args[i]);
    AppendBulk(c.out, element);
    return seq;
  }
  BlockOrTimeOut(c, std::move(keys), ValueType::kList, timeout_ms, /*null_array=*/true);
  return ReadSeq(c);
}

uint64_t BLPop(TypedCtx& c) { return BlockingPop(c, true); }
uint64_t BRPop(TypedCtx& c) { return BlockingPop(c, false); }

// BLMOVE/BRPOPLPUSH: LMOVE once the source exists, else blocks on it.
uint64_t BlockingMove(TypedCtx& c, bool from_left, bool to_left, size_t timeout_arg) {
  int64_t timeout_ms;
  if (!ParseBlockTimeout(c, timeout_arg, &timeout_ms)) return 0;
  auto info = c.store->Lookup(c.args[1]);
  if (!info.ok()) {
    AppendStoreError(c.out, info.status());
    return 0;
  }
  if (info->has_value()) return MoveImpl(c, c.args[1], c.args[2], from_left, to_left);
  BlockOrTimeOut(c, {std::string(c.args[1])}, ValueType::kList, timeout_ms,
                 /*null_array=*/false);
  return ReadSeq(c);
}

uint64_t BLMove(TypedCtx& c) {
  bool from_left, to_left;
  if (!ParseSide(c.args[3], &from_left) || !ParseSide(c.args[4], &to_left)) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  return BlockingMove(c, from_left, to_left, 5);
}

uint64_t BRPopLPush(TypedCtx& c) { return BlockingMove(c, false, true, 3); }

// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] and BLMPOP timeout
// numkeys ...: pops up to count elements from the first list among the keys
// (reply [key, [element, ...]]); none: nil, or BLMPOP blocks.
uint64_t MultiPopImpl(TypedCtx& c, bool blocking) {
  MultiPopArgs a;
  if (!ParseMultiPopArgs(c, blocking ? 2 : 1, "left", "right", &a)) return 0;
  int64_t timeout_ms = 0;
  if (blocking && !ParseBlockTimeout(c, 1, &timeout_ms)) return 0;
  std::vector<std::string> keys;
  for (size_t i = a.first_key; i < a.first_key + a.numkeys; ++i) {
    Loaded<ListValue> l;
    if (!LoadList(c, c.args[i], &l)) return 0;
    if (!l.found) {
      keys.emplace_back(c.args[i]);
      continue;
    }
    const size_t n = std::min<uint64_t>(static_cast<uint64_t>(a.count), l.value.size());
    std::string reply;
    AppendArrayHeader(&reply, 2);
    AppendBulk(&reply, c.args[i]);
    AppendArrayHeader(&reply, static_cast<int64_t>(n));
    for (size_t k = 0; k < n; ++k) {
      if (a.second) {
        AppendBulk(&reply, l.value.back());
        l.value.PopBack();
      } else {
        AppendBulk(&reply, l.value.front());
        l.value.PopFront();
      }
    }
    uint64_t seq;
    if (!SaveList(c, c.args[i], l, &seq)) return 0;
    c.out->append(reply);
    return seq;
  }
  if (!blocking) {
    c.out->append("*-1\r\n");
    return ReadSeq(c);
  }
  BlockOrTimeOut(c, std::move(keys), ValueType::kList, timeout_ms, /*null_array=*/true);
  return ReadSeq(c);
}

uint64_t LMPop(TypedCtx& c) { return MultiPopImpl(c, false); }
uint64_t BLMPop(TypedCtx& c) { return MultiPopImpl(c, true); }

constexpr TypedCommand kListCommands[] = {
    {"lpush", -3, &LPush, true},        {"rpush", -3, &RPush, true},
    {"lpushx", -3, &LPushX, true},      {"rpushx", -3, &RPushX, true},
    {"lpop", -2, &LPop, true},          {"rpop", -2, &RPop, true},
    {"llen", 2, &LLen, false},          {"lrange", 4, &LRange, false},
    {"lindex", 3, &LIndex, false},      {"lset", 4, &LSet, true},
    {"lrem", 4, &LRem, true},           {"ltrim", 4, &LTrim, true},
    {"linsert", 5, &LInsert, true},     {"lmove", 5, &LMove, true},
    {"rpoplpush", 3, &RPopLPush, true}, {"lpos", -3, &LPos, false},
    {"blpop", -3, &BLPop, true},        {"brpop", -3, &BRPop, true},
    {"blmove", 6, &BLMove, true},       {"brpoplpush", 4, &BRPopLPush, true},
    {"lmpop", -4, &LMPop, true},        {"blmpop", -5, &BLMPop, true},
};

}  // namespace

std::span<const TypedCommand> ListCommands() { return kListCommands; }

}  // namespace cosmos::kv
