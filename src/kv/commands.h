// Dispatcher: executes Redis commands against a Store and encodes their
// replies (RESP2, or RESP3 after HELLO 3: kv/resp3.h). Each command reports the log sequence number
// that must be durable before its reply may be released, so no client observes a write (its own or
// another client's) before it is durable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv/blocking.h"
#include "kv/store.h"
#include "kv/transaction.h"

namespace cosmos::kv {

class ValueCache;  // kv/typed_commands.h

// Per-connection state visible to commands.
struct ClientSession {
  uint64_t id = 0;
  std::string name;
  int resp = 2;         // protocol version (HELLO 2|3); replies are RESP3 when 3
  bool quit = false;    // set by QUIT: close after the reply is sent
  TransactionState tx;  // MULTI/EXEC/WATCH (kv/transaction.cc)
  // Set by a blocking command that found nothing to serve (BLPOP, ...): the
  // server parks the client until a key is ready or the timeout passes.
  BlockRequest block;
  // Channels plus patterns this client subscribes to (pub/sub): while
  // non-zero only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT and RESET run.
  size_t subscriptions = 0;
  bool shutdown = false;  // set by SHUTDOWN: the server stops after this command
};

// Pub/sub lives in the RESP server (it delivers to other connections); the
// Dispatcher routes the commands to it. Without hooks (a Dispatcher outside
// a server) the commands answer an error.
struct PubSubHooks {
  // PUBLISH: delivers `message` and returns the number of receivers.
  std::function<int64_t(std::string_view channel, std::string_view message)> publish;
  // SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE (args[0] names which):
  // appends one reply per channel or pattern and updates
  // session.subscriptions.
  std::function<void(ClientSession& session, std::span<const std::string_view> args,
                     std::string* out)>
      subscribe;
  // PUBSUB CHANNELS|NUMSUB|NUMPAT: appends the reply (args[1] is the
  // subcommand, checked by the Dispatcher).
  std::function<void(std::span<const std::string_view> args, std::string* out)> introspect;
};

struct DispatcherOptions {
  uint64_t max_bulk_len = 512ull << 20;  // proto-max-bulk-len (APPEND/SET result cap)
  std::string security_mode = "none";    // reported by INFO
  int tcp_port = 0;                      // reported by INFO
  // Extra "key:value\r\n" lines for INFO's # Clients / # Stats sections.
  std::function<std::string()> info_clients;
  std::function<std::string()> info_stats;
  PubSubHooks pubsub;
  // CLIENT LIST|INFO|KILL (the server knows the connections): appends the
  // reply. Null: those subcommands answer an error.
  std::function<void(ClientSession& session, std::span<const std::string_view> args,
                     std::string* out)>
      client_admin;
  // CONFIG GET: the server's parameters as (name, value), all read-only.
  std::function<std::vector<std::pair<std::string, std::string>>()> config_params;
};

// Thread-safety: Execute may be called from several threads only if the
// caller serialises commands that must be atomic with respect to each other
// (read-modify-write commands such as INCR read then Apply). The RESP server
// calls it from its single event-loop thread.
class Dispatcher {
 public:
  // `store` is not owned and must outlive the Dispatcher.
  Dispatcher(Store* store, DispatcherOptions options);
  ~Dispatcher();

  // Runs the command `args` (args[0] is the name, any case) for `session`,
  // appending exactly one RESP reply to `*out`. Returns the sequence number
  // that must be durable before the reply is sent (0 = none). Never fails:
  // errors become RESP error replies. Inside MULTI commands are queued
  // (+QUEUED) and EXEC runs them as one atomic, durable commit group
  // (kv/transaction.cc).
  uint64_t Execute(ClientSession& session, std::span<const std::string_view> args,
                   std::string* out);

  // Number of commands the dispatcher knows (COMMAND COUNT).
  static size_t CommandCount();

