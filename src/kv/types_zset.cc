// Sorted-set commands (ZADD with NX/XX/GT/LT/CH/INCR, ZRANGE with
// BYSCORE/BYLEX/REV/LIMIT/WITHSCORES, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
// ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE, ZRANK, ZREVRANK, ZSCORE, ZMSCORE,
// ZINCRBY, ZREM, ZCARD, ZCOUNT, ZLEXCOUNT, ZPOPMIN, ZPOPMAX, ZMPOP, BZMPOP,
// ZINTERCARD, ZREMRANGEBYLEX, ZREMRANGEBYRANK,
// ZREMRANGEBYSCORE, ZSCAN, ZUNION/ZINTER/ZDIFF and their STORE forms) with
// Redis's replies and error texts.
#include <algorithm>
#include <cmath>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/typed_commands.h"

namespace cosmos::kv {
namespace {

using Element = std::pair<double, std::string>;

// A score bound: "(1.5" exclusive, "-inf", "+inf".
struct ScoreBound {
  double value = 0;
  bool exclusive = false;
};

bool ParseScoreBound(std::string_view s, ScoreBound* b) {
  b->exclusive = !s.empty() && s[0] == '(';
  if (b->exclusive) s.remove_prefix(1);
  return ParseDouble(s, &b->value);
}

bool AboveMin(double v, const ScoreBound& min) {
  return min.exclusive ? v > min.value : v >= min.value;
}
bool BelowMax(double v, const ScoreBound& max) {
  return max.exclusive ? v < max.value : v <= max.value;
}

// A lex bound: "-" (minus infinity), "+" (plus infinity), "[x", "(x".
struct LexBound {
  enum Kind { kMinusInf, kPlusInf, kValue } kind = kValue;
  std::string value;
  bool exclusive = false;
};

bool ParseLexBound(std::string_view s, LexBound* b) {
  if (s == "-") {
    b->kind = LexBound::kMinusInf;
  } else if (s == "+") {
    b->kind = LexBound::kPlusInf;
  } else if (!s.empty() && (s[0] == '[' || s[0] == '(')) {
    b->kind = LexBound::kValue;
    b->exclusive = s[0] == '(';
    b->value = std::string(s.substr(1));
  } else {
    return false;
  }
  return true;
}

bool LexAboveMin(const std::string& m, const LexBound& min) {
  if (min.kind == LexBound::kMinusInf) return true;
  if (min.kind == LexBound::kPlusInf) return false;
  return min.exclusive ? m > min.value : m >= min.value;
}
bool LexBelowMax(const std::string& m, const LexBound& max) {
  if (max.kind == LexBound::kPlusInf) return true;
  if (max.kind == LexBound::kMinusInf) return false;
  return max.exclusive ? m < max.value : m <= max.value;
}

void AppendElements(std::string* out, const std::vector<const Element*>& els, bool scores) {
  AppendArrayHeader(out, static_cast<int64_t>(els.size() * (scores ? 2 : 1)));
  for (const Element* e : els) {
    AppendBulk(out, e->second);
    if (scores) AppendBulk(out, FormatDouble(e->first));
  }
}

// ---- ZADD / ZINCRBY ----

struct AddFlags {
  bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = false;
};

// Shared by ZADD (flags parsed) and ZINCRBY (incr). `first` indexes the
// first score argument.
uint64_t AddImpl(TypedCtx& c, const AddFlags& f, size_t first) {
  const size_t rest = c.args.size() - first;
  if (rest == 0 || rest % 2 != 0) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  if (f.nx && f.xx) {
    AppendError(c.out, "ERR XX and NX options at the same time are not compatible");
    return 0;
  }
  if ((f.gt && f.nx) || (f.lt && f.nx) || (f.gt && f.lt)) {
    AppendError(c.out, "ERR GT, LT, and/or NX options at the same time are not compatible");
    return 0;
  }
  if (f.incr && rest > 2) {
    AppendError(c.out, "ERR INCR option supports a single increment-element pair");
    return 0;
  }
  std::vector<double> scores;
  for (size_t i = first; i < c.args.size(); i += 2) {
    double d;
    if (!ParseDouble(c.args[i], &d)) {
      AppendError(c.out, kNotFloat);
      return 0;
    }
    scores.push_back(d);
  }
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  int64_t added = 0, updated = 0, processed = 0;
  double last_score = 0;
  for (size_t k = 0; k < scores.size(); ++k) {
    const std::string_view member = c.args[first + 2 * k + 1];
    double score = scores[k];
    const double* cur = z.value.Score(member);
    if (cur != nullptr) {
      if (f.nx) continue;
      if (f.incr) {
        score += *cur;
        if (std::isnan(score)) {
          AppendError(c.out, "ERR resulting score is not a number (NaN)");
          return ReadSeq(c);
        }
      }
      if ((f.lt && score >= *cur) || (f.gt && score <= *cur)) continue;
      if (score != *cur) {
        z.value.Set(member, score);
        ++updated;
      }
    } else {
      if (f.xx) continue;
      z.value.Set(member, score);
      ++added;
    }
    ++processed;
    last_score = score;
  }
  uint64_t seq = ReadSeq(c);
  if (added + updated > 0 && !SaveZSet(c, c.args[1], z, &seq)) return 0;
  if (f.incr) {
    if (processed > 0) {
      AppendBulk(c.out, FormatDouble(last_score));
    } else {
      AppendNull(c.out);
    }
  } else {
    AppendInteger(c.out, f.ch ? added + updated : added);
  }
  return seq;
}

uint64_t ZAdd(TypedCtx& c) {
  AddFlags f;
  size_t i = 2;
  for (; i < c.args.size(); ++i) {
    const std::string_view a = c.args[i];
    if (EqualsIgnoreCase(a, "nx")) {
      f.nx = true;
    } else if (EqualsIgnoreCase(a, "xx")) {
      f.xx = true;
    } else if (EqualsIgnoreCase(a, "gt")) {
      f.gt = true;
    } else if (EqualsIgnoreCase(a, "lt")) {
      f.lt = true;
    } else if (EqualsIgnoreCase(a, "ch")) {
      f.ch = true;
    } else if (EqualsIgnoreCase(a, "incr")) {
      f.incr = true;
    } else {
      break;
    }
  }
  return AddImpl(c, f, i);
}

uint64_t ZIncrBy(TypedCtx& c) {
  AddFlags f;
  f.incr = true;
  return AddImpl(c, f, 2);
}

// ---- Range queries ----

enum class RangeKind { kIndex, kScore, kLex };

struct RangeQuery {
  RangeKind kind = RangeKind::kIndex;
  bool rev = false;
  bool withscores = false;
  bool has_limit = false;
  int64_t offset = 0, count = -1;
  std::string_view start, stop;  // as given (for REV forms: max first)
};

// Parses trailing options from args[from]: WITHSCORES, LIMIT o c, and (for
// ZRANGE only) BYSCORE, BYLEX, REV. Returns false after appending an error.
bool ParseRangeOptions(TypedCtx& c, size_t from, bool zrange_options, RangeQuery* q) {
  for (size_t i = from; i < c.args.size(); ++i) {
    const std::string_view a = c.args[i];
    if (EqualsIgnoreCase(a, "withscores")) {
      q->withscores = true;
    } else if (EqualsIgnoreCase(a, "limit") && i + 2 < c.args.size()) {
      if (!ParseInt64(c.args[i + 1], &q->offset) || !ParseInt64(c.args[i + 2], &q->count)) {
        AppendError(c.out, kNotInteger);
        return false;
      }
      q->has_limit = true;
      i += 2;
    } else if (zrange_options && EqualsIgnoreCase(a, "byscore")) {
      q->kind = RangeKind::kScore;
    } else if (zrange_options && EqualsIgnoreCase(a, "bylex")) {
      q->kind = RangeKind::kLex;
    } else if (zrange_options && EqualsIgnoreCase(a, "rev")) {
      q->rev = true;
    } else {
      AppendError(c.out, kSyntax);
      return false;
    }
  }
  if (q->has_limit && q->kind == RangeKind::kIndex) {
    AppendError(c.out,
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or "
                "BYLEX");
    return false;
  }
  if (q->withscores && q->kind == RangeKind::kLex) {
    AppendError(c.out, "ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    return false;
  }
  return true;
}

// Selects the elements of `z` for `q`. Returns false after appending an
// error (bad bounds).
bool Select(TypedCtx& c, const ZSetValue& z, const RangeQuery& q,
            std::vector<const Element*>* picked) {
  std::vector<const Element*> all;
  all.reserve(z.size());
  for (const Element& e : z.ordered()) all.push_back(&e);
  if (q.rev) std::reverse(all.begin(), all.end());
  if (q.kind == RangeKind::kIndex) {
    int64_t start, stop;
    if (!ParseInt64(q.start, &start) || !ParseInt64(q.stop, &stop)) {
      AppendError(c.out, kNotInteger);
      return false;
    }
    const int64_t len = static_cast<int64_t>(all.size());
    if (start < 0) start = std::max<int64_t>(len + start, 0);
    if (stop < 0) stop = len + stop;
    if (stop >= len) stop = len - 1;
    for (int64_t i = start; i <= stop && i < len; ++i)
      picked->push_back(all[static_cast<size_t>(i)]);
    return true;
  }
  // For REV forms the first bound is the maximum.
  const std::string_view lo = q.rev ? q.stop : q.start;
  const std::string_view hi = q.rev ? q.start : q.stop;
  std::vector<const Element*> in_range;
  if (q.kind == RangeKind::kScore) {
    ScoreBound min, max;
    if (!ParseScoreBound(lo, &min) || !ParseScoreBound(hi, &max)) {
      AppendError(c.out, "ERR min or max is not a float");
      return false;
    }
    for (const Element* e : all) {
      if (AboveMin(e->first, min) && BelowMax(e->first, max)) in_range.push_back(e);
    }
  } else {
    LexBound min, max;
    if (!ParseLexBound(lo, &min) || !ParseLexBound(hi, &max)) {
      AppendError(c.out, "ERR min or max not valid string range item");
      return false;
    }
    for (const Element* e : all) {
      if (LexAboveMin(e->second, min) && LexBelowMax(e->second, max)) in_range.push_back(e);
    }
  }
  if (q.has_limit && q.offset < 0) return true;
  const size_t skip = q.has_limit ? static_cast<size_t>(q.offset) : 0;
  for (size_t i = skip; i < in_range.size(); ++i) {
    if (q.has_limit && q.count >= 0 && picked->size() >= static_cast<size_t>(q.count)) break;
    picked->push_back(in_range[i]);
  }
  return true;
}

uint64_t RangeReply(TypedCtx& c, const RangeQuery& q) {
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  std::vector<const Element*> picked;
  if (!Select(c, z.value, q, &picked)) return 0;
  AppendElements(c.out, picked, q.withscores);
  return ReadSeq(c);
}

uint64_t ZRange(TypedCtx& c) {
  RangeQuery q;
  q.start = c.args[2];
  q.stop = c.args[3];
  if (!ParseRangeOptions(c, 4, true, &q)) return 0;
  return RangeReply(c, q);
}

// ZRANGEBYSCORE / ZREVRANGEBYSCORE / ZRANGEBYLEX / ZREVRANGEBYLEX / ZREVRANGE.
uint64_t RangeForm(TypedCtx& c, RangeKind kind, bool rev) {
  RangeQuery q;
  q.kind = kind;
  q.rev = rev;
  q.start = c.args[2];
  q.stop = c.args[3];
  if (!ParseRangeOptions(c, 4, false, &q)) return 0;
  return RangeReply(c, q);
}

uint64_t ZRangeByScore(TypedCtx& c) { return RangeForm(c, RangeKind::kScore, false); }
uint64_t ZRevRangeByScore(TypedCtx& c) { return RangeForm(c, RangeKind::kScore, true); }
uint64_t ZRangeByLex(TypedCtx& c) { return RangeForm(c, RangeKind::kLex, false); }
uint64_t ZRevRangeByLex(TypedCtx& c) { return RangeForm(c, RangeKind::kLex, true); }
uint64_t ZRevRange(TypedCtx& c) { return RangeForm(c, RangeKind::kIndex, true); }

// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
uint64_t ZRangeStore(TypedCtx& c) {
  RangeQuery q;
  q.start = c.args[3];
  q.stop = c.args[4];
  if (!ParseRangeOptions(c, 5, true, &q)) return 0;
  if (q.withscores) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  Loaded<ZSetValue> src;
  if (!LoadZSet(c, c.args[2], &src)) return 0;
  std::vector<const Element*> picked;
  if (!Select(c, src.value, q, &picked)) return 0;
  Loaded<ZSetValue> dst;
  for (const Element* e : picked) dst.value.Set(e->second, e->first);
  WriteBatch b;
  std::deque<std::string> storage;
  StageZSet(c.args[1], dst, &b, &storage);  // overwrites any type, or deletes
  uint64_t seq;
  if (!ApplyBatch(c, b, &seq)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(picked.size()));
  return seq;
}

// ZRANDMEMBER key [count [WITHSCORES]].
uint64_t ZRandMember(TypedCtx& c) {
  const bool has_count = c.args.size() >= 3;
  const bool with_scores = c.args.size() == 4 && EqualsIgnoreCase(c.args[3], "withscores");
  if (c.args.size() > 4 || (c.args.size() == 4 && !with_scores)) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  int64_t count = 1;
  if (has_count && !ParseRandomCount(c, 2, &count)) return 0;
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  std::vector<const Element*> all;
  for (const Element& e : z.value.ordered()) all.push_back(&e);
  std::vector<const Element*> picked;
  for (size_t i : PickIndexes(all.size(), count)) picked.push_back(all[i]);
  if (!has_count) {
    if (picked.empty()) {
      AppendNull(c.out);
    } else {
      AppendBulk(c.out, picked[0]->second);
    }
    return ReadSeq(c);
  }
  AppendElements(c.out, picked, with_scores);
  return ReadSeq(c);
}

// ZCOUNT / ZLEXCOUNT key min max.
uint64_t CountImpl(TypedCtx& c, RangeKind kind) {
  RangeQuery q;
  q.kind = kind;
  q.start = c.args[2];
  q.stop = c.args[3];
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  std::vector<const Element*> picked;
  if (!Select(c, z.value, q, &picked)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(picked.size()));
  return ReadSeq(c);
}

uint64_t ZCount(TypedCtx& c) { return CountImpl(c, RangeKind::kScore); }
uint64_t ZLexCount(TypedCtx& c) { return CountImpl(c, RangeKind::kLex); }

// ZREMRANGEBYRANK / ZREMRANGEBYSCORE key a b.
uint64_t RemRangeImpl(TypedCtx& c, RangeKind kind) {
  RangeQuery q;
  q.kind = kind;
  q.start = c.args[2];
  q.stop = c.args[3];
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  std::vector<const Element*> picked;
  if (!Select(c, z.value, q, &picked)) return 0;
  if (picked.empty()) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  std::vector<std::string> members;
  for (const Element* e : picked) members.push_back(e->second);
  for (const auto& m : members) z.value.Erase(m);
  uint64_t seq;
  if (!SaveZSet(c, c.args[1], z, &seq)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(members.size()));
  return seq;
}

uint64_t ZRemRangeByRank(TypedCtx& c) { return RemRangeImpl(c, RangeKind::kIndex); }
uint64_t ZRemRangeByScore(TypedCtx& c) { return RemRangeImpl(c, RangeKind::kScore); }
uint64_t ZRemRangeByLex(TypedCtx& c) { return RemRangeImpl(c, RangeKind::kLex); }

// ---- Point commands ----

uint64_t RankImpl(TypedCtx& c, bool rev) {
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  if (z.value.Score(c.args[2]) == nullptr) {
    AppendNull(c.out);
  } else {
    const size_t rank = z.value.Rank(c.args[2]);
    AppendInteger(c.out, static_cast<int64_t>(rev ? z.value.size() - 1 - rank : rank));
  }
  return ReadSeq(c);
}

uint64_t ZRank(TypedCtx& c) { return RankImpl(c, false); }
uint64_t ZRevRank(TypedCtx& c) { return RankImpl(c, true); }

void AppendScoreOrNull(std::string* out, const double* score) {
  if (score == nullptr) {
    AppendNull(out);
  } else {
    AppendBulk(out, FormatDouble(*score));
  }
}

uint64_t ZScore(TypedCtx& c) {
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  AppendScoreOrNull(c.out, z.value.Score(c.args[2]));
  return ReadSeq(c);
}

uint64_t ZMScore(TypedCtx& c) {
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  AppendArrayHeader(c.out, static_cast<int64_t>(c.args.size() - 2));
  for (size_t i = 2; i < c.args.size(); ++i) AppendScoreOrNull(c.out, z.value.Score(c.args[i]));
  return ReadSeq(c);
}

uint64_t ZRem(TypedCtx& c) {
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  int64_t removed = 0;
  for (size_t i = 2; i < c.args.size(); ++i) removed += z.value.Erase(c.args[i]);
  if (removed == 0) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  uint64_t seq;
  if (!SaveZSet(c, c.args[1], z, &seq)) return 0;
  AppendInteger(c.out, removed);
  return seq;
}

uint64_t ZCard(TypedCtx& c) {
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(z.value.size()));
  return ReadSeq(c);
}

// ZPOPMIN / ZPOPMAX key [count].
uint64_t PopImpl(TypedCtx& c, bool max) {
  if (c.args.size() > 3) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  int64_t count = 1;
  if (c.args.size() == 3 && (!ParseInt64(c.args[2], &count) || count < 0)) {
    AppendError(c.out, "ERR value is out of range, must be positive");
    return 0;
  }
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  std::vector<Element> popped;
  while (popped.size() < static_cast<size_t>(count) && z.value.size() > 0) {
    const Element e = max ? *z.value.ordered().rbegin() : *z.value.ordered().begin();
    z.value.Erase(e.second);
    popped.push_back(e);
  }
  uint64_t seq = ReadSeq(c);
  if (!popped.empty() && !SaveZSet(c, c.args[1], z, &seq)) return 0;
  AppendArrayHeader(c.out, static_cast<int64_t>(popped.size() * 2));
  for (const Element& e : popped) {
    AppendBulk(c.out, e.second);
    AppendBulk(c.out, FormatDouble(e.first));
  }
  return seq;
}

uint64_t ZPopMin(TypedCtx& c) { return PopImpl(c, false); }
uint64_t ZPopMax(TypedCtx& c) { return PopImpl(c, true); }

// BZPOPMIN/BZPOPMAX key [key ...] timeout: pops from the first non-empty
// sorted set (reply key, member, score), else blocks.
uint64_t BlockingPopImpl(TypedCtx& c, bool max) {
  int64_t timeout_ms;
  if (!ParseBlockTimeout(c, c.args.size() - 1, &timeout_ms)) return 0;
  std::vector<std::string> keys;
  for (size_t i = 1; i + 1 < c.args.size(); ++i) {
    Loaded<ZSetValue> z;
    if (!LoadZSet(c, c.args[i], &z)) return 0;
    if (!z.found || z.value.size() == 0) {
      keys.emplace_back(c.args[i]);
      continue;
    }
    const Element e = max ? *z.value.ordered().rbegin() : *z.value.ordered().begin();
    z.value.Erase(e.second);
    uint64_t seq;
    if (!SaveZSet(c, c.args[i], z, &seq)) return 0;
    AppendArrayHeader(c.out, 3);
    AppendBulk(c.out, c.args[i]);
    AppendBulk(c.out, e.second);
    AppendBulk(c.out, FormatDouble(e.first));
    return seq;
  }
  BlockOrTimeOut(c, std::move(keys), ValueType::kZSet, timeout_ms, /*null_array=*/true);
  return ReadSeq(c);
}

uint64_t BZPopMin(TypedCtx& c) { return BlockingPopImpl(c, false); }
uint64_t BZPopMax(TypedCtx& c) { return BlockingPopImpl(c, true); }

// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count] and BZMPOP timeout
// numkeys ...: pops up to count members from the first sorted set among the
// keys (reply [key, [[member, score], ...]]); none: nil, or BZMPOP blocks.
uint64_t MultiPopImpl(TypedCtx& c, bool blocking) {
  MultiPopArgs a;
  if (!ParseMultiPopArgs(c, blocking ? 2 : 1, "min", "max", &a)) return 0;
  int64_t timeout_ms = 0;
  if (blocking && !ParseBlockTimeout(c, 1, &timeout_ms)) return 0;
  std::vector<std::string> keys;
  for (size_t i = a.first_key; i < a.first_key + a.numkeys; ++i) {
    Loaded<ZSetValue> z;
    if (!LoadZSet(c, c.args[i], &z)) return 0;
    if (!z.found || z.value.size() == 0) {
      keys.emplace_back(c.args[i]);
      continue;
    }
    std::vector<Element> popped;
    while (popped.size() < static_cast<uint64_t>(a.count) && z.value.size() > 0) {
      const Element e = a.second ? *z.value.ordered().rbegin() : *z.value.ordered().begin();
      z.value.Erase(e.second);
      popped.push_back(e);
    }
    uint64_t seq;
    if (!SaveZSet(c, c.args[i], z, &seq)) return 0;
    AppendArrayHeader(c.out, 2);
    AppendBulk(c.out, c.args[i]);
    AppendArrayHeader(c.out, static_cast<int64_t>(popped.size()));
    for (const Element& e : popped) {
      AppendArrayHeader(c.out, 2);
      AppendBulk(c.out, e.second);
      AppendBulk(c.out, FormatDouble(e.first));
    }
    return seq;
  }
  if (!blocking) {
    c.out->append("*-1\r\n");
    return ReadSeq(c);
  }
  BlockOrTimeOut(c, std::move(keys), ValueType::kZSet, timeout_ms, /*null_array=*/true);
  return ReadSeq(c);
}

uint64_t ZMPop(TypedCtx& c) { return MultiPopImpl(c, false); }
uint64_t BZMPop(TypedCtx& c) { return MultiPopImpl(c, true); }

// ---- ZUNION / ZINTER / ZDIFF and their STORE forms ----

enum class Combine { kUnion, kInter, kDiff };
enum class Aggregate { kSum, kMin, kMax };

// Members and scores of a sorted set, or of a set (every score 1, as in
// Redis). Returns false after appending an error (WRONGTYPE for others).
bool LoadScored(TypedCtx& c, std::string_view key,
                std::vector<std::pair<std::string, double>>* out) {
  out->clear();
  auto info = c.store->Lookup(key);
  if (!info.ok()) {
    AppendStoreError(c.out, info.status());
    return false;
  }
  if (!info->has_value()) return true;
  if ((*info)->type == ValueType::kSet) {
    Loaded<SetValue> s;
    if (!LoadSet(c, key, &s)) return false;
    for (const auto& m : s.value.members()) out->emplace_back(m, 1.0);
    return true;
  }
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, key, &z)) return false;  // WRONGTYPE for other types
  for (const auto& [score, member] : z.value.ordered()) out->emplace_back(member, score);
  return true;
}

