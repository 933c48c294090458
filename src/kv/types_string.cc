// The rest of the string family (INCRBYFLOAT, GETEX, GETRANGE/SUBSTR,
// SETRANGE, SETBIT/GETBIT/BITCOUNT/BITPOS, LCS) and keyspace commands that
// need no session (RANDOMKEY, TOUCH, OBJECT), with Redis 7.0's replies and
// error texts. Every write is one batch, durable before its reply; writes
// keep the key's TTL as Redis does.
#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>

#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/typed_commands.h"

namespace cosmos::kv {
namespace {

// A string key as read by a handler.
struct StringKey {
  bool found = false;
  int64_t expiry_ms = 0;
  std::string value;
};

// Reads `key` as a string; false after appending WRONGTYPE or a store error.
bool LoadString(TypedCtx& c, std::string_view key, StringKey* s) {
  auto info = c.store->Lookup(key);
  if (!info.ok()) {
    AppendStoreError(c.out, info.status());
    return false;
  }
  if (!info->has_value()) return true;
  if ((*info)->type != ValueType::kString) {
    AppendError(c.out, kWrongType);
    return false;
  }
  auto r = c.store->Get(key, &s->value);
  if (!r.ok()) {
    AppendStoreError(c.out, r.status());
    return false;
  }
  s->found = *r;
  s->expiry_ms = (*info)->expiry_ms;
  return true;
}

// Writes `value` under `key` with `expiry_ms`; false after the store error.
bool SaveString(TypedCtx& c, std::string_view key, std::string_view value, int64_t expiry_ms,
                uint64_t* seq) {
  WriteBatch b;
  b.Put(key, value, expiry_ms);
  return ApplyBatch(c, b, seq);
}

constexpr std::string_view kTooLong =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

// Redis string2ld: a long double, infinities included (they fail later).
bool ParseFloatOrInf(std::string_view s, long double* v) {
  double d;
  if (ParseLongDouble(s, v)) return true;
  if (!ParseDouble(s, &d)) return false;
  *v = d;
  return true;
}

uint64_t IncrByFloat(TypedCtx& c) {
  StringKey s;
  if (!LoadString(c, c.args[1], &s)) return 0;
  long double value = 0, incr;
  if ((s.found && !ParseFloatOrInf(s.value, &value)) || !ParseFloatOrInf(c.args[2], &incr)) {
    AppendError(c.out, kNotFloat);
    return ReadSeq(c);
  }
  value += incr;
  if (std::isnan(value) || std::isinf(value)) {
    AppendError(c.out, "ERR increment would produce NaN or Infinity");
    return ReadSeq(c);
  }
  const std::string text = FormatLongDouble(value);
  uint64_t seq;
  if (!SaveString(c, c.args[1], text, s.expiry_ms, &seq)) return 0;
  AppendBulk(c.out, text);
  return seq;
}

// GETEX key [EX s | PX ms | EXAT unix-s | PXAT unix-ms | PERSIST].
uint64_t GetEx(TypedCtx& c) {
  std::string_view kind;  // "ex", "px", "exat", "pxat", "persist" or empty
  std::string_view amount;
  for (size_t i = 2; i < c.args.size(); ++i) {
    const std::string opt = Lower(c.args[i]);
    const bool timed = opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat";
    if (timed && i + 1 < c.args.size() && (kind.empty() || kind == opt)) {
      kind = opt == "ex" ? "ex" : opt == "px" ? "px" : opt == "exat" ? "exat" : "pxat";
      amount = c.args[++i];
    } else if (opt == "persist" && (kind.empty() || kind == "persist")) {
      kind = "persist";
    } else {
      AppendError(c.out, kSyntax);
      return 0;
    }
  }
  StringKey s;
  if (!LoadString(c, c.args[1], &s)) return 0;
  if (!s.found) {
    AppendNull(c.out);
    return ReadSeq(c);
  }
  const int64_t now = c.store->NowMs();
  int64_t expiry = s.expiry_ms;
  bool remove = false;
  if (kind == "persist") {
    expiry = 0;
  } else if (!kind.empty()) {
    int64_t v;
    if (!ParseInt64(amount, &v)) {
      AppendError(c.out, kNotInteger);
      return 0;
    }
    const bool seconds = kind == "ex" || kind == "exat";
    const bool relative = kind == "ex" || kind == "px";
    if (v <= 0 || (seconds && v > INT64_MAX / 1000) ||
        (relative && (seconds ? v * 1000 : v) > INT64_MAX - now)) {
      AppendError(c.out, "ERR invalid expire time in 'getex' command");
      return 0;
    }
    const int64_t ms = seconds ? v * 1000 : v;
    expiry = relative ? now + ms : ms;
    remove = !relative && expiry <= now;  // EXAT/PXAT in the past delete the key
  }
  uint64_t seq = ReadSeq(c);
  if (remove || expiry != s.expiry_ms) {
    WriteBatch b;
    if (remove) {
      b.Delete(c.args[1]);
    } else {
      b.Expire(c.args[1], expiry);
    }
    if (!ApplyBatch(c, b, &seq)) return 0;
  }
  AppendBulk(c.out, s.value);
  return seq;
}

// GETRANGE/SUBSTR key start end.
uint64_t GetRange(TypedCtx& c) {
  int64_t start, end;
  if (!ParseIntArg(c, 2, &start) || !ParseIntArg(c, 3, &end)) return 0;
  StringKey s;
  if (!LoadString(c, c.args[1], &s)) return 0;
  const int64_t len = static_cast<int64_t>(s.value.size());
  if (start < 0 && end < 0 && start > end) {
    AppendBulk(c.out, "");
    return ReadSeq(c);
  }
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  start = std::max<int64_t>(start, 0);
  end = std::max<int64_t>(end, 0);
  if (end >= len) end = len - 1;
  if (start > end || len == 0) {
    AppendBulk(c.out, "");
  } else {
    AppendBulk(c.out, std::string_view(s.value).substr(static_cast<size_t>(start),
                                                       static_cast<size_t>(end - start + 1)));
  }
  return ReadSeq(c);
}

uint64_t SetRange(TypedCtx& c) {
  int64_t offset;
  if (!ParseIntArg(c, 2, &offset)) return 0;
  if (offset < 0) {
    AppendError(c.out, "ERR offset is out of range");
    return 0;
  }
  StringKey s;
  if (!LoadString(c, c.args[1], &s)) return 0;
  const std::string_view piece = c.args[3];
  if (piece.empty()) {
    AppendInteger(c.out, static_cast<int64_t>(s.value.size()));
    return ReadSeq(c);
  }
  if (static_cast<uint64_t>(offset) + piece.size() > c.store->options().max_value_size) {
    AppendError(c.out, kTooLong);
    return ReadSeq(c);
  }
  const size_t end = static_cast<size_t>(offset) + piece.size();
  if (s.value.size() < end) s.value.resize(end, '\0');
  s.value.replace(static_cast<size_t>(offset), piece.size(), piece);
  uint64_t seq;
  if (!SaveString(c, c.args[1], s.value, s.expiry_ms, &seq)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(s.value.size()));
  return seq;
}

// A bit offset argument: 0 <= offset < 8 * proto-max-bulk-len.
bool ParseBitOffset(TypedCtx& c, size_t i, uint64_t* offset) {
  int64_t v;
  if (!ParseInt64(c.args[i], &v) || v < 0 ||
      static_cast<uint64_t>(v >> 3) >= c.store->options().max_value_size) {
    AppendError(c.out, "ERR bit offset is not an integer or out of range");
    return false;
  }
  *offset = static_cast<uint64_t>(v);
  return true;
}

bool BitAt(std::string_view s, uint64_t bit) {
  const uint64_t byte = bit >> 3;
  return byte < s.size() && (static_cast<uint8_t>(s[byte]) >> (7 - (bit & 7))) & 1;
}

uint64_t SetBit(TypedCtx& c) {
  uint64_t offset;
  if (!ParseBitOffset(c, 2, &offset)) return 0;
  int64_t on;
  if (!ParseInt64(c.args[3], &on) || (on & ~int64_t{1}) != 0) {
    AppendError(c.out, "ERR bit is not an integer or out of range");
    return 0;
  }
  StringKey s;
  if (!LoadString(c, c.args[1], &s)) return 0;
  const bool old = BitAt(s.value, offset);
  const size_t byte = static_cast<size_t>(offset >> 3);
  if (s.value.size() <= byte) s.value.resize(byte + 1, '\0');
  const uint8_t mask = static_cast<uint8_t>(1u << (7 - (offset & 7)));
  uint8_t b = static_cast<uint8_t>(s.value[byte]);
  b = on ? (b | mask) : (b & ~mask);
  s.value[byte] = static_cast<char>(b);
  uint64_t seq;
  if (!SaveString(c, c.args[1], s.value, s.expiry_ms, &seq)) return 0;
  AppendInteger(c.out, old ? 1 : 0);
  return seq;
}

uint64_t GetBit(TypedCtx& c) {
  uint64_t offset;
  if (!ParseBitOffset(c, 2, &offset)) return 0;
  StringKey s;
  if (!LoadString(c, c.args[1], &s)) return 0;
  AppendInteger(c.out, BitAt(s.value, offset) ? 1 : 0);
  return ReadSeq(c);
}

// Normalises a BITCOUNT/BITPOS range over a string of `len` bytes into an
// inclusive bit range [*first, *last]; false if it is empty. `bit_unit`:
// start and end count bits, else bytes.
bool BitRange(int64_t start, int64_t end, int64_t len, bool bit_unit, int64_t* first,
              int64_t* last) {
  const int64_t total = bit_unit ? len * 8 : len;
  if (start < 0) start = total + start;
  if (end < 0) end = total + end;
  start = std::max<int64_t>(start, 0);
  end = std::max<int64_t>(end, 0);
  if (end >= total) end = total - 1;
  if (start > end) return false;
  *first = bit_unit ? start : start * 8;
  *last = bit_unit ? end : end * 8 + 7;
  return true;
}

// Parses the BYTE|BIT unit in args[i]; false after appending a syntax error.
bool ParseBitUnit(TypedCtx& c, size_t i, bool* bit_unit) {
  if (EqualsIgnoreCase(c.args[i], "bit")) {
    *bit_unit = true;
  } else if (EqualsIgnoreCase(c.args[i], "byte")) {
    *bit_unit = false;
  } else {
    AppendError(c.out, kSyntax);
    return false;
  }
  return true;
}

// BITCOUNT key [start end [BYTE|BIT]] (Redis 7.0 looks the key up first).
uint64_t BitCount(TypedCtx& c) {
  StringKey s;
  if (!LoadString(c, c.args[1], &s)) return 0;
  if (!s.found) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  const int64_t len = static_cast<int64_t>(s.value.size());
  int64_t first = 0, last = len * 8 - 1;
  bool nonempty = len > 0;
  if (c.args.size() == 4 || c.args.size() == 5) {
    int64_t start, end;
    bool bit_unit = false;
    if (!ParseIntArg(c, 2, &start) || !ParseIntArg(c, 3, &end)) return 0;
    if (c.args.size() == 5 && !ParseBitUnit(c, 4, &bit_unit)) return 0;
    nonempty = !(start < 0 && end < 0 && start > end) &&
               BitRange(start, end, len, bit_unit, &first, &last);
  } else if (c.args.size() != 2) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  int64_t count = 0;
  if (nonempty) {
    int64_t b = first;
    for (; b <= last && (b & 7) != 0; ++b) count += BitAt(s.value, static_cast<uint64_t>(b));
    for (; b + 7 <= last; b += 8) {
      count += std::popcount(static_cast<uint8_t>(s.value[static_cast<size_t>(b >> 3)]));
    }
    for (; b <= last; ++b) count += BitAt(s.value, static_cast<uint64_t>(b));
  }
  AppendInteger(c.out, count);
  return ReadSeq(c);
}

// BITPOS key bit [start [end [BYTE|BIT]]].
uint64_t BitPos(TypedCtx& c) {
  int64_t bit;
  if (!ParseIntArg(c, 2, &bit)) return 0;
  if (bit != 0 && bit != 1) {
    AppendError(c.out, "ERR The bit argument must be 1 or 0.");
    return 0;
  }
  StringKey s;
  if (!LoadString(c, c.args[1], &s)) return 0;
  if (!s.found) {  // an infinite run of zero bits
    AppendInteger(c.out, bit ? -1 : 0);
    return ReadSeq(c);
  }
  const int64_t len = static_cast<int64_t>(s.value.size());
  bool end_given = false, bit_unit = false;
  int64_t start = 0, end = len - 1;
  if (c.args.size() >= 4 && c.args.size() <= 6) {
    if (!ParseIntArg(c, 3, &start)) return 0;
    if (c.args.size() == 6 && !ParseBitUnit(c, 5, &bit_unit)) return 0;
    if (c.args.size() >= 5) {
      if (!ParseIntArg(c, 4, &end)) return 0;
      end_given = true;
    } else {
      end = bit_unit ? len * 8 - 1 : len - 1;
    }
  } else if (c.args.size() != 3) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  int64_t first, last;
  int64_t pos = -1;
  if (BitRange(start, end, len, bit_unit, &first, &last)) {
    for (int64_t b = first; b <= last; ++b) {
      if (BitAt(s.value, static_cast<uint64_t>(b)) == (bit == 1)) {
        pos = b;
        break;
      }
    }
    // Looking for a 0 without an explicit end: the string continues with
    // zero bits past its end, as in Redis.
    if (pos < 0 && bit == 0 && !end_given) pos = last + 1;
  }
  AppendInteger(c.out, pos);
  return ReadSeq(c);
}

// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN], Redis 7.0's
// dynamic programme and its walk back through the table (so IDX ranges
// come out in Redis's order).
uint64_t Lcs(TypedCtx& c) {
  StringKey sa, sb;
  for (auto [key, s] : {std::pair{c.args[1], &sa}, std::pair{c.args[2], &sb}}) {
    auto info = c.store->Lookup(key);
    if (!info.ok()) {
      AppendStoreError(c.out, info.status());
      return 0;
    }
    if (info->has_value() && (*info)->type != ValueType::kString) {
      AppendError(c.out, "ERR The specified keys must contain string values");
      return 0;
    }
    if (!LoadString(c, key, s)) return 0;
  }
  bool get_idx = false, get_len = false, with_match_len = false;
  int64_t min_match_len = 0;
  for (size_t i = 3; i < c.args.size(); ++i) {
    if (EqualsIgnoreCase(c.args[i], "idx")) {
      get_idx = true;
    } else if (EqualsIgnoreCase(c.args[i], "len")) {
      get_len = true;
    } else if (EqualsIgnoreCase(c.args[i], "withmatchlen")) {
      with_match_len = true;
    } else if (EqualsIgnoreCase(c.args[i], "minmatchlen") && i + 1 < c.args.size()) {
      if (!ParseIntArg(c, i + 1, &min_match_len)) return 0;
      min_match_len = std::max<int64_t>(min_match_len, 0);
      ++i;
    } else {
      AppendError(c.out, kSyntax);
      return 0;
    }
  }
  if (get_idx && get_len) {
    AppendError(c.out, "ERR If you want both the length and indexes, please just use IDX.");
    return 0;
  }
  const std::string& a = sa.value;
  const std::string& b = sb.value;
  const uint64_t cells = (static_cast<uint64_t>(a.size()) + 1) * (b.size() + 1);
  if (cells * sizeof(uint32_t) > c.store->options().max_value_size) {
    AppendError(c.out,
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    return 0;
  }
  const uint32_t alen = static_cast<uint32_t>(a.size()), blen = static_cast<uint32_t>(b.size());
  std::vector<uint32_t> table(cells, 0);
  auto at = [&](uint32_t i, uint32_t j) -> uint32_t& { return table[j + i * (blen + 1)]; };
  for (uint32_t i = 1; i <= alen; ++i) {
    for (uint32_t j = 1; j <= blen; ++j) {
      at(i, j) = a[i - 1] == b[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
    }
  }
  const uint32_t total = at(alen, blen);
  std::string result(total, '\0');
  std::string ranges;
  int64_t range_count = 0;
  uint32_t idx = total, i = alen, j = blen;
  uint32_t a_start = alen, a_end = 0, b_start = 0, b_end = 0;  // a_start == alen: no range
  while (i > 0 && j > 0) {
    bool emit = false;
    if (a[i - 1] == b[j - 1]) {
      result[idx - 1] = a[i - 1];
      if (a_start == alen) {
        a_start = a_end = i - 1;
        b_start = b_end = j - 1;
      } else if (a_start == i && b_start == j) {  // extends the range backwards
        --a_start;
        --b_start;
      } else {
        emit = true;
      }
      if (a_start == 0 || b_start == 0) emit = true;
      --idx;
      --i;
      --j;
    } else {
      if (at(i - 1, j) > at(i, j - 1)) {
        --i;
      } else {
        --j;
      }
      if (a_start != alen) emit = true;
    }
    if (emit) {
      const int64_t match_len = static_cast<int64_t>(a_end) - a_start + 1;
      if (min_match_len == 0 || match_len >= min_match_len) {
        AppendArrayHeader(&ranges, with_match_len ? 3 : 2);
        AppendArrayHeader(&ranges, 2);
        AppendInteger(&ranges, a_start);
        AppendInteger(&ranges, a_end);
        AppendArrayHeader(&ranges, 2);
        AppendInteger(&ranges, b_start);
        AppendInteger(&ranges, b_end);
        if (with_match_len) AppendInteger(&ranges, match_len);
        ++range_count;
      }
      a_start = alen;
    }
  }
  if (get_idx) {
    AppendArrayHeader(c.out, 4);  // RESP2 form of Redis's map
    AppendBulk(c.out, "matches");
    AppendArrayHeader(c.out, range_count);
    c.out->append(ranges);
    AppendBulk(c.out, "len");
    AppendInteger(c.out, total);
  } else if (get_len) {
    AppendInteger(c.out, total);
  } else {
    AppendBulk(c.out, result);
  }
  return ReadSeq(c);
}

uint64_t RandomKey(TypedCtx& c) {
  auto key = c.store->RandomKey();
  if (!key.ok()) {
    AppendStoreError(c.out, key.status());
    return 0;
  }
  if (key->has_value()) {
    AppendBulk(c.out, **key);
  } else {
    AppendNull(c.out);
  }
  return ReadSeq(c);
}

// TOUCH key [key ...]: cosmos-kv keeps no access times, so it only counts.
uint64_t Touch(TypedCtx& c) {
  int64_t n = 0;
  for (size_t i = 1; i < c.args.size(); ++i) {
    auto info = c.store->Lookup(c.args[i]);
    if (!info.ok()) {
      AppendStoreError(c.out, info.status());
      return 0;
    }
    if (info->has_value()) ++n;
  }
  AppendInteger(c.out, n);
  return ReadSeq(c);
}

bool IsInteger(std::string_view s) {
  int64_t v;
  return ParseInt64(s, &v);
}

// The encoding Redis 7.0 would report for this value with its default
// thresholds (cosmos-kv's own encoding is the log record, docs/kv.md).
std::string_view RedisEncoding(TypedCtx& c, std::string_view key, ValueType type, bool* ok) {
  *ok = true;
  switch (type) {
    case ValueType::kString: {
      StringKey s;
      if (!(*ok = LoadString(c, key, &s))) return {};
      if (s.value.size() <= 20 && IsInteger(s.value)) return "int";
      return s.value.size() <= 44 ? "embstr" : "raw";
    }
    case ValueType::kList:
      return "quicklist";
    case ValueType::kHash: {
      Loaded<HashValue> h;
      if (!(*ok = LoadHash(c, key, &h))) return {};
      bool small = h.value.size() <= 128;
      for (const auto& [f, v] : h.value.entries())
        small = small && f.size() <= 64 && v.size() <= 64;
      return small ? "listpack" : "hashtable";
    }
    case ValueType::kSet: {
      Loaded<SetValue> s;
      if (!(*ok = LoadSet(c, key, &s))) return {};
      bool ints = s.value.size() <= 512;
      for (const auto& m : s.value.members()) ints = ints && IsInteger(m);
      return ints ? "intset" : "hashtable";
    }
    case ValueType::kZSet: {
      Loaded<ZSetValue> z;
      if (!(*ok = LoadZSet(c, key, &z))) return {};
      bool small = z.value.size() <= 128;
      for (const auto& e : z.value.ordered()) small = small && e.second.size() <= 64;
      return small ? "listpack" : "skiplist";
    }
  }
  return "raw";
}

// OBJECT ENCODING|REFCOUNT|FREQ key, OBJECT HELP. FREQ answers what Redis
// answers without an LFU maxmemory policy (cosmos-kv has no eviction
// policy at all). IDLETIME needs access tracking cosmos-kv does not keep:
// Redis's unknown-subcommand error.
uint64_t Object(TypedCtx& c) {
  const std::string sub = Lower(c.args[1]);
  if (sub == "help" && c.args.size() == 2) {
    const char* lines[] = {
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Print this help.",
    };
    AppendArrayHeader(c.out, static_cast<int64_t>(std::size(lines)));
    for (const char* l : lines) AppendSimple(c.out, l);
    return 0;
  }
  if (sub != "encoding" && sub != "refcount" && sub != "freq") {
    AppendError(c.out, "ERR unknown subcommand '" + std::string(c.args[1].substr(0, 128)) +
                           "'. Try OBJECT HELP.");
    return 0;
  }
  if (c.args.size() != 3) {
    AppendError(c.out, "ERR wrong number of arguments for 'object|" + sub + "' command");
    return 0;
  }
  auto info = c.store->Lookup(c.args[2]);
  if (!info.ok()) {
    AppendStoreError(c.out, info.status());
    return 0;
  }
  if (!info->has_value()) {
    AppendNull(c.out);
    return ReadSeq(c);
  }
  if (sub == "refcount") {
    AppendInteger(c.out, 1);  // values are never shared
    return ReadSeq(c);
  }
  if (sub == "freq") {
    AppendError(c.out,
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
                "Please note that when switching between policies at runtime LRU and LFU data "
                "will take some time to adjust.");
    return 0;
  }
  bool ok;
  const std::string_view encoding = RedisEncoding(c, c.args[2], (*info)->type, &ok);
  if (!ok) return 0;
  AppendBulk(c.out, encoding);
  return ReadSeq(c);
}

constexpr TypedCommand kStringCommands[] = {
    {"incrbyfloat", 3, &IncrByFloat, true}, {"getex", -2, &GetEx, true},
    {"getrange", 4, &GetRange, false},      {"substr", 4, &GetRange, false},
    {"setrange", 4, &SetRange, true},       {"setbit", 4, &SetBit, true},
    {"getbit", 3, &GetBit, false},          {"bitcount", -2, &BitCount, false},
    {"bitpos", -3, &BitPos, false},         {"lcs", -3, &Lcs, false},
    {"randomkey", 1, &RandomKey, false},    {"touch", -2, &Touch, false},
    {"object", -2, &Object, false},
};

}  // namespace

std::span<const TypedCommand> StringCommands() { return kStringCommands; }

}  // namespace cosmos::kv
