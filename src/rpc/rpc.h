// The COSMOS RPC endpoint: Nexus (process-wide handler registry and connect
// hook) and Rpc (one endpoint per thread, run-to-completion event loop,
// sessions, loss recovery). Threading rules and tuning knobs: docs/rpc.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/histogram.h"
#include "cosmos/result.h"
#include "rpc/congestion.h"
#include "rpc/connect_cookie.h"
#include "rpc/protector.h"
#include "rpc/transport.h"
#include "rpc/wire.h"

namespace cosmos::rpc {

class Rpc;

// A session number local to one endpoint (generation << 20 | index).
using SessionId = uint32_t;

// Identifies one received request until it is answered. Copyable; stays
// meaningful after the handler returns (asynchronous responses).
struct RequestHandle {
  SessionId session = 0;
  uint32_t slot = 0;
  uint64_t req_num = 0;
};

// A complete request as a handler sees it. `payload` is valid until the
// response is enqueued or the session ends, whichever is first.
struct IncomingRequest {
  RequestHandle handle;
  uint16_t type = 0;
  std::span<const std::byte> payload;
  NetAddress peer;
};

// Runs on the server endpoint's thread, once per request (at most once even
// under loss and duplication). May respond inline or later (same thread) via
// Rpc::EnqueueResponse; must not block.
using RequestHandler = std::function<void(Rpc& rpc, const IncomingRequest& request)>;

// Completion of a client request, on the client endpoint's thread. On success
// `status` is ok and `response` holds the reply (valid during the call only).
// A handler-returned error arrives as that code with the handler's message;
// a dead or ended session as Unavailable; a destroyed session as Cancelled.
using Continuation = std::function<void(const Status& status, std::span<const std::byte> response)>;

// What the server's connect hook sees.
struct ConnectRequestInfo {
  NetAddress peer;
  SessionId session = 0;               // the server-side session being created
  std::span<const std::byte> payload;  // client's opaque connect payload
};

// The hook's answer. A non-ok `status` refuses the session; its code and
// message reach the client. On accept, `reply` goes back to the client and
// `protector` (optional) protects the server side of the session at once.
struct ConnectDecision {
  Status status;
  std::vector<std::byte> reply;
  std::unique_ptr<PacketProtector> protector;
};
using ConnectHook = std::function<ConnectDecision(const ConnectRequestInfo& info)>;

enum class SessionEvent : uint8_t {
  kConnected,      // handshake done; `reply` is the server's connect payload
  kConnectFailed,  // refused (server's code + reason) or no answer (Unavailable)
  kEnded,          // dead peer, server restart or reset (Unavailable)
};
// Client session notifications, on the endpoint's thread.
using SessionCallback = std::function<void(SessionId id, SessionEvent event, const Status& status,
                                           std::span<const std::byte> reply)>;

// Process-wide registry of request handlers and the server connect hook.
// Thread-safety: configure before the first Rpc is created from it (later
// registration is a check failure); afterwards it is read-only and shared by
// all endpoints without locks.
class Nexus {
 public:
  Nexus() = default;
  Nexus(const Nexus&) = delete;
  Nexus& operator=(const Nexus&) = delete;

  // Registers the handler for `type`. REQUIRES: no Rpc created yet; type not registered.
  void RegisterHandler(uint16_t type, RequestHandler handler);
  // Installs the server-side connect hook; without one every connect is accepted
  // with an empty reply. REQUIRES: no Rpc created yet.
  void SetConnectHook(ConnectHook hook);

  // nullptr if no handler is registered for `type`.
  const RequestHandler* FindHandler(uint16_t type) const;
  const ConnectHook& connect_hook() const { return connect_hook_; }