// Redis's weighted score: 0 * inf is 0, not NaN.
double Weighted(double score, double weight) {
  const double v = score * weight;
  return std::isnan(v) ? 0 : v;
}

double AggregateScores(Aggregate a, double acc, double v) {
  switch (a) {
    case Aggregate::kSum: {
      const double sum = acc + v;
      return std::isnan(sum) ? 0 : sum;  // inf + -inf
    }
    case Aggregate::kMin:
      return std::min(acc, v);
    case Aggregate::kMax:
      return std::max(acc, v);
  }
  return acc;
}

// Parses and computes [dest] numkeys key... [WEIGHTS w...] [AGGREGATE a]
// [WITHSCORES]; `first` indexes numkeys. Returns false after an error.
bool CombineZ(TypedCtx& c, size_t first, Combine op, bool store, ZSetValue* result,
              bool* withscores) {
  int64_t numkeys;
  if (!ParseIntArg(c, first, &numkeys)) return false;
  if (numkeys < 1) {
    AppendError(c.out, "ERR at least 1 input key is needed for '" + Lower(c.args[0]) + "' command");
    return false;
  }
  const size_t keys_at = first + 1;
  if (static_cast<uint64_t>(numkeys) > c.args.size() - keys_at) {
    AppendError(c.out, kSyntax);
    return false;
  }
  const size_t n = static_cast<size_t>(numkeys);
  std::vector<double> weights(n, 1.0);
  Aggregate agg = Aggregate::kSum;
  *withscores = false;
  for (size_t i = keys_at + n; i < c.args.size(); ++i) {
    const std::string_view a = c.args[i];
    const size_t left = c.args.size() - i - 1;
    if (op != Combine::kDiff && EqualsIgnoreCase(a, "weights") && left >= n) {
      for (size_t k = 0; k < n; ++k) {
        if (!ParseDouble(c.args[i + 1 + k], &weights[k])) {
          AppendError(c.out, "ERR weight value is not a float");
          return false;
        }
      }
      i += n;
    } else if (op != Combine::kDiff && EqualsIgnoreCase(a, "aggregate") && left >= 1) {
      const std::string_view v = c.args[++i];
      if (EqualsIgnoreCase(v, "sum")) {
        agg = Aggregate::kSum;
      } else if (EqualsIgnoreCase(v, "min")) {
        agg = Aggregate::kMin;
      } else if (EqualsIgnoreCase(v, "max")) {
        agg = Aggregate::kMax;
      } else {
        AppendError(c.out, kSyntax);
        return false;
      }
    } else if (!store && EqualsIgnoreCase(a, "withscores")) {
      *withscores = true;
    } else {
      AppendError(c.out, kSyntax);
      return false;
    }
  }
  std::vector<std::vector<std::pair<std::string, double>>> inputs(n);
  for (size_t k = 0; k < n; ++k) {
    if (!LoadScored(c, c.args[keys_at + k], &inputs[k])) return false;
  }
  std::unordered_map<std::string, std::pair<double, size_t>> acc;  // score, inputs seen
  for (size_t k = 0; k < n; ++k) {
    for (const auto& [member, score] : inputs[k]) {
      const double v = Weighted(score, weights[k]);
      auto [it, fresh] = acc.emplace(member, std::make_pair(v, size_t{1}));
      if (!fresh) {
        it->second.first = AggregateScores(agg, it->second.first, v);
        ++it->second.second;
      }
    }
    if (op == Combine::kDiff) break;  // only the first input's members count
  }
  std::unordered_set<std::string_view> later;  // ZDIFF: members of inputs 2..n
  if (op == Combine::kDiff) {
    for (size_t k = 1; k < n; ++k) {
      for (const auto& e : inputs[k]) later.insert(e.first);
    }
  }
  *result = ZSetValue();
  for (const auto& [member, entry] : acc) {
    if (op == Combine::kInter && entry.second != n) continue;
    if (op == Combine::kDiff && later.count(member) != 0) continue;
    result->Set(member, entry.first);
  }
  return true;
}