 private:
  struct Ctx;
  using Handler = uint64_t (Dispatcher::*)(Ctx&);
  struct CommandSpec {
    const char* name;
    int arity;  // Redis convention: >0 exact, <0 at least -arity
    Handler handler;
    bool write;
  };
  static const CommandSpec* Find(std::string_view name);
  // Runs one command outside transaction handling (the command tables),
  // its reply in the session's protocol.
  uint64_t Dispatch(ClientSession& session, std::span<const std::string_view> args,
                    std::string* out);
  // As Dispatch, the reply always in RESP2 (every handler encodes RESP2).
  uint64_t DispatchResp2(ClientSession& session, std::span<const std::string_view> args,
                         std::string* out);
  // Queue-time check inside MULTI: false (error appended) for an unknown
  // command or a wrong number of arguments.
  static bool CheckCommand(std::span<const std::string_view> args, std::string* out);
  static void AppendUnknownCommand(std::span<const std::string_view> args, std::string* out);
  // MULTI/EXEC/DISCARD/WATCH/UNWATCH (kv/transaction.cc).
  uint64_t TransactionCommand(ClientSession& session, std::span<const std::string_view> args,
                              std::string* out);
  uint64_t Exec(ClientSession& session, std::string* out);
  void Watch(ClientSession& session, std::span<const std::string_view> args, std::string* out);
  static const CommandSpec kCommands[];

  uint64_t StoreError(Ctx& c, const Status& s);
  uint64_t ReadSeq();
  uint64_t Ping(Ctx&);
  uint64_t Echo(Ctx&);
  uint64_t Get(Ctx&);
  uint64_t Set(Ctx&);
  uint64_t Del(Ctx&);
  uint64_t Exists(Ctx&);
  uint64_t MGet(Ctx&);
  uint64_t MSet(Ctx&);
  uint64_t MSetNx(Ctx&);
  uint64_t SetNx(Ctx&);
  uint64_t SetEx(Ctx&);
  uint64_t PSetEx(Ctx&);
  uint64_t Incr(Ctx&);
  uint64_t IncrBy(Ctx&);
  uint64_t Decr(Ctx&);
  uint64_t DecrBy(Ctx&);
  uint64_t IncrByImpl(Ctx&, int64_t delta);
  uint64_t Append(Ctx&);
  uint64_t StrLen(Ctx&);
  uint64_t GetSet(Ctx&);
  uint64_t GetDel(Ctx&);
  uint64_t Keys(Ctx&);
  uint64_t Scan(Ctx&);
  uint64_t DbSize(Ctx&);
  uint64_t FlushDb(Ctx&);
  uint64_t Type(Ctx&);
  uint64_t Ttl(Ctx&);
  uint64_t PTtl(Ctx&);
  uint64_t TtlImpl(Ctx&, bool millis, bool absolute);
  uint64_t ExpireTime(Ctx&);
  uint64_t PExpireTime(Ctx&);
  uint64_t Expire(Ctx&);
  uint64_t PExpire(Ctx&);
  uint64_t ExpireImpl(Ctx&, bool millis, bool absolute);
  uint64_t ExpireAt(Ctx&);
  uint64_t PExpireAt(Ctx&);
  uint64_t Persist(Ctx&);
  uint64_t Info(Ctx&);
  uint64_t Command(Ctx&);
  uint64_t Client(Ctx&);
  uint64_t Select(Ctx&);
  uint64_t Quit(Ctx&);
  uint64_t Hello(Ctx&);
  uint64_t Auth(Ctx&);
  uint64_t Time(Ctx&);
  uint64_t Publish(Ctx&);
  uint64_t Reset(Ctx&);
  uint64_t Shutdown(Ctx&);
  uint64_t Wait(Ctx&);
  uint64_t Config(Ctx&);
  uint64_t Subscribe(Ctx&);
  uint64_t PubSub(Ctx&);
  // In subscribed mode: true (error appended) if `args` may not run.
  static bool RejectInSubscribedMode(const ClientSession& session,
                                     std::span<const std::string_view> args, std::string* out);

  Store* const store_;
  DispatcherOptions options_;
  std::unique_ptr<ValueCache> cache_;  // decoded large collections
  uint64_t commands_processed_ = 0;
  bool in_exec_ = false;  // blocking commands inside EXEC reply at once
  std::string value_;     // scratch buffer for reads
};

}  // namespace cosmos::kv
