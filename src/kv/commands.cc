// Redis command implementations over the Store (strings only, db 0).
#include "kv/commands.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <unordered_map>
#include <unordered_set>

#include "common/check.h"
#include "cosmos/version.h"
#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/resp3.h"
#include "kv/typed_commands.h"

namespace cosmos::kv {

struct Dispatcher::Ctx {
  ClientSession& session;
  std::span<const std::string_view> args;
  std::string* out;
  const CommandSpec* spec;
};

namespace {

// The Redis release whose replies cosmos-kv reproduces (the differential
// tests run against it); reported as redis_version for clients that check.
constexpr std::string_view kRedisCompatVersion = "7.0.15";

const int64_t kStartMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();

// Redis arity: > 0 exactly that many arguments (name included), < 0 at least.
bool ArityOk(int arity, size_t args) {
  const int n = static_cast<int>(std::min<size_t>(args, INT_MAX));
  return arity > 0 ? n == arity : n >= -arity;
}

// CLIENT SETNAME / HELLO SETNAME: false (error appended) for a name Redis
// refuses (spaces, control or non-ASCII characters).
bool SetClientName(ClientSession& session, std::string_view name, std::string* out) {
  for (char ch : name) {
    if (ch < '!' || ch > '~') {
      AppendError(out, "ERR Client names cannot contain spaces, newlines or special characters.");
      return false;
    }
  }
  session.name = std::string(name);
  return true;
}

// AUTH / HELLO AUTH without passwords configured (Redis's default user with
// nopass): "default" with any password passes; any other user does not exist.
bool AuthenticateUser(std::string_view user, std::string* out) {
  if (user == "default") return true;
  AppendError(out, "WRONGPASS invalid username-password pair or user is disabled.");
  return false;
}

}  // namespace

bool Dispatcher::CheckCommand(std::span<const std::string_view> args, std::string* out) {
  int arity;
  const char* name;
  if (const CommandSpec* spec = Find(args[0]); spec != nullptr) {
    arity = spec->arity;
    name = spec->name;
  } else if (const TypedCommand* typed = FindTypedCommand(args[0]); typed != nullptr) {
    arity = typed->arity;
    name = typed->name;
  } else {
    AppendUnknownCommand(args, out);
    return false;
  }
  if (!ArityOk(arity, args.size())) {
    AppendError(out, std::string("ERR wrong number of arguments for '") + name + "' command");
    return false;
  }
  return true;
}

const Dispatcher::CommandSpec Dispatcher::kCommands[] = {
    {"ping", -1, &Dispatcher::Ping, false},
    {"echo", 2, &Dispatcher::Echo, false},
    {"get", 2, &Dispatcher::Get, false},
    {"set", -3, &Dispatcher::Set, true},
    {"setnx", 3, &Dispatcher::SetNx, true},
    {"setex", 4, &Dispatcher::SetEx, true},
    {"psetex", 4, &Dispatcher::PSetEx, true},
    {"del", -2, &Dispatcher::Del, true},
    {"unlink", -2, &Dispatcher::Del, true},
    {"exists", -2, &Dispatcher::Exists, false},
    {"mget", -2, &Dispatcher::MGet, false},
    {"mset", -3, &Dispatcher::MSet, true},
    {"msetnx", -3, &Dispatcher::MSetNx, true},
    {"incr", 2, &Dispatcher::Incr, true},
    {"incrby", 3, &Dispatcher::IncrBy, true},
    {"decr", 2, &Dispatcher::Decr, true},
    {"decrby", 3, &Dispatcher::DecrBy, true},
    {"append", 3, &Dispatcher::Append, true},
    {"strlen", 2, &Dispatcher::StrLen, false},
    {"getset", 3, &Dispatcher::GetSet, true},
    {"getdel", 2, &Dispatcher::GetDel, true},
    {"keys", 2, &Dispatcher::Keys, false},
    {"scan", -2, &Dispatcher::Scan, false},
    {"dbsize", 1, &Dispatcher::DbSize, false},
    {"flushdb", -1, &Dispatcher::FlushDb, true},
    {"flushall", -1, &Dispatcher::FlushDb, true},
    {"type", 2, &Dispatcher::Type, false},
    {"ttl", 2, &Dispatcher::Ttl, false},
    {"pttl", 2, &Dispatcher::PTtl, false},
    {"expire", -3, &Dispatcher::Expire, true},
    {"pexpire", -3, &Dispatcher::PExpire, true},
    {"expireat", -3, &Dispatcher::ExpireAt, true},
    {"pexpireat", -3, &Dispatcher::PExpireAt, true},
    {"expiretime", 2, &Dispatcher::ExpireTime, false},
    {"pexpiretime", 2, &Dispatcher::PExpireTime, false},
    {"persist", 2, &Dispatcher::Persist, true},
    {"info", -1, &Dispatcher::Info, false},
    {"command", -1, &Dispatcher::Command, false},
    {"client", -2, &Dispatcher::Client, false},
    {"config", -2, &Dispatcher::Config, false},
    {"shutdown", -1, &Dispatcher::Shutdown, false},
    {"wait", 3, &Dispatcher::Wait, false},
    {"select", 2, &Dispatcher::Select, false},
    {"quit", -1, &Dispatcher::Quit, false},
    {"hello", -1, &Dispatcher::Hello, false},
    {"auth", -2, &Dispatcher::Auth, false},
    {"time", 1, &Dispatcher::Time, false},
    {"publish", 3, &Dispatcher::Publish, false},
    {"subscribe", -2, &Dispatcher::Subscribe, false},
    {"unsubscribe", -1, &Dispatcher::Subscribe, false},
    {"psubscribe", -2, &Dispatcher::Subscribe, false},
    {"punsubscribe", -1, &Dispatcher::Subscribe, false},
    {"pubsub", -2, &Dispatcher::PubSub, false},
    {"reset", 1, &Dispatcher::Reset, false},
};

size_t Dispatcher::CommandCount() { return std::size(kCommands) + TypedCommandCount() + 5; }

const Dispatcher::CommandSpec* Dispatcher::Find(std::string_view name) {
  static const auto* table = [] {
    auto* t = new std::unordered_map<std::string, const CommandSpec*>();
    for (const auto& c : kCommands) (*t)[c.name] = &c;
    return t;
  }();
  if (name.size() > 16) return nullptr;
  auto it = table->find(Lower(name));
  return it == table->end() ? nullptr : it->second;
}

Dispatcher::Dispatcher(Store* store, DispatcherOptions options)
    : store_(store), options_(std::move(options)), cache_(std::make_unique<ValueCache>()) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::AppendUnknownCommand(std::span<const std::string_view> args, std::string* out) {
  std::string rest;
  for (size_t i = 1; i < args.size() && rest.size() < 128; ++i) {
    const size_t room = 128 - rest.size();
    rest.push_back('\'');
    rest.append(args[i].substr(0, room));
    rest.append("' ");
  }
  std::string msg = "ERR unknown command '";
  msg.append(args[0].substr(0, 128));
  msg.append("', with args beginning with: ");
  msg.append(rest);
  AppendError(out, msg);
}

uint64_t Dispatcher::Dispatch(ClientSession& session, std::span<const std::string_view> args,
                              std::string* out) {
  const size_t start = out->size();
  const uint64_t seq = DispatchResp2(session, args, out);
  // The protocol after the command: HELLO 3 answers in RESP3 already.
  if (session.resp == 3 && !ConvertRepliesToResp3(args, out, start)) {
    out->resize(start);  // cannot happen for the encoders' output; never send half a reply
    AppendError(out, "ERR cosmos-kv could not encode this reply in RESP3");
  }
  return seq;
}

uint64_t Dispatcher::DispatchResp2(ClientSession& session, std::span<const std::string_view> args,
                                   std::string* out) {
  COSMOS_CHECK(!args.empty());
  ++commands_processed_;
  const CommandSpec* spec = Find(args[0]);
  if (spec == nullptr) {
    const TypedCommand* typed = FindTypedCommand(args[0]);
    if (typed == nullptr) {
      AppendUnknownCommand(args, out);
      return 0;
    }
    if (!ArityOk(typed->arity, args.size())) {
      AppendError(out,
                  std::string("ERR wrong number of arguments for '") + typed->name + "' command");
      return 0;
    }
    TypedCtx t{store_, args, out, cache_.get(), in_exec_ ? nullptr : &session.block};
    return typed->handler(t);
  }
  if (!ArityOk(spec->arity, args.size())) {
    AppendError(out, std::string("ERR wrong number of arguments for '") + spec->name + "' command");
    return 0;
  }
  if (RejectStringCommandOnOtherType(store_, spec->name, args, out)) return ReadSeq();
  Ctx c{session, args, out, spec};
  return (this->*(spec->handler))(c);
}

uint64_t Dispatcher::ReadSeq() { return store_->last_sequence(); }

uint64_t Dispatcher::StoreError(Ctx& c, const Status& s) {
  AppendStoreError(c.out, s);
  return 0;
}

uint64_t Dispatcher::Ping(Ctx& c) {
  if (c.args.size() > 2) {
    AppendError(c.out, "ERR wrong number of arguments for 'ping' command");
  } else if (c.session.subscriptions > 0 && c.session.resp == 2) {  // ["pong", msg]
    AppendArrayHeader(c.out, 2);
    AppendBulk(c.out, "pong");
    AppendBulk(c.out, c.args.size() == 2 ? c.args[1] : std::string_view());
  } else if (c.args.size() == 2) {
    AppendBulk(c.out, c.args[1]);
  } else {
    AppendSimple(c.out, "PONG");
  }
  return 0;
}

uint64_t Dispatcher::Echo(Ctx& c) {
  AppendBulk(c.out, c.args[1]);
  return 0;
}

uint64_t Dispatcher::Get(Ctx& c) {
  auto r = store_->Get(c.args[1], &value_);
  if (!r.ok()) return StoreError(c, r.status());
  if (*r) {
    AppendBulk(c.out, value_);
  } else {
    AppendNull(c.out);
  }
  return ReadSeq();
}

uint64_t Dispatcher::Set(Ctx& c) {
  bool nx = false, xx = false, get = false, keepttl = false;
  int64_t expiry = 0;
  bool has_expiry = false;
  const int64_t now = store_->NowMs();
  for (size_t i = 3; i < c.args.size(); ++i) {
    std::string_view a = c.args[i];
    const bool has_next = i + 1 < c.args.size();
    if (EqualsIgnoreCase(a, "nx") && !xx) {
      nx = true;
    } else if (EqualsIgnoreCase(a, "xx") && !nx) {
      xx = true;
    } else if (EqualsIgnoreCase(a, "get")) {
      get = true;
    } else if (EqualsIgnoreCase(a, "keepttl") && !has_expiry) {
      keepttl = true;
    } else if ((EqualsIgnoreCase(a, "ex") || EqualsIgnoreCase(a, "px") ||
                EqualsIgnoreCase(a, "exat") || EqualsIgnoreCase(a, "pxat")) &&
               !keepttl && !has_expiry && has_next) {
      int64_t v;
      if (!ParseInt64(c.args[i + 1], &v)) {
        AppendError(c.out, kNotInteger);
        return 0;
      }
      const bool seconds = EqualsIgnoreCase(a, "ex") || EqualsIgnoreCase(a, "exat");
      const bool relative = EqualsIgnoreCase(a, "ex") || EqualsIgnoreCase(a, "px");
      if (v <= 0 || (seconds && v > INT64_MAX / 1000) ||
          (relative && (seconds ? v * 1000 : v) > INT64_MAX - now)) {
        AppendError(c.out, "ERR invalid expire time in 'set' command");
        return 0;
      }
      const int64_t ms = seconds ? v * 1000 : v;
      expiry = relative ? now + ms : ms;
      has_expiry = true;
      ++i;
    } else {
      AppendError(c.out, kSyntax);
      return 0;
    }
  }
  auto info = store_->Lookup(c.args[1]);  // NX with GET is allowed since Redis 7.0
  if (!info.ok()) return StoreError(c, info.status());
  bool had_old = false;
  if (get && info->has_value()) {
    auto r = store_->Get(c.args[1], &value_);
    if (!r.ok()) return StoreError(c, r.status());
    had_old = *r;
  }
  const bool exists = info->has_value();
  if ((nx && exists) || (xx && !exists)) {
    if (get) {
      if (had_old)
        AppendBulk(c.out, value_);
      else
        AppendNull(c.out);
    } else {
      AppendNull(c.out);
    }
    return ReadSeq();
  }
  if (keepttl && exists) expiry = (*info)->expiry_ms;
  WriteBatch b;
  b.Put(c.args[1], c.args[2], expiry);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  if (get) {
    if (had_old)
      AppendBulk(c.out, value_);
    else
      AppendNull(c.out);
  } else {
    AppendSimple(c.out, "OK");
  }
  return *seq;
}

uint64_t Dispatcher::SetNx(Ctx& c) {
  auto info = store_->Lookup(c.args[1]);
  if (!info.ok()) return StoreError(c, info.status());
  if (info->has_value()) {
    AppendInteger(c.out, 0);
    return ReadSeq();
  }
  WriteBatch b;
  b.Put(c.args[1], c.args[2]);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendInteger(c.out, 1);
  return *seq;
}

uint64_t Dispatcher::SetEx(Ctx& c) {
  std::string_view args[] = {"set", c.args[1], c.args[3], "ex", c.args[2]};
  Ctx inner{c.session, args, c.out, c.spec};
  return Set(inner);
}

uint64_t Dispatcher::PSetEx(Ctx& c) {
  std::string_view args[] = {"set", c.args[1], c.args[3], "px", c.args[2]};
  Ctx inner{c.session, args, c.out, c.spec};
  return Set(inner);
}

uint64_t Dispatcher::Del(Ctx& c) {
  WriteBatch b;
  std::unordered_set<std::string_view> seen;
  int64_t n = 0;
  for (size_t i = 1; i < c.args.size(); ++i) {
    if (!seen.insert(c.args[i]).second) continue;
    auto info = store_->Lookup(c.args[i]);
    if (!info.ok()) return StoreError(c, info.status());
    if (info->has_value()) {
      b.Delete(c.args[i]);
      ++n;
    }
  }
  uint64_t seq = ReadSeq();
  if (!b.empty()) {
    auto r = store_->Apply(b);
    if (!r.ok()) return StoreError(c, r.status());
    seq = *r;
  }
  AppendInteger(c.out, n);
  return seq;
}

uint64_t Dispatcher::Exists(Ctx& c) {
  int64_t n = 0;
  for (size_t i = 1; i < c.args.size(); ++i) {
    auto info = store_->Lookup(c.args[i]);
    if (!info.ok()) return StoreError(c, info.status());
    if (info->has_value()) ++n;
  }
  AppendInteger(c.out, n);
  return ReadSeq();
}

uint64_t Dispatcher::MGet(Ctx& c) {
  std::string reply;
  AppendArrayHeader(&reply, static_cast<int64_t>(c.args.size() - 1));
  for (size_t i = 1; i < c.args.size(); ++i) {
    auto r = store_->Get(c.args[i], &value_);
    if (!r.ok()) return StoreError(c, r.status());
    if (*r)
      AppendBulk(&reply, value_);
    else
      AppendNull(&reply);
  }
  c.out->append(reply);
  return ReadSeq();
}

uint64_t Dispatcher::MSet(Ctx& c) {
  if (c.args.size() % 2 != 1) {
    AppendError(c.out,
                std::string("ERR wrong number of arguments for '") + c.spec->name + "' command");
    return 0;
  }
  WriteBatch b;
  for (size_t i = 1; i < c.args.size(); i += 2) b.Put(c.args[i], c.args[i + 1]);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendSimple(c.out, "OK");
  return *seq;
}

uint64_t Dispatcher::MSetNx(Ctx& c) {
  if (c.args.size() % 2 != 1) {
    AppendError(c.out, "ERR wrong number of arguments for 'msetnx' command");
    return 0;
  }
  for (size_t i = 1; i < c.args.size(); i += 2) {
    auto info = store_->Lookup(c.args[i]);
    if (!info.ok()) return StoreError(c, info.status());
    if (info->has_value()) {
      AppendInteger(c.out, 0);
      return ReadSeq();
    }
  }
  WriteBatch b;
  for (size_t i = 1; i < c.args.size(); i += 2) b.Put(c.args[i], c.args[i + 1]);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendInteger(c.out, 1);
  return *seq;
}

uint64_t Dispatcher::IncrByImpl(Ctx& c, int64_t delta) {
  auto info = store_->Lookup(c.args[1]);
  if (!info.ok()) return StoreError(c, info.status());
  int64_t cur = 0;
  int64_t expiry = 0;
  if (info->has_value()) {
    expiry = (*info)->expiry_ms;
    auto r = store_->Get(c.args[1], &value_);
    if (!r.ok()) return StoreError(c, r.status());
    if (*r && !ParseInt64(value_, &cur)) {
      AppendError(c.out, kNotInteger);
      return ReadSeq();
    }
  }
  if ((delta < 0 && cur < 0 && delta < INT64_MIN - cur) ||
      (delta > 0 && cur > 0 && delta > INT64_MAX - cur)) {
    AppendError(c.out, "ERR increment or decrement would overflow");
    return ReadSeq();
  }
  cur += delta;
  const std::string v = std::to_string(cur);
  WriteBatch b;
  b.Put(c.args[1], v, expiry);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendInteger(c.out, cur);
  return *seq;
}

uint64_t Dispatcher::Incr(Ctx& c) { return IncrByImpl(c, 1); }
uint64_t Dispatcher::Decr(Ctx& c) { return IncrByImpl(c, -1); }

uint64_t Dispatcher::IncrBy(Ctx& c) {
  int64_t d;
  if (!ParseInt64(c.args[2], &d)) {
    AppendError(c.out, kNotInteger);
    return 0;
  }
  return IncrByImpl(c, d);
}

uint64_t Dispatcher::DecrBy(Ctx& c) {
  int64_t d = 0;
  if (!ParseInt64(c.args[2], &d)) {
    AppendError(c.out, kNotInteger);
    return 0;
  }
  if (d == INT64_MIN) {  // -d does not exist
    AppendError(c.out, "ERR decrement would overflow");
    return 0;
  }
  return IncrByImpl(c, -d);
}

uint64_t Dispatcher::Append(Ctx& c) {
  auto info = store_->Lookup(c.args[1]);
  if (!info.ok()) return StoreError(c, info.status());
  int64_t expiry = 0;
  value_.clear();
  if (info->has_value()) {
    expiry = (*info)->expiry_ms;
    if ((*info)->value_len + c.args[2].size() > options_.max_bulk_len) {
      AppendError(c.out, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
      return ReadSeq();
    }
    auto r = store_->Get(c.args[1], &value_);
    if (!r.ok()) return StoreError(c, r.status());
  }
  value_.append(c.args[2]);
  WriteBatch b;
  b.Put(c.args[1], value_, expiry);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendInteger(c.out, static_cast<int64_t>(value_.size()));
  return *seq;
}

uint64_t Dispatcher::StrLen(Ctx& c) {
  auto info = store_->Lookup(c.args[1]);
  if (!info.ok()) return StoreError(c, info.status());
  AppendInteger(c.out, info->has_value() ? static_cast<int64_t>((*info)->value_len) : 0);
  return ReadSeq();
}

uint64_t Dispatcher::GetSet(Ctx& c) {
  auto r = store_->Get(c.args[1], &value_);
  if (!r.ok()) return StoreError(c, r.status());
  WriteBatch b;
  b.Put(c.args[1], c.args[2]);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  if (*r)
    AppendBulk(c.out, value_);
  else
    AppendNull(c.out);
  return *seq;
}

uint64_t Dispatcher::GetDel(Ctx& c) {
  auto r = store_->Get(c.args[1], &value_);
  if (!r.ok()) return StoreError(c, r.status());
  if (!*r) {
    AppendNull(c.out);
    return ReadSeq();
  }
  WriteBatch b;
  b.Delete(c.args[1]);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendBulk(c.out, value_);
  return *seq;
}

uint64_t Dispatcher::Keys(Ctx& c) {
  auto keys = store_->Keys(c.args[1]);
  if (!keys.ok()) return StoreError(c, keys.status());
  AppendArrayHeader(c.out, static_cast<int64_t>(keys->size()));
  for (const auto& k : *keys) AppendBulk(c.out, k);
  return ReadSeq();
}

uint64_t Dispatcher::Scan(Ctx& c) {
  uint64_t cursor;
  if (!ParseUint64(c.args[1], &cursor)) {
    AppendError(c.out, "ERR invalid cursor");
    return 0;
  }
  std::string_view pattern = "*";
  uint64_t count = 10;
  std::string_view type_filter;  // empty: every type
  for (size_t i = 2; i < c.args.size(); i += 2) {
    if (i + 1 >= c.args.size()) {
      AppendError(c.out, kSyntax);
      return 0;
    }
    if (EqualsIgnoreCase(c.args[i], "match")) {
      pattern = c.args[i + 1];
    } else if (EqualsIgnoreCase(c.args[i], "count")) {
      int64_t n;
      if (!ParseInt64(c.args[i + 1], &n)) {
        AppendError(c.out, kNotInteger);
        return 0;
      }
      if (n < 1) {
        AppendError(c.out, kSyntax);
        return 0;
      }
      count = static_cast<uint64_t>(n);
    } else if (EqualsIgnoreCase(c.args[i], "type")) {
      type_filter = c.args[i + 1];
    } else {
      AppendError(c.out, kSyntax);
      return 0;
    }
  }
  std::vector<std::string> keys;
  auto next = store_->Scan(cursor, pattern, count, &keys);
  if (!next.ok()) return StoreError(c, next.status());
  if (!type_filter.empty()) {
    std::erase_if(keys, [&](const std::string& k) {
      auto info = store_->Lookup(k);
      return !info.ok() || !info->has_value() ||
             !EqualsIgnoreCase(TypeName((*info)->type), type_filter);
    });
  }
  AppendArrayHeader(c.out, 2);
  AppendBulk(c.out, std::to_string(*next));
  AppendArrayHeader(c.out, static_cast<int64_t>(keys.size()));
  for (const auto& k : keys) AppendBulk(c.out, k);
  return ReadSeq();
}

uint64_t Dispatcher::DbSize(Ctx& c) {
  AppendInteger(c.out, static_cast<int64_t>(store_->KeyCount()));
  return ReadSeq();
}

uint64_t Dispatcher::FlushDb(Ctx& c) {
  if (c.args.size() > 2 || (c.args.size() == 2 && !EqualsIgnoreCase(c.args[1], "async") &&
                            !EqualsIgnoreCase(c.args[1], "sync"))) {
    AppendError(c.out, kSyntax);
    return 0;
  }
  WriteBatch b;
  b.Clear();
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendSimple(c.out, "OK");
  return *seq;
}

uint64_t Dispatcher::Type(Ctx& c) {
  auto info = store_->Lookup(c.args[1]);
  if (!info.ok()) return StoreError(c, info.status());
  AppendSimple(c.out, info->has_value() ? TypeName((*info)->type) : "none");
  return ReadSeq();
}

uint64_t Dispatcher::TtlImpl(Ctx& c, bool millis, bool absolute) {
  auto info = store_->Lookup(c.args[1]);
  if (!info.ok()) return StoreError(c, info.status());
  if (!info->has_value()) {
    AppendInteger(c.out, -2);
  } else if ((*info)->expiry_ms == 0) {
    AppendInteger(c.out, -1);
  } else if (absolute) {
    const int64_t at = (*info)->expiry_ms;
    AppendInteger(c.out, millis ? at : (at + 500) / 1000);
  } else {
    int64_t left = std::max<int64_t>(0, (*info)->expiry_ms - store_->NowMs());
    AppendInteger(c.out, millis ? left : (left + 500) / 1000);
  }
  return ReadSeq();
}

uint64_t Dispatcher::Ttl(Ctx& c) { return TtlImpl(c, false, false); }
uint64_t Dispatcher::PTtl(Ctx& c) { return TtlImpl(c, true, false); }
uint64_t Dispatcher::ExpireTime(Ctx& c) { return TtlImpl(c, false, true); }
uint64_t Dispatcher::PExpireTime(Ctx& c) { return TtlImpl(c, true, true); }

uint64_t Dispatcher::ExpireImpl(Ctx& c, bool millis, bool absolute) {
  int64_t v;
  if (!ParseInt64(c.args[2], &v)) {
    AppendError(c.out, kNotInteger);
    return 0;
  }
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t i = 3; i < c.args.size(); ++i) {
    if (EqualsIgnoreCase(c.args[i], "nx"))
      nx = true;
    else if (EqualsIgnoreCase(c.args[i], "xx"))
      xx = true;
    else if (EqualsIgnoreCase(c.args[i], "gt"))
      gt = true;
    else if (EqualsIgnoreCase(c.args[i], "lt"))
      lt = true;
    else {
      AppendError(c.out, std::string("ERR Unsupported option ") + std::string(c.args[i]));
      return 0;
    }
  }
  if ((nx && (xx || gt || lt)) || (gt && lt)) {
    AppendError(c.out, "ERR NX and XX, GT or LT options at the same time are not compatible");
    return 0;
  }
  const int64_t now = store_->NowMs();
  const int64_t base = absolute ? 0 : now;  // EXPIREAT/PEXPIREAT: v is a unix time
  const int64_t ms_limit = INT64_MAX - base;
  if ((!millis && (v > ms_limit / 1000 || v < INT64_MIN / 1000)) || (millis && v > ms_limit) ||
      (absolute && !millis && v * 1000 > ms_limit)) {
    AppendError(c.out, std::string("ERR invalid expire time in '") + c.spec->name + "' command");
    return 0;
  }
  const int64_t expiry = base + (millis ? v : v * 1000);
  auto info = store_->Lookup(c.args[1]);
  if (!info.ok()) return StoreError(c, info.status());
  if (!info->has_value()) {
    AppendInteger(c.out, 0);
    return ReadSeq();
  }
  const int64_t cur = (*info)->expiry_ms;
  if ((nx && cur != 0) || (xx && cur == 0) || (gt && (cur == 0 || expiry <= cur)) ||
      (lt && cur != 0 && expiry >= cur)) {
    AppendInteger(c.out, 0);
    return ReadSeq();
  }
  WriteBatch b;
  if (expiry <= now) {
    b.Delete(c.args[1]);
  } else {
    b.Expire(c.args[1], expiry);
  }
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendInteger(c.out, 1);
  return *seq;
}

uint64_t Dispatcher::Expire(Ctx& c) { return ExpireImpl(c, false, false); }
uint64_t Dispatcher::PExpire(Ctx& c) { return ExpireImpl(c, true, false); }
uint64_t Dispatcher::ExpireAt(Ctx& c) { return ExpireImpl(c, false, true); }
uint64_t Dispatcher::PExpireAt(Ctx& c) { return ExpireImpl(c, true, true); }

uint64_t Dispatcher::Persist(Ctx& c) {
  auto info = store_->Lookup(c.args[1]);
  if (!info.ok()) return StoreError(c, info.status());
  if (!info->has_value() || (*info)->expiry_ms == 0) {
    AppendInteger(c.out, 0);
    return ReadSeq();
  }
  WriteBatch b;
  b.Expire(c.args[1], 0);
  auto seq = store_->Apply(b);
  if (!seq.ok()) return StoreError(c, seq.status());
  AppendInteger(c.out, 1);
  return *seq;
}

// CONFIG GET pattern [pattern ...] over the parameters cosmos-kv has (all
// fixed at startup); CONFIG SET answers Redis's errors; CONFIG RESETSTAT.
uint64_t Dispatcher::Config(Ctx& c) {
  const std::string sub = Lower(c.args[1]);
  std::vector<std::pair<std::string, std::string>> params = {
      {"proto-max-bulk-len", std::to_string(options_.max_bulk_len)}, {"databases", "1"}};
  if (options_.config_params) {
    for (auto& p : options_.config_params()) params.push_back(std::move(p));
  }
  if (sub == "get" && c.args.size() >= 3) {
    std::vector<const std::pair<std::string, std::string>*> hits;
    for (const auto& p : params) {
      for (size_t i = 2; i < c.args.size(); ++i) {
        if (GlobMatch(Lower(c.args[i]), p.first)) {
          hits.push_back(&p);
          break;
        }
      }
    }
    AppendArrayHeader(c.out, static_cast<int64_t>(2 * hits.size()));
    for (const auto* p : hits) {
      AppendBulk(c.out, p->first);
      AppendBulk(c.out, p->second);
    }
  } else if (sub == "set" && c.args.size() >= 4 && c.args.size() % 2 == 0) {
    const std::string name = Lower(c.args[2]);
    const bool known =
        std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
    if (known) {  // every parameter is fixed at startup (a flag of cosmos-kv)
      AppendError(c.out, "ERR CONFIG SET failed (possibly related to argument '" + name +
                             "') - can't set immutable config");
    } else {
      AppendError(c.out, "ERR Unknown option or number of arguments for CONFIG SET - '" +
                             std::string(c.args[2].substr(0, 128)) + "'");
    }
  } else if (sub == "resetstat" && c.args.size() == 2) {
    commands_processed_ = 0;
    AppendSimple(c.out, "OK");
  } else if (sub == "get" || sub == "set" || sub == "resetstat") {
    AppendError(c.out, "ERR wrong number of arguments for 'config|" + sub + "' command");
  } else {
    AppendError(c.out, "ERR unknown subcommand '" + std::string(c.args[1].substr(0, 128)) +
                           "'. Try CONFIG HELP.");
  }
  return 0;
}

// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: every applied write is
// committed by the store's shutdown, so SAVE and NOSAVE mean the same here.
uint64_t Dispatcher::Shutdown(Ctx& c) {
  bool abort = false;
  for (size_t i = 1; i < c.args.size(); ++i) {
    const std::string opt = Lower(c.args[i]);
    if (opt == "abort") {
      abort = true;
    } else if (opt != "nosave" && opt != "save" && opt != "now" && opt != "force") {
      AppendError(c.out, kSyntax);
      return 0;
    }
  }
  if (abort) {
    AppendError(c.out, c.args.size() == 2 ? "ERR No shutdown in progress." : kSyntax);
    return 0;
  }
  c.session.shutdown = true;  // no reply: the connection closes, as in Redis
  c.session.quit = true;
  return 0;
}

// WAIT numreplicas timeout: the number of copies besides the primary that
// hold this client's earlier writes. Every write is acknowledged only once
// durable on every replica of the region's current epoch, so that is the
// backups of the current configuration (confirmed by a round trip, which
// removes a failed backup first); 0 for an unreplicated store (a Redis master
// without replicas). Answers at once: waiting would not add copies (Redis
// waits up to the timeout while fewer than numreplicas acknowledged). The
// reply is released once the client's earlier writes are durable.
uint64_t Dispatcher::Wait(Ctx& c) {
  int64_t replicas, timeout;
  if (!ParseInt64(c.args[1], &replicas) || !ParseInt64(c.args[2], &timeout)) {
    AppendError(c.out, kNotInteger);
    return 0;
  }
  if (timeout < 0) {
    AppendError(c.out, "ERR timeout is negative");
    return 0;
  }
  auto backups = store_->DurableBackups();
  if (!backups.ok()) return StoreError(c, backups.status());
  AppendInteger(c.out, static_cast<int64_t>(*backups));
  return ReadSeq();  // after this client's earlier writes are durable
}

uint64_t Dispatcher::Info(Ctx& c) {
  const StoreStats st = store_->Stats();
  const int64_t uptime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now().time_since_epoch())
                                .count() -
                            kStartMs;
  // INFO [section]: server, clients, persistence, stats, keyspace; default all.
  std::string section = c.args.size() > 1 ? Lower(c.args[1]) : "all";
  if (section == "default" || section == "everything") section = "all";
  auto want = [&](const char* name) { return section == "all" || section == name; };
  std::string s;
  if (want("server")) {
    s += "# Server\r\nredis_version:" + std::string(kRedisCompatVersion) +
         "\r\ncosmos_kv_version:" COSMOS_VERSION_STRING "\r\nredis_mode:standalone\r\n";
    s += "os:Linux\r\narch_bits:64\r\nprocess_id:" + std::to_string(getpid()) + "\r\n";
    s += "tcp_port:" + std::to_string(options_.tcp_port) + "\r\n";
    s += "uptime_in_seconds:" + std::to_string(uptime_ms / 1000) + "\r\n\r\n";
  }
  if (want("clients")) {
    s += "# Clients\r\n";
    if (options_.info_clients) s += options_.info_clients();
    s += "\r\n";
  }
  if (want("persistence")) {
    s += "# Persistence\r\n";
    s += "cosmos_storage_backend:" + st.device_backend + "\r\n";
    s += "cosmos_durability_level:" + st.durability + "\r\n";
    s += "cosmos_security_mode:" + options_.security_mode + "\r\n";
    s += "cosmos_log_generation:" + std::to_string(st.generation) + "\r\n";
    s += "cosmos_log_capacity_bytes:" + std::to_string(st.log_capacity) + "\r\n";
    s += "cosmos_log_used_bytes:" + std::to_string(st.log_used) + "\r\n";
    s += "cosmos_log_live_bytes:" + std::to_string(st.live_bytes) + "\r\n";
    s += "cosmos_last_sequence:" + std::to_string(st.last_sequence) + "\r\n";
    s += "cosmos_durable_sequence:" + std::to_string(st.durable_sequence) + "\r\n";
    s += "cosmos_group_commits:" + std::to_string(st.group_commits) + "\r\n";
    s += "cosmos_records_committed:" + std::to_string(st.records_committed) + "\r\n";
    s += "cosmos_compactions:" + std::to_string(st.compactions) + "\r\n\r\n";
  }
  if (want("stats")) {
    s += "# Stats\r\ntotal_commands_processed:" + std::to_string(commands_processed_) + "\r\n";
    if (options_.info_stats) s += options_.info_stats();
    s += "\r\n";
  }
  if (want("keyspace")) {
    s += "# Keyspace\r\n";
    if (st.keys > 0) {
      s += "db0:keys=" + std::to_string(st.keys) +
           ",expires=" + std::to_string(st.keys_with_expiry) +
           ",avg_ttl=" + std::to_string(st.avg_ttl_ms) + "\r\n";
    }
  }
  // Redis separates sections by a blank line and ends without one.
  if (s.ends_with("\r\n\r\n")) s.resize(s.size() - 2);
  AppendBulk(c.out, s);
  return 0;
}