 private:
  friend class Rpc;
  std::atomic<bool> frozen_{false};
  std::unordered_map<uint16_t, RequestHandler> handlers_;
  ConnectHook connect_hook_;
};

enum class PollMode : uint8_t {
  kBusyPoll,  // never sleep: lowest latency, one core at 100%
  kAdaptive,  // block in poll() after `adaptive_spin_ns` without traffic
};

// Tuning knobs (docs/rpc.md explains each).
struct RpcOptions {
  size_t mtu = 1472;  // largest UDP payload per datagram; sessions use min(this, path MTU - 28)
  uint32_t max_message_size = 8u << 20;  // largest request/response accepted
  uint16_t window = 8;                   // outstanding requests per session (<= 64)
  uint16_t session_credits = 32;         // packets in flight per session
  uint32_t max_sessions = 4096;          // sessions this endpoint holds
  uint64_t initial_rto_ns = 5'000'000;   // before any RTT sample
  uint64_t min_rto_ns = 1'000'000;
  uint64_t max_rto_ns = 200'000'000;             // back-off cap
  uint64_t heartbeat_interval_ns = 100'000'000;  // client pings an idle session this often
  uint32_t max_missed_heartbeats = 10;           // silence for interval x this ends the session
  // The silence limit adapts (docs/rpc.md, Failure handling): at least
  // interval x max_missed, at least 8x the largest delay recently observed
  // (the peer's round trips, this thread's scheduling lateness), at most this.
  uint64_t max_dead_peer_ns = 10'000'000'000;
  uint64_t connect_retry_ns = 20'000'000;
  uint32_t connect_attempts = 50;                    // then the connect fails with Unavailable
  uint64_t server_session_idle_ns = 30'000'000'000;  // server frees silent sessions
  // Hardened connects (docs/rpc.md, "Connect cookies and unconfirmed sessions").
  uint64_t cookie_lifetime_ns = 4'000'000'000;   // a connect cookie is accepted this long
  uint64_t cookie_rotation_ns = 30'000'000'000;  // the cookie secret is replaced this often
  uint32_t max_unconfirmed_sessions = 1024;      // server sessions not yet confirmed, in all
  uint32_t max_unconfirmed_per_ip = 64;          // ... from one source IP address
  uint64_t unconfirmed_session_idle_ns = 3'000'000'000;  // then an unconfirmed session is freed
  uint64_t timer_interval_ns = 20'000;                   // how often timers are scanned
  PollMode poll_mode = PollMode::kBusyPoll;
  uint64_t adaptive_spin_ns = 100'000;  // idle time before blocking (adaptive mode)
  uint64_t adaptive_max_block_ns = 1'000'000;
  // Per-session rate control and pacing of client packets (docs/rpc.md,
  // "Congestion control"); on by default.
  CongestionOptions congestion;
};

// Per-session counters (monotonic except `rtt_ns`, a histogram of request
// round trips: enqueue to completion, client sessions only).
struct SessionCounters {
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t retransmissions = 0;  // packets re-sent after a timeout
  uint64_t timeouts = 0;         // RTO expirations
  uint64_t duplicates = 0;       // duplicate packets dropped
  uint64_t out_of_order = 0;     // packets ahead of the go-back-N point dropped
  uint64_t stale = 0;            // packets of an older request dropped
  uint64_t auth_failures = 0;    // packets the protector rejected
  uint64_t bad_packets = 0;      // packets inconsistent with session state
  uint64_t requests_completed = 0;
  uint64_t handlers_run = 0;
  uint64_t dead_peer_limit_ns = 0;  // the current silence limit (client sessions)
  uint64_t rtt_samples = 0;         // samples fed to the rate controller
  double rate = 0;                  // the rate controller's current rate (bytes/s; client sessions)
  LatencyHistogram rtt_ns;
};

// Endpoint-wide counters (all sessions plus sessionless drops).
struct EndpointCounters {
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t retransmissions = 0;
  uint64_t timeouts = 0;
  uint64_t truncated = 0;  // shorter than header + declared lengths
  uint64_t wrong_version = 0;
  uint64_t bad_packets = 0;    // bad type, lengths, body or state
  uint64_t oversized = 0;      // message larger than the configured maximum
  uint64_t wrong_session = 0;  // unknown session, wrong peer or wrong epoch
  uint64_t out_of_window = 0;  // packet index outside the message or window
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;
  uint64_t stale = 0;
  uint64_t auth_failures = 0;
  uint64_t resets_sent = 0;
  uint64_t requests_sent = 0;
  uint64_t requests_completed = 0;
  uint64_t handlers_run = 0;
  uint64_t responses_sent = 0;
  uint64_t stale_responses = 0;  // EnqueueResponse for an ended session/request
  uint64_t sessions_connected = 0;
  uint64_t sessions_failed = 0;
  uint64_t connects_refused = 0;
  uint64_t cookies_sent = 0;            // connects answered with a cookie (none or invalid)
  uint64_t connects_limited = 0;        // refused: too many unconfirmed sessions (all or per IP)
  uint64_t unconfirmed_expired = 0;     // server sessions freed before their client confirmed
  uint64_t sessions_confirmed = 0;      // server sessions confirmed (budget charged)
  uint64_t unauthenticated_resets = 0;  // resets a protected session only took as a hint
  uint64_t posted_tasks = 0;
  uint64_t pacing_delays = 0;  // a session's next packet waited for the pacer
  LatencyHistogram rtt_ns;
};

// One RPC endpoint: client and server at once. Owned by and used from the
// thread that created it: every method except Post() aborts with a check
// failure when called from another thread. Handlers and continuations run
// inside the event loop and may call any method except the RunEventLoop*
// family (no re-entrant loops).
class Rpc {
 public:
  // Creates an endpoint on `transport`, owned by the calling thread; freezes
  // `nexus` (which must outlive the endpoint). Errors: InvalidArgument for
  // inconsistent options (mtu larger than the transport's datagram, window
  // out of range), IoError for eventfd failure.
  static Result<std::unique_ptr<Rpc>> Create(Nexus* nexus, std::unique_ptr<Transport> transport,
                                             const RpcOptions& options);
  ~Rpc();
  Rpc(const Rpc&) = delete;
  Rpc& operator=(const Rpc&) = delete;

