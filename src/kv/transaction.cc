// MULTI/EXEC/DISCARD/WATCH/UNWATCH: the Dispatcher's entry point. Commands
// are queued while MULTI is open; EXEC runs them back to back inside one
// Store atomic section (one commit group: all durable or none after a crash)
// and releases the replies once the last write is durable.
#include <algorithm>

#include "kv/command_util.h"
#include "kv/commands.h"
#include "kv/resp.h"

namespace cosmos::kv {

namespace {

bool IsTransactionCommand(std::string_view name) {
  for (std::string_view t : {"multi", "exec", "discard", "watch", "unwatch"}) {
    if (EqualsIgnoreCase(name, t)) return true;
  }
  return false;
}

}  // namespace

uint64_t Dispatcher::Execute(ClientSession& session, std::span<const std::string_view> args,
                             std::string* out) {
  if (args.empty()) return Dispatch(session, args, out);  // checked there
  if (RejectInSubscribedMode(session, args, out)) return 0;
  if (IsTransactionCommand(args[0])) return TransactionCommand(session, args, out);
  TransactionState& tx = session.tx;
  // QUIT and RESET are never queued (Redis runs them at once).
  if (!tx.in_multi || EqualsIgnoreCase(args[0], "quit") || EqualsIgnoreCase(args[0], "reset")) {
    return Dispatch(session, args, out);
  }
  if (!CheckCommand(args, out)) {
    tx.queue_error = true;
    return 0;
  }
  tx.queued.emplace_back(args.begin(), args.end());
  AppendSimple(out, "QUEUED");
  return 0;
}

uint64_t Dispatcher::TransactionCommand(ClientSession& session,
                                        std::span<const std::string_view> args, std::string* out) {
  ++commands_processed_;
  TransactionState& tx = session.tx;
  const std::string_view name = args[0];
  const bool is_watch = EqualsIgnoreCase(name, "watch");
  if (is_watch ? args.size() < 2 : args.size() != 1) {
    const std::string why = "wrong number of arguments for '" + Lower(name) + "' command";
    if (EqualsIgnoreCase(name, "exec")) {  // Redis turns any rejection of EXEC into EXECABORT
      tx.Reset();
      AppendError(out, "EXECABORT Transaction discarded because of: " + why);
    } else {
      AppendError(out, "ERR " + why);
      if (tx.in_multi) tx.queue_error = true;
    }
    return 0;
  }
  if (EqualsIgnoreCase(name, "multi")) {
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
  if (EqualsIgnoreCase(name, "unwatch")) {
    if (tx.in_multi) {  // queued; EXEC forgets the watched keys anyway
      tx.queued.emplace_back(args.begin(), args.end());
      AppendSimple(out, "QUEUED");
    } else {
      tx.watched.clear();
      AppendSimple(out, "OK");
    }
    return 0;
  }
  const bool is_exec = EqualsIgnoreCase(name, "exec");
  if (!tx.in_multi) {
    AppendError(out, is_exec ? "ERR EXEC without MULTI" : "ERR DISCARD without MULTI");
    return 0;
  }
  if (is_exec) return Exec(session, out);
  tx.Reset();  // DISCARD
  AppendSimple(out, "OK");
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
      out->append(session.resp == 3 ? "_\r\n" : "*-1\r\n");
      return ReadSeq();
    }
  }
  std::vector<std::vector<std::string>> queued = std::move(tx.queued);
  tx.Reset();
  AppendArrayHeader(out, static_cast<int64_t>(queued.size()));
  uint64_t seq = ReadSeq();
  std::vector<std::string_view> views;
  store_->BeginAtomic();
  in_exec_ = true;
  for (const auto& cmd : queued) {
    if (EqualsIgnoreCase(cmd[0], "unwatch")) {
      AppendSimple(out, "OK");  // nothing is watched any more (Reset above)
      continue;
    }
    views.assign(cmd.begin(), cmd.end());
    seq = std::max(seq, Dispatch(session, views, out));
  }
  in_exec_ = false;
  store_->EndAtomic();
  return std::max(seq, ReadSeq());
}

}  // namespace cosmos::kv
