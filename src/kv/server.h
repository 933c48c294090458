// RespServer: the cosmos-kv TCP front end. One epoll event-loop thread
// parses pipelined RESP requests from many non-blocking connections, runs
// them through the Dispatcher, and releases each connection's replies only
// once the log sequence they depend on is durable (group commit).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cosmos/result.h"
#include "kv/commands.h"
#include "kv/resp.h"
#include "kv/store.h"

namespace cosmos::kv {

// Wakes an event loop from other threads or signal handlers (an eventfd).
class Waker {
 public:
  // Errors: IoError if the eventfd cannot be created.
  static Result<std::unique_ptr<Waker>> Create();
  ~Waker();
  // Async-signal-safe and thread-safe.
  void Wake() const;
  // Consumes pending wake-ups (event-loop thread).
  void Drain() const;
  int fd() const { return fd_; }

 private:
  explicit Waker(int fd) : fd_(fd) {}
  int fd_;
};

// Binds a TCP socket on bind:port (IPv4; port 0 picks a free one) without
// listening yet (connections are refused until RespServer::Listen) and
// returns its fd (non-blocking, close-on-exec; the caller owns it). Errors:
// InvalidArgument (bad bind address), IoError (socket, bind: e.g. the port
// is taken). cosmos-kv calls it before it opens its storage, so that a
// start that cannot listen creates no files.
Result<int> BindListener(const std::string& bind, int port);

struct ServerOptions {
  std::string bind = "127.0.0.1";
  int port = 6379;  // 0 picks a free port (see RespServer::port())
  // A socket from BindListener to serve on instead of binding bind:port; the
  // server owns it from Listen on (also when Listen fails). -1: bind here.
  int listen_fd = -1;
  RespLimits limits;
  size_t max_clients = 10000;
  std::string security_mode = "none";
  // Stop reading from a client whose unsent replies exceed this many bytes
  // (a slow reader is paused, not closed).
  size_t output_backpressure_bytes = 64u << 20;
  // Redis client-query-buffer-limit: a client whose buffered, not yet
  // complete request bytes exceed this is closed (logged, counted in INFO
  // clients). Bounds what one endless bulk or array can make the server hold
  // (to the limit plus one read of at most 4 MB). 0: no limit.
  size_t query_buffer_limit_bytes = 1ull << 30;
  // Hard output-buffer limit: a client whose unsent replies exceed this is
  // closed (logged, counted in INFO clients). With the defaults a client that
  // never reads is paused at output_backpressure_bytes plus one command's
  // reply, so the limit catches a single huge reply; set it at or below
  // output_backpressure_bytes to close pipelining clients that never read
  // instead of holding their replies. 0: no limit.
  size_t output_buffer_limit_bytes = 1ull << 30;
  // Kick a group commit as soon as this many connections' requests wait for
  // durability within one event-loop pass (0: only at the end of the pass).
  size_t early_commit_clients = 0;
};

// Thread-safety: Run() on one thread; Stop() from any thread or a signal handler.
class RespServer {
 public:
  // Binds and listens. `store` and `durable_waker` are not owned; the Store
  // must call durable_waker->Wake() from its on_durable callback. Errors:
  // IoError (socket, bind, listen), InvalidArgument (bad bind address).
  static Result<std::unique_ptr<RespServer>> Listen(Store* store, Waker* durable_waker,
                                                    ServerOptions options);
  ~RespServer();

  // The bound TCP port.
  int port() const { return port_; }
  // Clients parked by a blocking command (event-loop thread; INFO clients).
  size_t blocked_clients() const { return block_count_; }
  // Serves until Stop(); then closes every connection. Errors: IoError from epoll.
  [[nodiscard]] Status Run();
  // Requests Run() to return. Async-signal-safe.
  void Stop();

 private:
  struct Conn;
  RespServer(Store* store, Waker* durable_waker, ServerOptions options);
  void Accept();
  void OnReadable(Conn* c);
  void ProcessInput(Conn* c);
  void Release(Conn* c, uint64_t durable);
  void FailWaiting(const Status& failure);  // store failed: error + close waiters
  bool WriteOut(Conn* c);                   // false if the connection was closed
  void UpdateEvents(Conn* c);
  bool OverOutputLimit(const Conn* c) const;
  void CloseForLimit(Conn* c, const char* what, size_t bytes, size_t limit);
  void Close(Conn* c);
  std::string ClientsInfo() const;
  // Blocking commands (BLPOP, ...; kv/blocking.h). A parked client reads no
  // further commands until it is served or times out.
  void BlockClient(Conn* c);
  void UnblockClient(Conn* c);  // forgets its keys and deadline
  void ServeReadyKeys();        // runs parked commands whose key got a value
  void TimeOutBlocked();        // replies nil to clients past their deadline
  void ResumeUnblocked();       // sends their replies, reads their next commands
  int EpollTimeoutMs();         // until the next deadline or expiry, -1 if none (sleep)
  // Active expiry: deletes keys whose expiry passed through the log (Delete
  // records, committed with the next group), at most kActiveExpireBatch per
  // event-loop pass so clients are served in between.
  void ActiveExpire();
  std::string StatsInfo() const;
  // Pub/sub (server_pubsub.cc), reached through the Dispatcher's hooks.
  int64_t Publish(std::string_view channel, std::string_view message);
  void SubscribeCommand(ClientSession& session, std::span<const std::string_view> args,
                        std::string* out);
  void PubSubIntrospect(std::span<const std::string_view> args, std::string* out);
  void Unsubscribe(Conn* c, std::string_view name, bool pattern, std::string* out);
  void DeliverMessage(Conn* c, const std::string& message);
  // CLIENT LIST|INFO|KILL (server_admin.cc).
  void ClientAdmin(ClientSession& session, std::span<const std::string_view> args,
                   std::string* out);
  std::string DescribeClient(const Conn* c) const;
  void CloseKilled();  // closes the clients CLIENT KILL marked

  Store* const store_;
  Waker* const durable_waker_;
  ServerOptions options_;
  std::unique_ptr<Waker> stop_waker_;
  std::unique_ptr<Dispatcher> dispatcher_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  uint64_t next_client_id_ = 1;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> waiting_;  // connections with replies waiting for durability
  using Clock = std::chrono::steady_clock;
  std::unordered_map<std::string, std::deque<Conn*>> blocked_keys_;  // FIFO per key
  std::multimap<Clock::time_point, Conn*> block_deadlines_;
  std::vector<std::string> ready_keys_;  // blocked keys that received a value
  std::vector<Conn*> unblocked_;         // served or timed out, not yet resumed
  size_t block_count_ = 0;
  std::unordered_map<uint64_t, Conn*> conns_by_id_;
  std::unordered_map<std::string, std::vector<Conn*>> channels_;  // subscribers, in order
  std::map<std::string, std::vector<Conn*>> patterns_;
  std::vector<uint64_t> killed_;  // client ids marked by CLIENT KILL
  static constexpr size_t kActiveExpireBatch = 200;
  uint64_t expired_keys_ = 0;          // deleted by active expiry
  int64_t expire_retry_after_ms_ = 0;  // after a failed delete (log full): back off
  bool wrote_since_flush_ = false;
  size_t writes_since_kick_ = 0;
  std::string read_buffer_;
  uint64_t rejected_clients_ = 0;
  uint64_t protocol_errors_ = 0;
  uint64_t query_limit_closes_ = 0;
  uint64_t output_limit_closes_ = 0;
};

}  // namespace cosmos::kv