uint64_t CombineReplyZ(TypedCtx& c, Combine op) {
  ZSetValue r;
  bool withscores;
  if (!CombineZ(c, 1, op, false, &r, &withscores)) return 0;
  std::vector<const Element*> els;
  for (const Element& e : r.ordered()) els.push_back(&e);
  AppendElements(c.out, els, withscores);
  return ReadSeq(c);
}

uint64_t CombineStoreZ(TypedCtx& c, Combine op) {
  Loaded<ZSetValue> r;
  bool withscores;
  if (!CombineZ(c, 2, op, true, &r.value, &withscores)) return 0;
  WriteBatch b;
  std::deque<std::string> storage;
  StageZSet(c.args[1], r, &b, &storage);  // overwrites any type, or deletes
  uint64_t seq;
  if (!ApplyBatch(c, b, &seq)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(r.value.size()));
  return seq;
}

// ZINTERCARD numkeys key [key ...] [LIMIT limit]: the size of the
// intersection (sets count as sorted sets), at most limit (0: no limit).
uint64_t ZInterCard(TypedCtx& c) {
  int64_t numkeys;
  if (!ParseIntArg(c, 1, &numkeys)) return 0;
  if (numkeys < 1) {
    AppendError(c.out, "ERR at least 1 input key is needed for 'zintercard' command");
    return 0;
  }
  if (static_cast<uint64_t>(numkeys) > c.args.size() - 2) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  const size_t n = static_cast<size_t>(numkeys);
  int64_t limit = 0;
  for (size_t i = 2 + n; i < c.args.size(); ++i) {
    if (EqualsIgnoreCase(c.args[i], "limit") && i + 1 < c.args.size()) {
      if (!ParseInt64(c.args[++i], &limit) || limit < 0) {
        AppendError(c.out, "ERR LIMIT can't be negative");
        return 0;
      }
    } else {
      AppendError(c.out, kSyntax);
      return 0;
    }
  }
  std::vector<std::vector<std::pair<std::string, double>>> inputs(n);
  for (size_t k = 0; k < n; ++k) {
    if (!LoadScored(c, c.args[2 + k], &inputs[k])) return 0;
  }
  std::vector<std::unordered_set<std::string_view>> others(n);
  for (size_t k = 1; k < n; ++k) {
    for (const auto& e : inputs[k]) others[k].insert(e.first);
  }
  int64_t count = 0;
  for (const auto& e : inputs[0]) {
    if (limit != 0 && count == limit) break;
    bool everywhere = true;
    for (size_t k = 1; k < n && everywhere; ++k) everywhere = others[k].count(e.first) != 0;
    if (everywhere) ++count;
  }
  AppendInteger(c.out, count);
  return ReadSeq(c);
}