  // Starts a client session to `server`, sending `connect_payload` (at most
  // max_connect_payload() bytes). Idempotent under loss: the handshake is
  // retried and the server answers duplicates with the same reply. `callback`
  // reports the outcome and a later end of the session. Requests may be
  // enqueued at once (they wait for the handshake). Errors: InvalidArgument
  // (payload too big), ResourceExhausted (session table full, or credits x
  // MTU would exceed the receive buffer).
  Result<SessionId> CreateSession(NetAddress server, std::span<const std::byte> connect_payload,
                                  SessionCallback callback);

  // Convenience: CreateSession, then runs the event loop until the handshake
  // ends or `timeout_ns` passes. On success `reply` (optional) gets the
  // server's connect payload. Errors: the refusal, Unavailable, Timeout.
  // REQUIRES: not called from inside the event loop.
  Result<SessionId> Connect(NetAddress server, std::span<const std::byte> connect_payload,
                            uint64_t timeout_ns, std::vector<std::byte>* reply = nullptr);

  // Ends a client session: pending requests complete with Cancelled, the
  // server is told (best effort). NotFound for an unknown id.
  Status DestroySession(SessionId session);

  // True once the handshake is done and until the session ends.
  bool IsConnected(SessionId session) const;

  // Sends a request of `type`; `continuation` runs exactly once with the
  // response or an error. The bytes are copied; with a free window slot and
  // a message of at most one packet no heap allocation happens (a
  // continuation of at most 16 bytes of captures does not allocate either).
  // Beyond the window, requests queue in order. Errors (continuation not
  // called): NotFound (unknown session), Unavailable (session ended),
  // InvalidArgument (larger than the negotiated maximum message size).
  Status EnqueueRequest(SessionId session, uint16_t type, std::span<const std::byte> request,
                        Continuation continuation);

  // The same, but the request's bytes are handed over instead of copied:
  // the request is `*request`, and on success `*request` is left holding a
  // buffer the caller may refill for its next request (the buffer of an
  // earlier, finished request of the chosen slot: any size and contents,
  // possibly empty). A sender that keeps refilling the vector it gets back
  // neither copies nor allocates once every slot has seen a request of its
  // size (for 1 MB requests the copy of EnqueueRequest costs a quarter of
  // the sending thread, docs/rpc.md). On error `*request` is unchanged.
  // REQUIRES: request != nullptr.
  Status EnqueueOwnedRequest(SessionId session, uint16_t type, std::vector<std::byte>* request,
                             Continuation continuation);

  // Answers the request behind `handle` with `response` (copied) and `code`
  // (a non-ok code is delivered to the client as that Status, with the
  // response bytes as its message). Callable inside the handler or later on
  // this thread. Errors: FailedPrecondition if the session ended or the
  // request was already answered; InvalidArgument if larger than the
  // client's maximum message size.
  Status EnqueueResponse(const RequestHandle& handle, std::span<const std::byte> response,
                         StatusCode code = StatusCode::kOk);

  // Installs `protector` on one side of `session` (client or server); from
  // then on the session's packets are sealed and incoming ones must open.
  // Both sides must install matching protectors before the next data
  // packet. NotFound for an unknown session.
  Status SetSessionProtector(SessionId session, std::unique_ptr<PacketProtector> protector);

  // One event-loop iteration: receive a burst, run handlers/continuations,
  // timers and posted tasks, send queued packets; in adaptive mode, may
  // block up to adaptive_max_block_ns when idle.
  void RunEventLoopOnce();
  // Runs iterations for `duration_ns`.
  void RunEventLoopFor(uint64_t duration_ns);
  // Runs until `done()` is true (checked each iteration) or `timeout_ns`
  // passes; returns done().
  bool RunUntil(const std::function<bool()>& done, uint64_t timeout_ns);
  // Runs until `stop` becomes true (set from any thread; wakes a blocked loop
  // only at the next packet/post/timeout, so pair it with Post for promptness).
  void RunUntilStopped(const std::atomic<bool>& stop);