uint64_t Dispatcher::Command(Ctx& c) {
  if (c.args.size() == 1) {
    AppendArrayHeader(c.out, 0);
  } else if (EqualsIgnoreCase(c.args[1], "count")) {
    AppendInteger(c.out, static_cast<int64_t>(CommandCount()));
  } else if (EqualsIgnoreCase(c.args[1], "docs") || EqualsIgnoreCase(c.args[1], "info") ||
             EqualsIgnoreCase(c.args[1], "list")) {
    AppendArrayHeader(c.out, 0);
  } else {
    AppendError(c.out, "ERR unknown subcommand '" + std::string(c.args[1].substr(0, 128)) +
                           "'. Try COMMAND HELP.");
  }
  return 0;
}

uint64_t Dispatcher::Client(Ctx& c) {
  std::string_view sub = c.args[1];
  if (EqualsIgnoreCase(sub, "help") && c.args.size() == 2) {
    // The subcommands cosmos-kv has (Redis's wording where they overlap).
    const char* lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>,",
        "    SKIPME (YES|NO).",
        "LIST [ID <id> [<id> ...]]",
        "    Return information about client connections.",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        "    Accepted and ignored.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "HELP",
        "    Print this help.",
    };
    AppendArrayHeader(c.out, static_cast<int64_t>(std::size(lines)));
    for (const char* l : lines) AppendSimple(c.out, l);
  } else if (EqualsIgnoreCase(sub, "setname") && c.args.size() == 3) {
    if (SetClientName(c.session, c.args[2], c.out)) AppendSimple(c.out, "OK");
  } else if (EqualsIgnoreCase(sub, "getname") && c.args.size() == 2) {
    if (c.session.name.empty())
      AppendNull(c.out);
    else
      AppendBulk(c.out, c.session.name);
  } else if (EqualsIgnoreCase(sub, "id") && c.args.size() == 2) {
    AppendInteger(c.out, static_cast<int64_t>(c.session.id));
  } else if (EqualsIgnoreCase(sub, "setinfo") && c.args.size() == 4) {
    AppendSimple(c.out, "OK");
  } else if ((EqualsIgnoreCase(sub, "list") || EqualsIgnoreCase(sub, "info") ||
              EqualsIgnoreCase(sub, "kill")) &&
             options_.client_admin) {
    options_.client_admin(c.session, c.args, c.out);
  } else if (const std::string lower = Lower(sub);
             lower == "setname" || lower == "getname" || lower == "id" || lower == "setinfo") {
    AppendError(c.out, "ERR wrong number of arguments for 'client|" + lower + "' command");
  } else {
    AppendError(c.out, "ERR unknown subcommand '" + std::string(sub.substr(0, 128)) +
                           "'. Try CLIENT HELP.");
  }
  return 0;
}