uint64_t ZUnion(TypedCtx& c) { return CombineReplyZ(c, Combine::kUnion); }
uint64_t ZInter(TypedCtx& c) { return CombineReplyZ(c, Combine::kInter); }
uint64_t ZDiff(TypedCtx& c) { return CombineReplyZ(c, Combine::kDiff); }
uint64_t ZUnionStore(TypedCtx& c) { return CombineStoreZ(c, Combine::kUnion); }
uint64_t ZInterStore(TypedCtx& c) { return CombineStoreZ(c, Combine::kInter); }
uint64_t ZDiffStore(TypedCtx& c) { return CombineStoreZ(c, Combine::kDiff); }

uint64_t ZScan(TypedCtx& c) {
  ScanArgs scan;
  if (!ParseScanArgs(c, &scan)) return 0;
  Loaded<ZSetValue> z;
  if (!LoadZSet(c, c.args[1], &z)) return 0;
  std::vector<const Element*> all;
  for (const Element& e : z.value.ordered()) all.push_back(&e);
  std::vector<size_t> picked;
  const uint64_t next = PickScanBatch(
      all.size(), [&](size_t i) { return std::string_view(all[i]->second); }, scan, &picked);
  std::vector<const Element*> matched;
  for (size_t i : picked) {
    if (GlobMatch(scan.pattern, all[i]->second)) matched.push_back(all[i]);
  }
  AppendArrayHeader(c.out, 2);
  AppendBulk(c.out, std::to_string(next));
  AppendElements(c.out, matched, true);
  return ReadSeq(c);
}