  // Thread-safe: queues `task` to run inside this endpoint's event loop (on
  // its thread), in FIFO order, waking a blocked loop. The only way for other
  // threads to act on the endpoint. The endpoint must exist for the whole
  // call; the task runs only after Post has returned, so the safe way to stop
  // another thread's loop and destroy its endpoint is a posted task that sets
  // the stop flag (setting the flag first and then posting races with the
  // destruction).
  void Post(std::function<void()> task);

  const EndpointCounters& counters() const;
  // Sessions this endpoint holds now (client and server, connecting or
  // connected; a session leaves when it ends or fails).
  size_t session_count() const;
  // A copy of one session's counters. NotFound for an unknown session.
  Result<SessionCounters> session_counters(SessionId session) const;
  // The datagram size a session uses: the smaller of both endpoints'
  // `mtu` options and the path MTU each side saw at connect (final once
  // connected). NotFound for an unknown session.
  Result<size_t> session_mtu(SessionId session) const;
  // Largest connect payload (one packet's worth).
  size_t max_connect_payload() const;
  NetAddress local_address() const;
  const Transport& transport() const;
  const RpcOptions& options() const { return options_; }
  // This endpoint's incarnation number (random, nonzero), sent in connect replies.
  uint32_t epoch() const { return epoch_; }

  struct Session;  // defined in rpc.cc

 private:
  Rpc(Nexus* nexus, std::unique_ptr<Transport> transport, const RpcOptions& options, int wake_fd);

  void CheckThread() const;
  Session* Lookup(SessionId id) const;
  Result<Session*> NewSession(bool is_client, NetAddress peer);
  void FreeSession(Session* s);
  // Bookkeeping of a server session from `ip` that leaves the unconfirmed state.
  void ForgetUnconfirmed(uint64_t host);  // NetAddress::HostKey()
  // Sets the receive-buffer bytes charged to `s` to what `credits` packets
  // of `mtu` bytes may occupy, adjusting receive_budget_in_use_.
  void ChargeReceiveBudget(Session* s, size_t credits, size_t mtu);
  void HandleDatagram(const RxDatagram& d, uint64_t now);
  void HandleConnectRequest(const RxDatagram& d, const ParsedPacket& p, uint64_t now);
  void HandleConnectReply(const RxDatagram& d, const ParsedPacket& p, uint64_t now);
  void HandleReset(const RxDatagram& d, const ParsedPacket& p, uint64_t now);
  void HandleConnectCookie(const RxDatagram& d, const ParsedPacket& p);
  // A server session's first valid (opened, if protected) packet after the
  // connect: charges its receive budget. False if the budget is full (the
  // session is then ended with a reset and freed).
  bool ConfirmSession(Session* s);
  // Ends server session `s` at the client with `code` (sealed when
  // protected) and frees it.
  void ResetSession(Session* s, StatusCode code);
  // An unauthenticated reset for protected client session `s`: probe the
  // server instead of ending the session (see docs/rpc.md).
  void SuspectReset(Session* s, uint64_t now);
  // Timer step of a session under SuspectReset: pings, ends it when the
  // server stays silent. True if the session ended.
  bool ProbeAfterReset(Session* s, uint64_t now);
  void HandleServerPacket(Session* s, const ParsedPacket& p);
  void HandleClientPacket(Session* s, const ParsedPacket& p, uint64_t now);
  void HandleRequestPacket(Session* s, const ParsedPacket& p);
  void HandleRequestForResponse(Session* s, const ParsedPacket& p);
  void RunHandler(Session* s, uint32_t slot_index);
  void QueueCreditReturn(Session* s, uint32_t slot_index, bool duplicate);
  void SendPendingCreditReturns();
  // Both EnqueueRequest forms: `owned` (optional) holds the bytes of
  // `request` and is handed over (see EnqueueOwnedRequest).
  Status Enqueue(SessionId session, uint16_t type, std::span<const std::byte> request,
                 std::vector<std::byte>* owned, Continuation&& continuation);
  // Starts `request` on a free slot. `take` (optional): a buffer holding the
  // same bytes that the slot may adopt instead of copying them; with
  // `give_back` it always does, and `*take` gets the slot's old buffer.
  void StartRequest(Session* s, uint32_t slot_index, uint16_t type,
                    std::span<const std::byte> request, Continuation&& continuation,
                    std::vector<std::byte>* take = nullptr, bool give_back = false);
  void PumpSession(Session* s);
  void SendSlotPackets(Session* s, uint32_t slot_index);
  void QueueSlotPacket(Session* s, uint32_t slot_index, uint32_t packet);
  void SendResponsePacket(Session* s, uint32_t slot_index, uint32_t pkt_num);
  void SendControl(Session* s, PacketType type, uint64_t req_num, uint32_t pkt_num);
  void SendConnectRequest(Session* s);
  void SendReset(NetAddress to, const PacketHeader& h);
  void SendRaw(NetAddress to, const PacketHeader& h, std::span<const std::byte> body,
               std::span<const std::byte> payload);
  void QueuePacket(Session* s, PacketHeader& h, std::span<const std::byte> payload);
  void FlushTx();
  // Room for one packet (up to the MTU) at the end of the tx buffer, after
  // flushing if the batch is full.
  std::byte* TxSpace();
  // `rx_backlog`: the last receive burst was full, so more packets may be
  // waiting (see the deferral rule in RunTimers).
  void RunTimers(uint64_t now, bool rx_backlog);
  // The silence after which client session `s` is declared dead.
  uint64_t DeadPeerLimit(const Session* s, uint64_t now) const;
  // Pumps the sessions whose pacing delay has passed.
  void RunPacing(uint64_t now);
  // Defers `s` until `when` (the pacer's verdict); at most one entry per session.
  void SchedulePacing(Session* s, uint64_t when);
  void FailSession(Session* s, const Status& status, SessionEvent event);
  void RunPosted();
  void MaybeBlock(bool idle, uint64_t now);

