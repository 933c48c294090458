// MULTI/EXEC/DISCARD/WATCH/UNWATCH: the Dispatcher's entry point. Commands
// are queued while MULTI is open; EXEC runs them back to back inside one
// Store atomic section (one commit group: all durable or none after a crash)
// and releases the replies once the last write is durable.
#include <algorithm>

#include "kv/command_util.h"
#include "kv/commands.h"
#include "kv/resp.h"

namespace cosmos::kv {

uint64_t Dispatcher::Execute(ClientSession& session, std::span<const std::string_view> args,
                             std::string* out) {
  if (args.empty()) return Dispatch(session, args, out);  // checked there
  TransactionState& tx = session.tx;
  const std::string_view name = args[0];
  const bool is_exec = EqualsIgnoreCase(name, "exec");
  const bool is_discard = EqualsIgnoreCase(name, "discard");
  const bool is_multi = EqualsIgnoreCase(name, "multi");
  const bool is_watch = EqualsIgnoreCase(name, "watch");
  const bool is_unwatch = EqualsIgnoreCase(name, "unwatch");
  if (is_exec || is_discard || is_multi || is_watch || is_unwatch) {
    ++commands_processed_;
    const size_t want_min = is_watch ? 2 : 1;
    if (args.size() < want_min || (!is_watch && args.size() != 1)) {
      const std::string why = "wrong number of arguments for '" + Lower(name) + "' command";
      if (is_exec) {  // Redis turns any rejection of EXEC into EXECABORT
        tx.Reset();
        AppendError(out, "EXECABORT Transaction discarded because of: " + why);
      } else {
        AppendError(out, "ERR " + why);
        if (tx.in_multi) tx.queue_error = true;
      }
      return 0;
    }
    if (is_multi) {
      if (tx.in_multi) {
        AppendError(out, "ERR MULTI calls can not be nested");
      } else {
        tx.in_multi = true;
        AppendSimple(out, "OK");
      }
      return 0;
    }
    if (is_watch) {
      if (tx.in_multi) {
        AppendError(out, "ERR WATCH inside MULTI is not allowed");
        return 0;
      }
      Watch(session, args, out);
      return ReadSeq();
    }
    if (is_unwatch) {
      if (!tx.in_multi) tx.watched.clear();  // inside MULTI it is queued below
      if (!tx.in_multi) {
        AppendSimple(out, "OK");
        return 0;
      }
    } else if (!tx.in_multi) {
      AppendError(out, is_exec ? "ERR EXEC without MULTI" : "ERR DISCARD without MULTI");
      return 0;
    } else if (is_discard) {
      tx.Reset();
      AppendSimple(out, "OK");
      return 0;
    } else {
      return Exec(session, out);
    }
  }
  if (!tx.in_multi) return Dispatch(session, args, out);
  // QUIT is never queued (Redis closes the connection at once).
  if (EqualsIgnoreCase(name, "quit")) return Dispatch(session, args, out);
  if (!is_unwatch && !CheckCommand(args, out)) {
    tx.queue_error = true;
    return 0;
  }
  tx.queued.emplace_back(args.begin(), args.end());
  AppendSimple(out, "QUEUED");
  return 0;
}

void Dispatcher::Watch(ClientSession& session, std::span<const std::string_view> args,
                       std::string* out) {
  for (size_t i = 1; i < args.size(); ++i) {
    auto info = store_->Lookup(args[i]);
    if (!info.ok()) {
      AppendStoreError(out, info.status());
      return;
    }
    std::optional<KeyVersion> version;
    if (info->has_value()) version = (*info)->version;
    auto& w = session.tx.watched;
    auto it = std::find_if(w.begin(), w.end(), [&](const auto& p) { return p.first == args[i]; });
    if (it == w.end()) w.emplace_back(std::string(args[i]), version);  // first WATCH counts
  }
  AppendSimple(out, "OK");
}

uint64_t Dispatcher::Exec(ClientSession& session, std::string* out) {
  TransactionState& tx = session.tx;
  if (tx.queue_error) {
    tx.Reset();
    AppendError(out, "EXECABORT Transaction discarded because of previous errors.");
    return 0;
  }
  // WATCH: any watched key whose version token changed (written, deleted,
  // expired, its TTL changed, or moved by a compaction) aborts with nil.
  for (const auto& [key, version] : tx.watched) {
    auto info = store_->Lookup(key);
    std::optional<KeyVersion> now;
    if (info.ok() && info->has_value()) now = (*info)->version;
    if (!info.ok() || now != version) {
      tx.Reset();
      out->append("*-1\r\n");
      return ReadSeq();
    }
  }
  std::vector<std::vector<std::string>> queued = std::move(tx.queued);
  tx.Reset();
  AppendArrayHeader(out, static_cast<int64_t>(queued.size()));
  uint64_t seq = ReadSeq();
  std::vector<std::string_view> views;
  store_->BeginAtomic();
  for (const auto& cmd : queued) {
    if (EqualsIgnoreCase(cmd[0], "unwatch")) {
      AppendSimple(out, "OK");  // nothing is watched any more (Reset above)
      continue;
    }
    views.assign(cmd.begin(), cmd.end());
    seq = std::max(seq, Dispatch(session, views, out));
  }
  store_->EndAtomic();
  return std::max(seq, ReadSeq());
}

}  // namespace cosmos::kv