constexpr TypedCommand kZSetCommands[] = {
    {"zadd", -4, &ZAdd, true},
    {"zincrby", 4, &ZIncrBy, true},
    {"zrange", -4, &ZRange, false},
    {"zrangebyscore", -4, &ZRangeByScore, false},
    {"zrevrangebyscore", -4, &ZRevRangeByScore, false},
    {"zrangebylex", -4, &ZRangeByLex, false},
    {"zrevrangebylex", -4, &ZRevRangeByLex, false},
    {"zrevrange", -4, &ZRevRange, false},
    {"zrangestore", -5, &ZRangeStore, true},
    {"zrandmember", -2, &ZRandMember, false},
    {"zcount", 4, &ZCount, false},
    {"zlexcount", 4, &ZLexCount, false},
    {"zremrangebyrank", 4, &ZRemRangeByRank, true},
    {"zremrangebyscore", 4, &ZRemRangeByScore, true},
    {"zremrangebylex", 4, &ZRemRangeByLex, true},
    {"zintercard", -3, &ZInterCard, false},
    {"zrank", 3, &ZRank, false},
    {"zrevrank", 3, &ZRevRank, false},
    {"zscore", 3, &ZScore, false},
    {"zmscore", -3, &ZMScore, false},
    {"zrem", -3, &ZRem, true},
    {"zcard", 2, &ZCard, false},
    {"zpopmin", -2, &ZPopMin, true},
    {"zpopmax", -2, &ZPopMax, true},
    {"bzpopmin", -3, &BZPopMin, true},
    {"bzpopmax", -3, &BZPopMax, true},
    {"zmpop", -4, &ZMPop, true},
    {"bzmpop", -5, &BZMPop, true},
    {"zscan", -3, &ZScan, false},
    {"zunion", -3, &ZUnion, false},
    {"zinter", -3, &ZInter, false},
    {"zdiff", -3, &ZDiff, false},
    {"zunionstore", -4, &ZUnionStore, true},
    {"zinterstore", -4, &ZInterStore, true},
    {"zdiffstore", -4, &ZDiffStore, true},
};

}  // namespace

std::span<const TypedCommand> ZSetCommands() { return kZSetCommands; }

}  // namespace cosmos::kv