  Nexus* nexus_;
  std::unique_ptr<Transport> transport_;
  RpcOptions options_;
  int owner_tid_;
  int wake_fd_;
  uint32_t epoch_;
  size_t max_chunk_;  // payload bytes per packet at options_.mtu

  bool in_loop_ = false;

  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<uint32_t> generations_;
  std::vector<uint32_t> free_indexes_;
  std::vector<uint32_t> live_indexes_;                        // compact list for timer scans
  std::unordered_map<uint64_t, SessionId> server_by_client_;  // connect dedup
  std::unique_ptr<CookieJar> cookies_;
  uint32_t unconfirmed_sessions_ = 0;
  // Source host (NetAddress::HostKey) -> unconfirmed sessions.
  std::unordered_map<uint64_t, uint32_t> unconfirmed_by_ip_;
  // Socket receive-buffer bytes the sessions may fill: the sum over sessions
  // of credits x session MTU x the kernel's overhead factor (see Sessions in
  // docs/rpc.md). Counted at the negotiated MTU, so a session on a narrower
  // path or with a peer of smaller MTU costs less.
  size_t receive_budget_in_use_ = 0;

  std::vector<std::byte> tx_buffers_;
  std::vector<TxDatagram> tx_queue_;
  size_t tx_used_ = 0;  // bytes of tx_buffers_ the queued datagrams occupy
  std::vector<RxDatagram> rx_batch_;
  struct PendingCreditReturn {  // one per (session, slot) with credit_return_pending
    SessionId session;
    uint32_t slot;
  };
  std::vector<PendingCreditReturn> pending_credit_returns_;
  bool credit_returns_due_ = false;  // send pending_credit_returns_ after this burst
  uint64_t next_timer_ns_ = 0;
  struct PacingEntry {
    uint64_t when;
    SessionId session;
    bool operator>(const PacingEntry& o) const { return when > o.when; }
  };
  // Sessions waiting for their pacer, earliest first (a binary heap: the
  // few paced sessions of an endpoint do not need a timing wheel).
  std::vector<PacingEntry> pacing_;
  uint64_t timeouts_deferred_since_ = 0;  // 0: retransmission timeouts not deferred
  uint64_t last_activity_ns_ = 0;
  // When the next iteration should start if this thread is not descheduled
  // (end of the last one, plus the time it chose to block), and the largest
  // lateness seen recently: this endpoint's own scheduling delay.
  uint64_t resume_by_ns_ = 0;
  struct WindowedMax {
    uint64_t current = 0, previous = 0, window_start = 0;
    void Add(uint64_t value, uint64_t now);
    uint64_t Get(uint64_t now) const;
  };
  WindowedMax scheduling_delay_;

  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> running_posted_;
  std::atomic<bool> has_posted_{false};

  EndpointCounters counters_;
};

}  // namespace cosmos::rpc
