// RespServer pub/sub: SUBSCRIBE/UNSUBSCRIBE/PSUBSCRIBE/PUNSUBSCRIBE, PUBLISH
// and PUBSUB CHANNELS|NUMSUB|NUMPAT with Redis's replies (push messages for
// RESP3 connections). Messages are not stored (Redis pub/sub is fire and
// forget): PUBLISH is not a write and needs no durability.
#include <algorithm>

#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/resp3.h"
#include "kv/server.h"
#include "kv/server_conn.h"

namespace cosmos::kv {

namespace {

// *3 <kind> <name or nil> :<count>, the reply to each (un)subscription.
void AppendSubscriptionReply(std::string* out, std::string_view kind, const std::string* name,
                             size_t count) {
  AppendArrayHeader(out, 3);
  AppendBulk(out, kind);
  if (name != nullptr) {
    AppendBulk(out, *name);
  } else {
    AppendNull(out);
  }
  AppendInteger(out, static_cast<int64_t>(count));
}

}  // namespace

void RespServer::SubscribeCommand(ClientSession& session, std::span<const std::string_view> args,
                                  std::string* out) {
  auto found = conns_by_id_.find(session.id);
  if (found == conns_by_id_.end()) {
    AppendError(out, "ERR pub/sub needs a client connection");
    return;
  }
  Conn* c = found->second;
  const std::string name = Lower(args[0]);
  const bool pattern = name[0] == 'p';
  const bool subscribe = name == "subscribe" || name == "psubscribe";
  std::vector<std::string>& mine = pattern ? c->patterns : c->channels;
  if (subscribe) {
    for (size_t i = 1; i < args.size(); ++i) {
      const std::string target(args[i]);
      if (std::find(mine.begin(), mine.end(), target) == mine.end()) {
        mine.push_back(target);
        if (pattern) {
          patterns_[target].push_back(c);
        } else {
          channels_[target].push_back(c);
        }
      }
      AppendSubscriptionReply(out, name, &target, c->channels.size() + c->patterns.size());
    }
  } else if (args.size() == 1) {  // all of them, or one reply with nil
    if (mine.empty()) {
      AppendSubscriptionReply(out, name, nullptr, c->channels.size() + c->patterns.size());
    }
    while (!mine.empty()) Unsubscribe(c, std::string(mine.front()), pattern, out);
  } else {
    for (size_t i = 1; i < args.size(); ++i) Unsubscribe(c, args[i], pattern, out);
  }
  session.subscriptions = c->channels.size() + c->patterns.size();
}

// Removes one subscription (if present) and, with `out`, appends its reply.
void RespServer::Unsubscribe(Conn* c, std::string_view name, bool pattern, std::string* out) {
  const std::string target(name);
  std::vector<std::string>& mine = pattern ? c->patterns : c->channels;
  if (auto it = std::find(mine.begin(), mine.end(), target); it != mine.end()) {
    mine.erase(it);
    auto drop = [&](auto& table) {
      auto t = table.find(target);
      if (t == table.end()) return;
      std::erase(t->second, c);
      if (t->second.empty()) table.erase(t);
    };
    if (pattern) {
      drop(patterns_);
    } else {
      drop(channels_);
    }
  }
  c->session.subscriptions = c->channels.size() + c->patterns.size();
  if (out != nullptr) {
    AppendSubscriptionReply(out, pattern ? "punsubscribe" : "unsubscribe", &target,
                            c->session.subscriptions);
  }
}

int64_t RespServer::Publish(std::string_view channel, std::string_view message) {
  // Collect first: delivering may close a client over its output limit.
  std::vector<std::pair<Conn*, std::string>> deliveries;
  if (auto it = channels_.find(std::string(channel)); it != channels_.end()) {
    std::string m;
    AppendArrayHeader(&m, 3);
    AppendBulk(&m, "message");
    AppendBulk(&m, channel);
    AppendBulk(&m, message);
    for (Conn* c : it->second) deliveries.emplace_back(c, m);
  }
  for (const auto& [pattern, subscribers] : patterns_) {
    if (!GlobMatch(pattern, channel)) continue;
    std::string m;
    AppendArrayHeader(&m, 4);
    AppendBulk(&m, "pmessage");
    AppendBulk(&m, pattern);
    AppendBulk(&m, channel);
    AppendBulk(&m, message);
    for (Conn* c : subscribers) deliveries.emplace_back(c, m);
  }
  std::vector<Conn*> over_limit;
  for (auto& [c, m] : deliveries) {
    DeliverMessage(c, m);
    if (OverOutputLimit(c)) over_limit.push_back(c);
  }
  std::sort(over_limit.begin(), over_limit.end());
  over_limit.erase(std::unique(over_limit.begin(), over_limit.end()), over_limit.end());
  for (Conn* c : over_limit) {
    ++output_limit_closes_;
    CloseForLimit(c, "output buffer", c->out.size() - c->out_off + c->pending.size(),
                  options_.output_buffer_limit_bytes);
  }
  return static_cast<int64_t>(deliveries.size());
}

// A message goes behind the client's replies still waiting for durability,
// else straight to its socket buffer (written when the socket is writable).
// RESP3 clients get it as a push message.
void RespServer::DeliverMessage(Conn* c, const std::string& message) {
  std::string push;
  if (c->session.resp == 3) push = PushMessage(message);
  const std::string& m = c->session.resp == 3 ? push : message;
  if (c->waiting || !c->pending.empty()) {
    c->pending.append(m);
    return;
  }
  c->out.append(m);
  UpdateEvents(c);
}

void RespServer::PubSubIntrospect(std::span<const std::string_view> args, std::string* out) {
  const std::string sub = Lower(args[1]);
  if (sub == "channels") {
    const std::string_view pattern = args.size() > 2 ? args[2] : "*";
    std::vector<const std::string*> names;
    for (const auto& [name, subscribers] : channels_) {
      if (GlobMatch(pattern, name)) names.push_back(&name);
    }
    AppendArrayHeader(out, static_cast<int64_t>(names.size()));
    for (const std::string* n : names) AppendBulk(out, *n);
  } else if (sub == "numsub") {
    AppendArrayHeader(out, static_cast<int64_t>(2 * (args.size() - 2)));
    for (size_t i = 2; i < args.size(); ++i) {
      auto it = channels_.find(std::string(args[i]));
      AppendBulk(out, args[i]);
      AppendInteger(out, it == channels_.end() ? 0 : static_cast<int64_t>(it->second.size()));
    }
  } else {  // numpat
    AppendInteger(out, static_cast<int64_t>(patterns_.size()));
  }
}

}  // namespace cosmos::kv
