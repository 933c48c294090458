// RespServer administration: CLIENT LIST, CLIENT INFO and CLIENT KILL over
// the live connections, with Redis 7.0's line format (the fields cosmos-kv
// can fill with real values).
#include <chrono>

#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/server.h"
#include "kv/server_conn.h"

namespace cosmos::kv {

std::string RespServer::DescribeClient(const Conn* c) const {
  const auto now = Clock::now();
  auto seconds = [&](Clock::time_point t) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - t).count());
  };
  std::string flags;
  if (c->blocked) flags += 'b';
  if (!c->channels.empty() || !c->patterns.empty()) flags += 'P';
  if (c->session.tx.in_multi) flags += 'x';
  if (c->close_after_write || c->killed) flags += 'c';
  if (flags.empty()) flags = "N";
  const std::string command = c->last_command.empty() ? "NULL" : Lower(c->last_command);
  return "id=" + std::to_string(c->session.id) + " addr=" + c->addr + " laddr=" + c->laddr +
         " fd=" + std::to_string(c->fd) + " name=" + c->session.name +
         " age=" + seconds(c->created) + " idle=" + seconds(c->last_active) + " flags=" + flags +
         " db=0 sub=" + std::to_string(c->channels.size()) +
         " psub=" + std::to_string(c->patterns.size()) +
         " multi=" + (c->session.tx.in_multi ? std::to_string(c->session.tx.queued.size()) : "-1") +
         " qbuf=" + std::to_string(c->in.size() - c->in_off) +
         " obl=" + std::to_string(c->out.size() - c->out_off) +
         " omem=" + std::to_string(c->pending.size()) + " events=" + (c->reading ? "r" : "") +
         (c->out_off < c->out.size() ? "w" : "") + " cmd=" + command +
         " user=default resp=" + std::to_string(c->session.resp) + "\n";
}

void RespServer::ClientAdmin(ClientSession& session, std::span<const std::string_view> args,
                             std::string* out) {
  const std::string sub = Lower(args[1]);
  auto self = conns_by_id_.find(session.id);
  if (sub == "info" && args.size() == 2) {
    AppendBulk(out, self == conns_by_id_.end() ? "" : DescribeClient(self->second));
  } else if (sub == "list") {
    std::vector<uint64_t> ids;  // CLIENT LIST [ID id ...]
    if (args.size() > 2) {
      if (!EqualsIgnoreCase(args[2], "id") || args.size() < 4) {
        AppendError(out, kSyntax);
        return;
      }
      for (size_t i = 3; i < args.size(); ++i) {
        uint64_t id;
        if (!ParseUint64(args[i], &id) || id == 0) {
          AppendError(out, "ERR Invalid client ID");
          return;
        }
        ids.push_back(id);
      }
    }
    std::vector<const Conn*> listed;
    for (const auto& [fd, c] : conns_) {
      if (ids.empty() || std::find(ids.begin(), ids.end(), c->session.id) != ids.end()) {
        listed.push_back(c.get());
      }
    }
    std::sort(listed.begin(), listed.end(),
              [](const Conn* a, const Conn* b) { return a->session.id < b->session.id; });
    std::string text;
    for (const Conn* c : listed) text += DescribeClient(c);
    AppendBulk(out, text);
  } else if (sub == "kill" && args.size() == 3) {  // old form: CLIENT KILL addr:port
    for (const auto& [fd, c] : conns_) {
      if (c->addr == args[2] && !c->killed) {
        c->killed = true;
        killed_.push_back(c->session.id);
        AppendSimple(out, "OK");
        return;
      }
    }
    AppendError(out, "ERR No such client");
  } else if (sub == "kill" && args.size() >= 4 && args.size() % 2 == 0) {
    // CLIENT KILL [ID id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no]
    std::optional<uint64_t> id;
    std::string_view addr, laddr;
    bool skip_me = true;
    for (size_t i = 2; i + 1 < args.size(); i += 2) {
      const std::string filter = Lower(args[i]);
      if (filter == "id") {
        uint64_t v;
        if (!ParseUint64(args[i + 1], &v) || v == 0) {
          AppendError(out, "ERR client-id should be greater than 0");
          return;
        }
        id = v;
      } else if (filter == "addr") {
        addr = args[i + 1];
      } else if (filter == "laddr") {
        laddr = args[i + 1];
      } else if (filter == "skipme" &&
                 (EqualsIgnoreCase(args[i + 1], "yes") || EqualsIgnoreCase(args[i + 1], "no"))) {
        skip_me = EqualsIgnoreCase(args[i + 1], "yes");
      } else {
        AppendError(out, kSyntax);
        return;
      }
    }
    int64_t killed = 0;
    for (const auto& [fd, c] : conns_) {
      if ((id && c->session.id != *id) || (!addr.empty() && c->addr != addr) ||
          (!laddr.empty() && c->laddr != laddr) || (skip_me && c->session.id == session.id) ||
          c->killed) {
        continue;
      }
      c->killed = true;
      killed_.push_back(c->session.id);
      ++killed;
    }
    AppendInteger(out, killed);
  } else {
    AppendError(out, "ERR unknown subcommand or wrong number of arguments for '" +
                         std::string(args[1].substr(0, 128)) + "'. Try CLIENT HELP.");
  }
}

// Killed clients are closed between commands (never inside another
// client's command) and read no further commands; replies they were
// already given are sent first (only once durable), then they are closed.
void RespServer::CloseKilled() {
  std::vector<uint64_t> ids;
  ids.swap(killed_);
  for (uint64_t id : ids) {
    auto it = conns_by_id_.find(id);
    if (it == conns_by_id_.end()) continue;
    Conn* c = it->second;
    if (c->out_off < c->out.size() || !c->pending.empty()) {
      // Replies already produced go out once durable (CLIENT KILL of itself
      // gets its reply), then the connection closes.
      c->close_after_write = true;
      if (!c->waiting) {
        Release(c, 0);
        WriteOut(c);
      }
      continue;
    }
    Close(c);
  }
}

}  // namespace cosmos::kv