uint64_t Dispatcher::Select(Ctx& c) {
  int64_t db;
  if (!ParseInt64(c.args[1], &db)) {
    AppendError(c.out, kNotInteger);
  } else if (db != 0) {
    AppendError(c.out, "ERR DB index is out of range");
  } else {
    AppendSimple(c.out, "OK");
  }
  return 0;
}

uint64_t Dispatcher::Quit(Ctx& c) {
  c.session.quit = true;
  AppendSimple(c.out, "OK");
  return 0;
}

// HELLO [protover [AUTH username password] [SETNAME name]]: switches the
// connection's protocol (2 or 3) and answers the server's properties, as a
// map in RESP3. Nothing changes unless every option is valid (Redis's order
// of checks: version, option syntax, AUTH, SETNAME).
uint64_t Dispatcher::Hello(Ctx& c) {
  int64_t ver = 0;
  size_t i = 1;
  if (c.args.size() >= 2) {
    if (!ParseInt64(c.args[1], &ver)) {
      AppendError(c.out, "ERR Protocol version is not an integer or out of range");
      return 0;
    }
    if (ver < 2 || ver > 3) {
      AppendError(c.out, "NOPROTO unsupported protocol version");
      return 0;
    }
    i = 2;
  }
  std::optional<std::string_view> user, name;
  for (; i < c.args.size(); ++i) {
    const size_t more = c.args.size() - 1 - i;
    if (EqualsIgnoreCase(c.args[i], "auth") && more >= 2) {
      user = c.args[i + 1];
      i += 2;  // any password: the default user has none (nopass)
    } else if (EqualsIgnoreCase(c.args[i], "setname") && more >= 1) {
      name = c.args[++i];
    } else {
      AppendError(c.out, "ERR Syntax error in HELLO option '" +
                             std::string(c.args[i].substr(0, 128)) + "'");
      return 0;
    }
  }
  if (user.has_value() && !AuthenticateUser(*user, c.out)) return 0;
  if (name.has_value() && !SetClientName(c.session, *name, c.out)) return 0;
  if (ver != 0) c.session.resp = static_cast<int>(ver);
  AppendArrayHeader(c.out, 14);  // a map in RESP3 (kv/resp3.cc)
  AppendBulk(c.out, "server");
  AppendBulk(c.out, "redis");
  AppendBulk(c.out, "version");
  AppendBulk(c.out, kRedisCompatVersion);
  AppendBulk(c.out, "proto");
  AppendInteger(c.out, c.session.resp);
  AppendBulk(c.out, "id");
  AppendInteger(c.out, static_cast<int64_t>(c.session.id));
  AppendBulk(c.out, "mode");
  AppendBulk(c.out, "standalone");
  AppendBulk(c.out, "role");
  AppendBulk(c.out, "master");
  AppendBulk(c.out, "modules");
  AppendArrayHeader(c.out, 0);
  return 0;
}

