// Set commands (SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SINTER,
// SUNION, SDIFF and their STORE forms, SINTERCARD, SPOP, SRANDMEMBER, SMOVE,
// SSCAN) with
// Redis's replies and error texts.
#include <algorithm>
#include <random>

#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/typed_commands.h"

namespace cosmos::kv {
namespace {

void AppendMembers(std::string* out, const std::vector<std::string>& members) {
  AppendArrayHeader(out, static_cast<int64_t>(members.size()));
  for (const auto& m : members) AppendBulk(out, m);
}

uint64_t SAdd(TypedCtx& c) {
  Loaded<SetValue> s;
  if (!LoadSet(c, c.args[1], &s)) return 0;
  int64_t added = 0;
  for (size_t i = 2; i < c.args.size(); ++i) added += s.value.Add(c.args[i]);
  if (added == 0) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  uint64_t seq;
  if (!SaveSet(c, c.args[1], s, &seq)) return 0;
  AppendInteger(c.out, added);
  return seq;
}

uint64_t SRem(TypedCtx& c) {
  Loaded<SetValue> s;
  if (!LoadSet(c, c.args[1], &s)) return 0;
  int64_t removed = 0;
  for (size_t i = 2; i < c.args.size(); ++i) removed += s.value.Erase(c.args[i]);
  if (removed == 0) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  uint64_t seq;
  if (!SaveSet(c, c.args[1], s, &seq)) return 0;
  AppendInteger(c.out, removed);
  return seq;
}

uint64_t SMembers(TypedCtx& c) {
  Loaded<SetValue> s;
  if (!LoadSet(c, c.args[1], &s)) return 0;
  AppendMembers(c.out, s.value.members());
  return ReadSeq(c);
}

uint64_t SIsMember(TypedCtx& c) {
  Loaded<SetValue> s;
  if (!LoadSet(c, c.args[1], &s)) return 0;
  AppendInteger(c.out, s.value.Contains(c.args[2]) ? 1 : 0);
  return ReadSeq(c);
}

uint64_t SMIsMember(TypedCtx& c) {
  Loaded<SetValue> s;
  if (!LoadSet(c, c.args[1], &s)) return 0;
  AppendArrayHeader(c.out, static_cast<int64_t>(c.args.size() - 2));
  for (size_t i = 2; i < c.args.size(); ++i) AppendInteger(c.out, s.value.Contains(c.args[i]));
  return ReadSeq(c);
}

uint64_t SCard(TypedCtx& c) {
  Loaded<SetValue> s;
  if (!LoadSet(c, c.args[1], &s)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(s.value.size()));
  return ReadSeq(c);
}

enum class SetOp { kInter, kUnion, kDiff };

// Computes the operation over keys [first, args.size()). Returns false after
// appending an error (WRONGTYPE for any key of another type).
bool Combine(TypedCtx& c, size_t first, SetOp op, SetValue* result) {
  std::vector<Loaded<SetValue>> sets(c.args.size() - first);
  for (size_t i = first; i < c.args.size(); ++i) {
    if (!LoadSet(c, c.args[i], &sets[i - first])) return false;
  }
  *result = SetValue();
  switch (op) {
    case SetOp::kUnion:
      for (const auto& s : sets) {
        for (const auto& m : s.value.members()) result->Add(m);
      }
      break;
    case SetOp::kInter:
      for (const auto& m : sets[0].value.members()) {
        bool all = std::all_of(sets.begin() + 1, sets.end(),
                               [&](const Loaded<SetValue>& s) { return s.value.Contains(m); });
        if (all) result->Add(m);
      }
      break;
    case SetOp::kDiff:
      for (const auto& m : sets[0].value.members()) {
        bool any = std::any_of(sets.begin() + 1, sets.end(),
                               [&](const Loaded<SetValue>& s) { return s.value.Contains(m); });
        if (!any) result->Add(m);
      }
      break;
  }
  return true;
}

uint64_t CombineReply(TypedCtx& c, SetOp op) {
  SetValue r;
  if (!Combine(c, 1, op, &r)) return 0;
  AppendMembers(c.out, r.members());
  return ReadSeq(c);
}

// S*STORE destination key [key ...]: the destination is overwritten (any
// type) or deleted when the result is empty.
uint64_t CombineStore(TypedCtx& c, SetOp op) {
  Loaded<SetValue> r;
  if (!Combine(c, 2, op, &r.value)) return 0;
  WriteBatch b;
  std::deque<std::string> storage;
  StageSet(c.args[1], r, &b, &storage);
  uint64_t seq;
  if (!ApplyBatch(c, b, &seq)) return 0;
  AppendInteger(c.out, static_cast<int64_t>(r.value.size()));
  return seq;
}

// SINTERCARD numkeys key [key ...] [LIMIT limit].
uint64_t SInterCard(TypedCtx& c) {
  int64_t numkeys;
  if (!ParseIntArg(c, 1, &numkeys)) return 0;
  if (numkeys < 1) {
    AppendError(c.out, "ERR numkeys should be greater than 0");
    return 0;
  }
  if (static_cast<uint64_t>(numkeys) > c.args.size() - 2) {
    AppendError(c.out, "ERR Number of keys can't be greater than number of args");
    return 0;
  }
  const size_t end = 2 + static_cast<size_t>(numkeys);
  int64_t limit = 0;
  for (size_t i = end; i < c.args.size(); i += 2) {
    if (!EqualsIgnoreCase(c.args[i], "limit") || i + 1 >= c.args.size()) {
      AppendError(c.out, kSyntax);
      return 0;
    }
    if (!ParseIntArg(c, i + 1, &limit)) return 0;
    if (limit < 0) {
      AppendError(c.out, "ERR LIMIT can't be negative");
      return 0;
    }
  }
  TypedCtx keys{c.store, c.args.first(end), c.out, c.cache};  // the LIMIT part cut off
  SetValue r;
  if (!Combine(keys, 2, SetOp::kInter, &r)) return 0;
  const size_t n = r.size();
  AppendInteger(c.out, static_cast<int64_t>(limit == 0 ? n : std::min<size_t>(n, limit)));
  return ReadSeq(c);
}

uint64_t SInter(TypedCtx& c) { return CombineReply(c, SetOp::kInter); }
uint64_t SUnion(TypedCtx& c) { return CombineReply(c, SetOp::kUnion); }
uint64_t SDiff(TypedCtx& c) { return CombineReply(c, SetOp::kDiff); }
uint64_t SInterStore(TypedCtx& c) { return CombineStore(c, SetOp::kInter); }
uint64_t SUnionStore(TypedCtx& c) { return CombineStore(c, SetOp::kUnion); }
uint64_t SDiffStore(TypedCtx& c) { return CombineStore(c, SetOp::kDiff); }

// SPOP key [count] / SRANDMEMBER key [count].
uint64_t RandomImpl(TypedCtx& c, bool pop) {
  if (c.args.size() > 3) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  const bool has_count = c.args.size() == 3;
  int64_t count = 1;
  if (has_count) {
    if (pop && (!ParseInt64(c.args[2], &count) || count < 0)) {
      AppendError(c.out, "ERR value is out of range, must be positive");
      return 0;
    }
    if (!pop && !ParseRandomCount(c, 2, &count)) return 0;
  }
  Loaded<SetValue> s;
  if (!LoadSet(c, c.args[1], &s)) return 0;
  std::vector<std::string> members;  // SRANDMEMBER with count < 0 repeats
  for (size_t i : PickIndexes(s.value.size(), count)) members.push_back(s.value.members()[i]);
  if (!has_count) {
    if (members.empty()) {
      AppendNull(c.out);
      return ReadSeq(c);
    }
    if (!pop) {
      AppendBulk(c.out, members[0]);
      return ReadSeq(c);
    }
  }
  if (!pop || members.empty()) {
    AppendMembers(c.out, members);
    return ReadSeq(c);
  }
  for (const auto& m : members) s.value.Erase(m);
  uint64_t seq;
  if (!SaveSet(c, c.args[1], s, &seq)) return 0;
  if (has_count) {
    AppendMembers(c.out, members);
  } else {
    AppendBulk(c.out, members[0]);
  }
  return seq;
}

uint64_t SPop(TypedCtx& c) { return RandomImpl(c, true); }
uint64_t SRandMember(TypedCtx& c) { return RandomImpl(c, false); }

uint64_t SMove(TypedCtx& c) {
  Loaded<SetValue> src, dst;
  if (!LoadSet(c, c.args[1], &src) || !LoadSet(c, c.args[2], &dst)) return 0;
  if (!src.value.Contains(c.args[3])) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  if (c.args[1] == c.args[2]) {
    AppendInteger(c.out, 1);
    return ReadSeq(c);
  }
  src.value.Erase(c.args[3]);
  dst.value.Add(c.args[3]);
  WriteBatch b;
  std::deque<std::string> storage;
  StageSet(c.args[1], src, &b, &storage);
  StageSet(c.args[2], dst, &b, &storage);
  uint64_t seq;
  if (!ApplyBatch(c, b, &seq)) return 0;
  AppendInteger(c.out, 1);
  return seq;
}

uint64_t SScan(TypedCtx& c) {
  ScanArgs scan;
  if (!ParseScanArgs(c, &scan)) return 0;
  Loaded<SetValue> s;
  if (!LoadSet(c, c.args[1], &s)) return 0;
  const auto& members = s.value.members();
  std::vector<size_t> picked;
  const uint64_t next = PickScanBatch(
      members.size(), [&](size_t i) { return std::string_view(members[i]); }, scan, &picked);
  std::vector<std::string> matched;
  for (size_t i : picked) {
    if (GlobMatch(scan.pattern, members[i])) matched.push_back(members[i]);
  }
  AppendArrayHeader(c.out, 2);
  AppendBulk(c.out, std::to_string(next));
  AppendMembers(c.out, matched);
  return ReadSeq(c);
}

constexpr TypedCommand kSetCommands[] = {
    {"sadd", -3, &SAdd, true},
    {"srem", -3, &SRem, true},
    {"smembers", 2, &SMembers, false},
    {"sismember", 3, &SIsMember, false},
    {"smismember", -3, &SMIsMember, false},
    {"scard", 2, &SCard, false},
    {"sinter", -2, &SInter, false},
    {"sintercard", -3, &SInterCard, false},
    {"sunion", -2, &SUnion, false},
    {"sdiff", -2, &SDiff, false},
    {"sinterstore", -3, &SInterStore, true},
    {"sunionstore", -3, &SUnionStore, true},
    {"sdiffstore", -3, &SDiffStore, true},
    {"spop", -2, &SPop, true},
    {"srandmember", -2, &SRandMember, false},
    {"smove", 4, &SMove, true},
    {"sscan", -3, &SScan, false},
};

}  // namespace

std::span<const TypedCommand> SetCommands() { return kSetCommands; }

}  // namespace cosmos::kv