// AUTH [username] password, as Redis with no password configured: the only
// user is "default" and it takes any password.
uint64_t Dispatcher::Auth(Ctx& c) {
  if (c.args.size() > 3) {
    AppendError(c.out, kSyntax);
  } else if (c.args.size() == 2) {
    AppendError(c.out,
                "ERR AUTH <password> called without any password configured for the default "
                "user. Are you sure your configuration is correct?");
  } else if (AuthenticateUser(c.args[1], c.out)) {
    AppendSimple(c.out, "OK");
  }
  return 0;
}

bool Dispatcher::RejectInSubscribedMode(const ClientSession& session,
                                        std::span<const std::string_view> args, std::string* out) {
  // RESP3 connections may run any command while subscribed (Redis 7.0).
  if (session.subscriptions == 0 || session.resp != 2) return false;
  for (std::string_view ok :
       {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit", "reset"}) {
    if (EqualsIgnoreCase(args[0], ok)) return false;
  }
  const CommandSpec* spec = Find(args[0]);
  const TypedCommand* typed = spec == nullptr ? FindTypedCommand(args[0]) : nullptr;
  // Redis checks arity before the subscribed-mode rule.
  if ((spec != nullptr && !ArityOk(spec->arity, args.size())) ||
      (typed != nullptr && !ArityOk(typed->arity, args.size()))) {
    return false;
  }
  const bool transaction =
      EqualsIgnoreCase(args[0], "multi") || EqualsIgnoreCase(args[0], "exec") ||
      EqualsIgnoreCase(args[0], "discard") || EqualsIgnoreCase(args[0], "watch") ||
      EqualsIgnoreCase(args[0], "unwatch");
  if (spec == nullptr && typed == nullptr && !transaction) {
    AppendUnknownCommand(args, out);
    return true;
  }
  const std::string name = spec != nullptr    ? spec->name
                           : typed != nullptr ? typed->name
                                              : Lower(args[0]);
  AppendError(out, "ERR Can't execute '" + name +
                       "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                       "allowed in this context");
  return true;
}

// RESET: leaves MULTI, forgets WATCHed keys and the client name, and drops
// every subscription, as Redis does; replies +RESET.
uint64_t Dispatcher::Reset(Ctx& c) {
  c.session.tx.Reset();
  c.session.name.clear();
  c.session.resp = 2;
  if (c.session.subscriptions > 0 && options_.pubsub.subscribe) {
    std::string discarded;  // the unsubscribe replies are not sent
    const std::string_view unsub[] = {"unsubscribe"};
    const std::string_view punsub[] = {"punsubscribe"};
    options_.pubsub.subscribe(c.session, unsub, &discarded);
    options_.pubsub.subscribe(c.session, punsub, &discarded);
  }
  AppendSimple(c.out, "RESET");
  return 0;
}

uint64_t Dispatcher::Publish(Ctx& c) {
  AppendInteger(c.out, options_.pubsub.publish ? options_.pubsub.publish(c.args[1], c.args[2]) : 0);
  return 0;
}

uint64_t Dispatcher::Subscribe(Ctx& c) {
  if (!options_.pubsub.subscribe) {
    AppendError(c.out, "ERR pub/sub needs the cosmos-kv server");
    return 0;
  }
  options_.pubsub.subscribe(c.session, c.args, c.out);
  return 0;
}

uint64_t Dispatcher::PubSub(Ctx& c) {
  const std::string sub = Lower(c.args[1]);
  const bool known = (sub == "channels" && c.args.size() <= 3) || sub == "numsub" ||
                     (sub == "numpat" && c.args.size() == 2);
  if (sub == "help" && c.args.size() == 2) {
    const char* lines[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "HELP",
        "    Print this help.",
    };
    AppendArrayHeader(c.out, static_cast<int64_t>(std::size(lines)));
    for (const char* l : lines) AppendSimple(c.out, l);
  } else if (sub == "channels" || sub == "numpat") {
    if (!known && sub == "channels") {  // Redis checks CHANNELS's arguments itself
      AppendError(c.out, "ERR unknown subcommand or wrong number of arguments for '" +
                             std::string(c.args[1].substr(0, 128)) + "'. Try PUBSUB HELP.");
    } else if (!known) {
      AppendError(c.out, "ERR wrong number of arguments for 'pubsub|" + sub + "' command");
    } else if (options_.pubsub.introspect) {
      options_.pubsub.introspect(c.args, c.out);
    } else {
      AppendError(c.out, "ERR pub/sub needs the cosmos-kv server");
    }
  } else if (sub == "numsub") {
    if (options_.pubsub.introspect) {
      options_.pubsub.introspect(c.args, c.out);
    } else {
      AppendError(c.out, "ERR pub/sub needs the cosmos-kv server");
    }
  } else {
    AppendError(c.out, "ERR unknown subcommand '" + std::string(c.args[1].substr(0, 128)) +
                           "'. Try PUBSUB HELP.");
  }
  return 0;
}

uint64_t Dispatcher::Time(Ctx& c) {
  const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  AppendArrayHeader(c.out, 2);
  AppendBulk(c.out, std::to_string(us / 1000000));
  AppendBulk(c.out, std::to_string(us % 1000000));
  return 0;
}

}  // namespace cosmos::kv
