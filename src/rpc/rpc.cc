// Rpc endpoint implementation: sessions, the client-driven packet protocol
// with credits and go-back-N, server response caching, timers and polling.
#include "rpc/rpc.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <string>
#include <utility>

#include "common/check.h"
#include "common/clock.h"
#include "common/log.h"

namespace cosmos::rpc {
namespace {

constexpr size_t kRxBatch = 32;
// Datagrams queued before a send syscall: enough for a full 64 KB GSO run
// at MTU 1472 (44 packets) plus the control packets of other sessions.
constexpr size_t kTxBatch = 128;
constexpr uint32_t kIndexBits = 20;
constexpr uint32_t kIndexMask = (1u << kIndexBits) - 1;
constexpr uint64_t kNoRequest = ~0ull;
constexpr uint32_t kNoSample = ~0u;
constexpr uint16_t kMaxWindow = 64;
// Unanswered probes after an unauthenticated reset before a protected
// session ends (see ProbeAfterReset).
constexpr uint32_t kResetProbes = 3;
// The dead-peer limit is at least this many times the largest delay seen.
constexpr uint64_t kDeadPeerDelayFactor = 8;
// Delays are remembered for one to two windows of this length.
constexpr uint64_t kDelayWindowNs = 10'000'000'000;
// The kernel charges a queued datagram its buffer truesize, roughly twice the
// payload for MTU-sized packets; the credit budget check accounts for that.
constexpr size_t kReceiveOverheadFactor = 2;

// Receive-buffer bytes `credits` queued packets of `mtu` bytes may occupy.
size_t ReceiveBudgetFor(size_t credits, size_t mtu) {
  return credits * mtu * kReceiveOverheadFactor;
}

int CurrentTid() {
  static thread_local int tid = static_cast<int>(::syscall(SYS_gettid));
  return tid;
}

uint64_t ConnectKey(NetAddress peer, uint32_t client_epoch, uint32_t client_session) {
  uint64_t k = (peer.HostKey() << 16) ^ (peer.HostKey() >> 48) ^ peer.port;
  k ^= (static_cast<uint64_t>(client_epoch) << 32 | client_session) * 0x9E3779B97F4A7C15ull;
  return k;
}

// Bytes in packet `pkt` of a message of `msg_size` split into `chunk`-byte pieces.
size_t ChunkLength(uint32_t msg_size, size_t chunk, uint32_t pkt) {
  const size_t start = static_cast<size_t>(pkt) * chunk;
  return std::min(chunk, static_cast<size_t>(msg_size) - std::min<size_t>(start, msg_size));
}

std::span<const std::byte> AsBytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Allocator that leaves new elements uninitialized on resize: reassembly
// buffers are overwritten packet by packet, so zero-filling them first (what
// std::vector<std::byte>::resize does) was an extra pass over every message
// that outgrew the slot's previous one.
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using ReassemblyBuffer = std::vector<std::byte, DefaultInitAllocator<std::byte>>;

}  // namespace

// ---------------------------------------------------------------- Nexus

void Nexus::RegisterHandler(uint16_t type, RequestHandler handler) {
  COSMOS_CHECK_MSG(!frozen_.load(), "Nexus::RegisterHandler after an Rpc was created");
  COSMOS_CHECK_MSG(handler != nullptr, "null request handler");
  const bool inserted = handlers_.emplace(type, std::move(handler)).second;
  COSMOS_CHECK_MSG(inserted, "request type registered twice");
}

void Nexus::SetConnectHook(ConnectHook hook) {
  COSMOS_CHECK_MSG(!frozen_.load(), "Nexus::SetConnectHook after an Rpc was created");
  connect_hook_ = std::move(hook);
}

const RequestHandler* Nexus::FindHandler(uint16_t type) const {
  auto it = handlers_.find(type);
  return it == handlers_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------- sessions

enum class SessionState : uint8_t { kConnecting, kConnected, kEnded };

struct ClientSlot {
  bool busy = false;
  uint64_t req_num = 0;  // next request number of this slot while idle
  uint16_t type = 0;
  std::vector<std::byte> request;  // capacity kept across requests
  uint32_t request_size = 0;
  uint32_t request_pkts = 0;
  Continuation continuation;
  ReassemblyBuffer response;
  uint32_t response_size = 0;
  uint32_t response_pkts = 0;  // 0 until the first response packet arrives
  uint8_t response_status = 0;
  uint32_t num_tx = 0;  // client packets sent (go-back-N point is num_rx)
  uint32_t num_rx = 0;  // server packets received in order
  uint32_t max_tx = 0;  // client packets ever sent: a send below it is a retransmission
  // A retransmission timeout resent only packet probe_pkt (= num_rx then)
  // and left the rest in flight; the next acknowledgement decides whether
  // the timeout was spurious (see the probe handling in HandleClientPacket).
  bool probing = false;
  uint32_t probe_pkt = 0;
  uint64_t start_ns = 0;
  uint64_t last_progress_ns = 0;
  uint64_t rto_ns = 0;
  bool retransmitted = false;
  // The packet (client packet index) timed for the rate controller, and
  // when it was sent; kNoSample when none is outstanding.
  uint32_t sample_pkt = kNoSample;
  uint64_t sample_sent_ns = 0;
};

struct ServerSlot {
  uint64_t req_num = kNoRequest;
  enum class State : uint8_t {
    kIdle,
    kReceiving,
    kHandlerRunning,
    kResponded
  } state = State::kIdle;
  uint16_t type = 0;
  ReassemblyBuffer request;
  uint32_t request_size = 0;
  uint32_t request_pkts = 0;
  uint32_t received_pkts = 0;
  // A credit return for this slot is queued in pending_credit_returns_ (set
  // exactly while an entry for the slot is there). It is computed at send
  // time for whatever request the slot then holds.
  bool credit_return_pending = false;
  // The queued credit return answers a duplicate (the client is going back
  // N), so it is sent even if the slot has responded meanwhile.
  bool credit_return_for_duplicate = false;
  std::vector<std::byte> response;  // kept for resends until the slot's next request
  uint32_t response_size = 0;
  uint32_t response_pkts = 0;
  uint8_t response_status = 0;
};

struct Backlogged {
  uint16_t type;
  std::vector<std::byte> request;
  Continuation continuation;
};

struct Rpc::Session {
  SessionId id = 0;
  bool is_client = true;
  SessionState state = SessionState::kConnecting;
  NetAddress peer;
  uint32_t remote_session = 0;
  uint32_t server_epoch = 0;  // client: the server's; server: our own
  uint32_t client_epoch = 0;  // server side: the client's incarnation
  size_t mtu = 0;
  size_t chunk = 0;
  uint16_t window = 0;
  uint16_t max_credits = 0;
  uint16_t credits = 0;
  uint32_t peer_max_msg = 0;
  std::unique_ptr<PacketProtector> protector;
  uint64_t tx_seq = 0;
  uint64_t last_rx_ns = 0;
  uint64_t last_ping_ns = 0;
  uint32_t unanswered_pings = 0;  // pings sent since the last packet from the peer
  size_t receive_budget = 0;      // bytes of receive_budget_in_use_ charged to this session
  SessionCounters counters;
  // Client side.
  SessionCallback callback;
  std::vector<std::byte> connect_payload;
  uint32_t connect_attempts = 0;
  uint64_t last_connect_ns = 0;
  Cookie cookie{};  // the server's connect cookie (all zero until one arrives)
  // The connect reply body as received: a protected session's first sealed
  // Pong must echo it (the reply itself travels before there are keys).
  std::array<std::byte, kConnectReplyBodySize> reply_body{};
  bool reply_verified = false;
  // The server protects the session and waits for a sealed packet: sent as
  // a Ping once the client installs its protector.
  bool confirm_pending = false;
  Rpc::WindowedMax peer_delay;       // connect, ping and request round trips
  uint64_t reset_suspect_since = 0;  // an unauthenticated reset arrived (protected session)
  uint32_t reset_probes = 0;         // pings sent since then
  std::vector<ClientSlot> client_slots;
  std::deque<Backlogged> backlog;
  uint32_t active_slots = 0;
  uint64_t srtt_ns = 0;
  uint64_t rttvar_ns = 0;
  uint64_t rto_ns = 0;
  // Congestion control runs for this session (options and the transport's
  // verdict for the path, fixed at CreateSession).
  bool congestion_control = false;
  RateController cc{CongestionOptions{}};
  Pacer pacer;
  bool pacing_scheduled = false;  // an entry in pacing_
  // Server side.
  std::vector<ServerSlot> server_slots;
  std::vector<std::byte> connect_reply;  // resent verbatim to duplicate connects
  // In-order request packets received since the session's last credit
  // returns went out (see SendPendingCreditReturns).
  uint32_t unreturned_pkts = 0;
  uint64_t connect_key = 0;
  // The client has sent a valid (opened, when protected) packet after the
  // connect; only then is the receive budget charged (see ConfirmSession).
  bool confirmed = false;
};

// ---------------------------------------------------------------- lifecycle

Result<std::unique_ptr<Rpc>> Rpc::Create(Nexus* nexus, std::unique_ptr<Transport> transport,
                                         const RpcOptions& options) {
  COSMOS_CHECK(nexus != nullptr && transport != nullptr);
  if (options.mtu < kMinMtu || options.mtu > kMaxMtu) {
    return Status::InvalidArgument("rpc: mtu " + std::to_string(options.mtu) + " outside [" +
                                   std::to_string(kMinMtu) + ", " + std::to_string(kMaxMtu) + "]");
  }
  if (options.mtu > transport->max_datagram_size()) {
    return Status::InvalidArgument("rpc: mtu " + std::to_string(options.mtu) +
                                   " exceeds the transport's datagram size " +
                                   std::to_string(transport->max_datagram_size()));
  }
  if (options.window == 0 || options.window > kMaxWindow) {
    return Status::InvalidArgument("rpc: window must be in [1, 64]");
  }
  if (options.session_credits == 0) return Status::InvalidArgument("rpc: session_credits is 0");
  if (options.max_sessions == 0 || options.max_sessions > kIndexMask) {
    return Status::InvalidArgument("rpc: max_sessions out of range");
  }
  if (options.max_message_size == 0) return Status::InvalidArgument("rpc: max_message_size is 0");
  if (options.cookie_lifetime_ns == 0 || options.cookie_rotation_ns == 0) {
    return Status::InvalidArgument("rpc: cookie lifetime and rotation must be positive");
  }
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) return Status::FromErrno(errno, "rpc: eventfd");
  nexus->frozen_.store(true);
  return std::unique_ptr<Rpc>(new Rpc(nexus, std::move(transport), options, wake));
}

Rpc::Rpc(Nexus* nexus, std::unique_ptr<Transport> transport, const RpcOptions& options, int wake_fd)
    : nexus_(nexus),
      transport_(std::move(transport)),
      options_(options),
      owner_tid_(CurrentTid()),
      wake_fd_(wake_fd) {
  std::random_device rd;
  do {
    epoch_ = static_cast<uint32_t>(rd()) ^ static_cast<uint32_t>(MonotonicNanos());
  } while (epoch_ == 0);
  max_chunk_ = options_.mtu - kHeaderSize - kMaxTagSize;
  // kTxBatch Ethernet-sized packets, or 8 of the largest: jumbo MTUs need no
  // 1 MB buffer (a GSO send carries at most 65000 bytes anyway).
  tx_buffers_.resize(std::max(kTxBatch * std::min<size_t>(options_.mtu, 1472), 8 * options_.mtu));
  tx_queue_.reserve(kTxBatch);
  rx_batch_.resize(kRxBatch);
  last_activity_ns_ = MonotonicNanos();
  cookies_ = std::make_unique<CookieJar>(options_.cookie_lifetime_ns, options_.cookie_rotation_ns,
                                         last_activity_ns_);
}

Rpc::~Rpc() {
  CheckThread();
  FlushTx();
  {
    // A Post() that queued the task which ended this endpoint's loop may
    // still be inside its critical section (see Post).
    std::lock_guard<std::mutex> l(post_mu_);
  }
  ::close(wake_fd_);
}

void Rpc::CheckThread() const {
  COSMOS_CHECK_MSG(CurrentTid() == owner_tid_,
                   "rpc::Rpc used from a thread that does not own it (use Rpc::Post)");
}

Rpc::Session* Rpc::Lookup(SessionId id) const {
  const uint32_t index = id & kIndexMask;
  if (index >= sessions_.size()) return nullptr;
  Session* s = sessions_[index].get();
  return (s != nullptr && s->id == id) ? s : nullptr;
}

Result<Rpc::Session*> Rpc::NewSession(bool is_client, NetAddress peer) {
  if (live_indexes_.size() >= options_.max_sessions) {
    return Status::ResourceExhausted("rpc: session table full (" +
                                     std::to_string(options_.max_sessions) + " sessions)");
  }
  uint32_t index;
  if (!free_indexes_.empty()) {
    index = free_indexes_.back();
    free_indexes_.pop_back();
  } else {
    index = static_cast<uint32_t>(sessions_.size());
    sessions_.emplace_back();
    generations_.push_back(0);
  }
  const uint32_t gen = (++generations_[index]) & ((1u << (32 - kIndexBits)) - 1);
  auto s = std::make_unique<Session>();
  // Generation 0 is skipped so no live session id is 0 (an unset SessionId).
  s->id = ((gen == 0 ? 1 : gen) << kIndexBits) | index;
  s->is_client = is_client;
  s->peer = peer;
  sessions_[index] = std::move(s);
  live_indexes_.push_back(index);
  return sessions_[index].get();
}

void Rpc::ForgetUnconfirmed(uint64_t host) {
  --unconfirmed_sessions_;
  auto it = unconfirmed_by_ip_.find(host);
  if (it != unconfirmed_by_ip_.end() && --it->second == 0) unconfirmed_by_ip_.erase(it);
}

void Rpc::ChargeReceiveBudget(Session* s, size_t credits, size_t mtu) {
  receive_budget_in_use_ -= s->receive_budget;
  s->receive_budget = ReceiveBudgetFor(credits, mtu);
  receive_budget_in_use_ += s->receive_budget;
}

void Rpc::FreeSession(Session* s) {
  const uint32_t index = s->id & kIndexMask;
  receive_budget_in_use_ -= s->receive_budget;
  if (!s->is_client) {
    auto it = server_by_client_.find(s->connect_key);
    if (it != server_by_client_.end() && it->second == s->id) server_by_client_.erase(it);
    if (!s->confirmed) ForgetUnconfirmed(s->peer.HostKey());
  }
  live_indexes_.erase(std::find(live_indexes_.begin(), live_indexes_.end(), index));
  free_indexes_.push_back(index);
  sessions_[index].reset();
}

size_t Rpc::max_connect_payload() const {
  return max_chunk_ - std::max(kConnectRequestBodySize, kConnectReplyBodySize);
}

NetAddress Rpc::local_address() const { return transport_->local_address(); }
const Transport& Rpc::transport() const { return *transport_; }

const EndpointCounters& Rpc::counters() const {
  CheckThread();
  return counters_;
}

size_t Rpc::session_count() const {
  CheckThread();
  return static_cast<size_t>(std::count_if(sessions_.begin(), sessions_.end(),
                                           [](const auto& s) { return s != nullptr; }));
}

Result<SessionCounters> Rpc::session_counters(SessionId session) const {
  CheckThread();
  const Session* s = Lookup(session);
  if (s == nullptr) return Status::NotFound("rpc: no session " + std::to_string(session));
  SessionCounters c = s->counters;
  c.rate = s->is_client ? s->cc.rate() : 0;
  if (s->is_client) c.dead_peer_limit_ns = DeadPeerLimit(s, MonotonicNanos());
  return c;
}

Result<size_t> Rpc::session_mtu(SessionId session) const {
  CheckThread();
  const Session* s = Lookup(session);
  if (s == nullptr) return Status::NotFound("rpc: no session " + std::to_string(session));
  return s->mtu;
}

bool Rpc::IsConnected(SessionId session) const {
  CheckThread();
  const Session* s = Lookup(session);
  return s != nullptr && s->state == SessionState::kConnected;
}

Status Rpc::SetSessionProtector(SessionId session, std::unique_ptr<PacketProtector> protector) {
  CheckThread();
  Session* s = Lookup(session);
  if (s == nullptr) return Status::NotFound("rpc: no session " + std::to_string(session));
  COSMOS_CHECK(protector == nullptr || protector->tag_size() <= kMaxTagSize);
  s->protector = std::move(protector);
  if (s->is_client && s->protector && s->confirm_pending && s->state == SessionState::kConnected) {
    // The server holds the session unconfirmed (and its receive budget
    // uncharged) until a packet under the new keys arrives.
    s->confirm_pending = false;
    s->last_ping_ns = MonotonicNanos();
    SendControl(s, PacketType::kPing, 0, 0);
    if (!in_loop_) FlushTx();
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- client API

Result<SessionId> Rpc::CreateSession(NetAddress server, std::span<const std::byte> payload,
                                     SessionCallback callback) {
  CheckThread();
  if (payload.size() > max_connect_payload()) {
    return Status::InvalidArgument("rpc: connect payload of " + std::to_string(payload.size()) +
                                   " bytes exceeds " + std::to_string(max_connect_payload()));
  }
  // Packets are sized to the path: never larger than the route to the
  // server carries (the transport sends with DF set, so no IP fragments).
  const size_t mtu = std::min(options_.mtu, transport_->PathMtu(server));
  if (mtu < kMinMtu) {
    return Status::InvalidArgument("rpc: path MTU to " + server.ToString() + " leaves " +
                                   std::to_string(mtu) + " bytes per datagram, below the minimum " +
                                   std::to_string(kMinMtu));
  }
  if (payload.size() > mtu - kHeaderSize - kMaxTagSize - kConnectRequestBodySize) {
    return Status::InvalidArgument("rpc: connect payload of " + std::to_string(payload.size()) +
                                   " bytes does not fit one packet on the path to " +
                                   server.ToString() + " (MTU " + std::to_string(mtu) + ")");
  }
  const size_t need = receive_budget_in_use_ + ReceiveBudgetFor(options_.session_credits, mtu);
  if (need > transport_->receive_buffer_bytes()) {
    return Status::ResourceExhausted("rpc: " + std::to_string(options_.session_credits) +
                                     " packet credits x mtu " + std::to_string(mtu) +
                                     " on top of the existing sessions need a receive buffer of " +
                                     std::to_string(need) + " bytes, the socket has " +
                                     std::to_string(transport_->receive_buffer_bytes()) +
                                     " (raise net.core.rmem_max or lower session_credits)");
  }
  COSMOS_ASSIGN_OR_RETURN(Session * s, NewSession(true, server));
  s->callback = std::move(callback);
  s->connect_payload.assign(payload.begin(), payload.end());
  s->mtu = mtu;
  s->chunk = mtu - kHeaderSize - kMaxTagSize;
  s->window = options_.window;
  s->max_credits = options_.session_credits;
  s->credits = s->max_credits;
  ChargeReceiveBudget(s, s->max_credits, s->mtu);
  s->peer_max_msg = options_.max_message_size;
  s->rto_ns = options_.initial_rto_ns;
  s->cc = RateController(options_.congestion);
  s->congestion_control = options_.congestion.enabled && transport_->congestion_controlled(server);
  s->client_slots.resize(s->window);
  for (uint32_t i = 0; i < s->window; ++i) {
    s->client_slots[i].req_num = i;
    s->client_slots[i].request.reserve(max_chunk_);
    s->client_slots[i].response.reserve(max_chunk_);
  }
  SendConnectRequest(s);
  if (!in_loop_) FlushTx();
  return s->id;
}

Result<SessionId> Rpc::Connect(NetAddress server, std::span<const std::byte> payload,
                               uint64_t timeout_ns, std::vector<std::byte>* reply) {
  CheckThread();
  COSMOS_CHECK_MSG(!in_loop_, "Rpc::Connect called inside the event loop");
  bool done = false;
  Status result;
  COSMOS_ASSIGN_OR_RETURN(
      SessionId id, CreateSession(server, payload,
                                  [&](SessionId, SessionEvent ev, const Status& st,
                                      std::span<const std::byte> r) {
                                    if (done) return;
                                    done = true;
                                    result = ev == SessionEvent::kConnected ? Status::Ok() : st;
                                    if (reply != nullptr) reply->assign(r.begin(), r.end());
                                  }));
  if (!RunUntil([&] { return done; }, timeout_ns)) {
    DestroySession(id).IgnoreError();  // we created it just above; it exists
    return Status::Timeout("rpc: connect to " + server.ToString() + " timed out");
  }
  if (!result.ok()) {
    if (Lookup(id) != nullptr) DestroySession(id).IgnoreError();  // failed handshake cleanup
    return result;
  }
  // Later session events (end of session) go nowhere: callers poll IsConnected.
  Lookup(id)->callback = nullptr;
  return id;
}

Status Rpc::DestroySession(SessionId session) {
  CheckThread();
  Session* s = Lookup(session);
  if (s == nullptr || !s->is_client) {
    return Status::NotFound("rpc: no client session " + std::to_string(session));
  }
  if (s->state == SessionState::kConnected) {
    SendControl(s, PacketType::kDisconnect, 0, 0);
    if (!in_loop_) FlushTx();
  }
  std::vector<Continuation> pending;
  for (ClientSlot& slot : s->client_slots) {
    if (slot.busy) pending.push_back(std::move(slot.continuation));
  }
  for (Backlogged& b : s->backlog) pending.push_back(std::move(b.continuation));
  FreeSession(s);
  const Status cancelled = Status::Cancelled("rpc: session destroyed");
  for (Continuation& c : pending) c(cancelled, {});
  return Status::Ok();
}

Status Rpc::EnqueueRequest(SessionId session, uint16_t type, std::span<const std::byte> request,
                           Continuation continuation) {
  return Enqueue(session, type, request, nullptr, std::move(continuation));
}

Status Rpc::EnqueueOwnedRequest(SessionId session, uint16_t type, std::vector<std::byte>* request,
                                Continuation continuation) {
  COSMOS_CHECK_MSG(request != nullptr, "EnqueueOwnedRequest without a request");
  return Enqueue(session, type, *request, request, std::move(continuation));
}

Status Rpc::Enqueue(SessionId session, uint16_t type, std::span<const std::byte> request,
                    std::vector<std::byte>* owned, Continuation&& continuation) {
  CheckThread();
  COSMOS_CHECK_MSG(continuation != nullptr, "EnqueueRequest without a continuation");
  Session* s = Lookup(session);
  if (s == nullptr || !s->is_client) {
    return Status::NotFound("rpc: no client session " + std::to_string(session));
  }
  if (s->state == SessionState::kEnded) {
    return Status::Unavailable("rpc: session to " + s->peer.ToString() + " has ended");
  }
  const uint32_t limit = std::min(options_.max_message_size, s->peer_max_msg);
  if (request.size() > limit) {
    return Status::InvalidArgument("rpc: request of " + std::to_string(request.size()) +
                                   " bytes exceeds the maximum message size " +
                                   std::to_string(limit));
  }
  if (s->state == SessionState::kConnected && s->backlog.empty() && s->active_slots < s->window) {
    for (uint32_t i = 0; i < s->window; ++i) {
      if (!s->client_slots[i].busy) {
        StartRequest(s, i, type, request, std::move(continuation), owned, owned != nullptr);
        if (!in_loop_) FlushTx();
        return Status::Ok();
      }
    }
  }
  if (owned != nullptr) {
    s->backlog.push_back({type, std::move(*owned), std::move(continuation)});
    owned->clear();  // (moved from: empty, but say so)
  } else {
    s->backlog.push_back(
        {type, std::vector<std::byte>(request.begin(), request.end()), std::move(continuation)});
  }
  return Status::Ok();
}

void Rpc::StartRequest(Session* s, uint32_t slot_index, uint16_t type,
                       std::span<const std::byte> request, Continuation&& continuation,
                       std::vector<std::byte>* take, bool give_back) {
  ClientSlot& slot = s->client_slots[slot_index];
  slot.busy = true;
  slot.type = type;
  if (take != nullptr && (give_back || take->capacity() >= slot.request.capacity())) {
    // A backlogged request (its bytes were copied once already; the slot's
    // smaller buffer goes away with the backlog entry) or one handed over
    // (the caller gets the slot's old buffer back): adopt the buffer.
    // (`request` still points at the same bytes, now the slot's.)
    slot.request.swap(*take);
  } else {
    slot.request.assign(request.begin(), request.end());
  }
  slot.request_size = static_cast<uint32_t>(request.size());
  slot.request_pkts = PacketsFor(request.size(), s->chunk);
  slot.continuation = std::move(continuation);
  slot.response_size = 0;
  slot.response_pkts = 0;
  slot.response_status = 0;
  slot.num_tx = 0;
  slot.num_rx = 0;
  slot.max_tx = 0;
  slot.probing = false;
  slot.start_ns = MonotonicNanos();
  slot.last_progress_ns = slot.start_ns;
  slot.rto_ns = s->rto_ns;
  slot.retransmitted = false;
  slot.sample_pkt = kNoSample;
  ++s->active_slots;
  ++counters_.requests_sent;
  SendSlotPackets(s, slot_index);
}

void Rpc::SendSlotPackets(Session* s, uint32_t slot_index) {
  ClientSlot& slot = s->client_slots[slot_index];
  const uint32_t total = slot.request_pkts + (slot.response_pkts > 0 ? slot.response_pkts - 1 : 0);
  if (s->credits > 0 && slot.num_tx < total && slot.num_tx == slot.num_rx) {
    // Nothing of this slot was in flight: it waited for credits (or for the
    // response to start). Its retransmission timer runs from now; measured
    // from the last progress it would expire at once after a long wait and
    // go back N on packets that were just sent.
    slot.last_progress_ns = MonotonicNanos();
  }
  const bool paced = s->congestion_control && !s->cc.unlimited();
  uint64_t now = 0;
  if (paced || (s->congestion_control && slot.sample_pkt == kNoSample)) {
    now = MonotonicNanos();
  }
  while (s->credits > 0 && slot.num_tx < total) {
    const uint32_t i = slot.num_tx;
    if (paced) {
      const size_t bytes =
          kHeaderSize + kMaxTagSize +
          (i < slot.request_pkts ? ChunkLength(slot.request_size, s->chunk, i) : 0);
      const uint64_t wait =
          s->pacer.Reserve(bytes, s->cc.rate(), options_.congestion.burst_packets * s->mtu, now);
      if (wait > 0) {
        SchedulePacing(s, now + wait);
        return;
      }
    }
    if (i < slot.max_tx) {
      ++s->counters.retransmissions;
      ++counters_.retransmissions;
    } else {
      slot.max_tx = i + 1;
      // Karn: only a packet sent once is timed.
      if (s->congestion_control && slot.sample_pkt == kNoSample) {
        slot.sample_pkt = i;
        slot.sample_sent_ns = now;
      }
    }
    QueueSlotPacket(s, slot_index, i);
    ++slot.num_tx;
    --s->credits;
  }
}

// Client packet `i` of a slot: request packet i, or past the request the
// request-for-response of response packet i - request_pkts + 1.
void Rpc::QueueSlotPacket(Session* s, uint32_t slot_index, uint32_t i) {
  const ClientSlot& slot = s->client_slots[slot_index];
  PacketHeader h;
  h.req_type = slot.type;
  h.dest_session = s->remote_session;
  h.epoch = s->server_epoch;
  h.req_num = slot.req_num;
  if (i < slot.request_pkts) {
    h.type = PacketType::kRequest;
    h.msg_size = slot.request_size;
    h.pkt_num = i;
    const size_t off = static_cast<size_t>(i) * s->chunk;
    const size_t len = ChunkLength(slot.request_size, s->chunk, i);
    QueuePacket(s, h, std::span<const std::byte>(slot.request.data() + off, len));
  } else {
    h.type = PacketType::kRequestForResponse;
    h.msg_size = slot.response_size;
    h.pkt_num = i - slot.request_pkts + 1;
    QueuePacket(s, h, {});
  }
}

// Lets slots blocked on credits and queued requests proceed.
void Rpc::PumpSession(Session* s) {
  if (s->state != SessionState::kConnected) return;
  for (uint32_t i = 0; i < s->window && s->credits > 0; ++i) {
    if (s->client_slots[i].busy) SendSlotPackets(s, i);
  }
  while (!s->backlog.empty() && s->active_slots < s->window) {
    uint32_t i = 0;
    while (s->client_slots[i].busy) ++i;
    Backlogged b = std::move(s->backlog.front());
    s->backlog.pop_front();
    StartRequest(s, i, b.type, b.request, std::move(b.continuation), &b.request);
  }
}

// ---------------------------------------------------------------- server API

Status Rpc::EnqueueResponse(const RequestHandle& handle, std::span<const std::byte> response,
                            StatusCode code) {
  CheckThread();
  Session* s = Lookup(handle.session);
  if (s == nullptr || s->is_client || handle.slot >= s->server_slots.size()) {
    ++counters_.stale_responses;
    return Status::FailedPrecondition("rpc: response for an ended session");
  }
  ServerSlot& slot = s->server_slots[handle.slot];
  if (slot.req_num != handle.req_num || slot.state != ServerSlot::State::kHandlerRunning) {
    ++counters_.stale_responses;
    return Status::FailedPrecondition("rpc: request already answered or superseded");
  }
  const uint32_t limit = std::min(options_.max_message_size, s->peer_max_msg);
  if (response.size() > limit) {
    return Status::InvalidArgument("rpc: response of " + std::to_string(response.size()) +
                                   " bytes exceeds the client's maximum " + std::to_string(limit));
  }
  slot.response.assign(response.begin(), response.end());
  slot.response_size = static_cast<uint32_t>(response.size());
  slot.response_pkts = PacketsFor(response.size(), s->chunk);
  slot.response_status = static_cast<uint8_t>(code);
  slot.state = ServerSlot::State::kResponded;
  ++counters_.responses_sent;
  SendResponsePacket(s, handle.slot, 0);
  if (!in_loop_) FlushTx();
  return Status::Ok();
}

void Rpc::SendResponsePacket(Session* s, uint32_t slot_index, uint32_t pkt_num) {
  ServerSlot& slot = s->server_slots[slot_index];
  PacketHeader h;
  h.type = PacketType::kResponse;
  h.status = slot.response_status;
  h.req_type = slot.type;
  h.dest_session = s->remote_session;
  h.epoch = epoch_;
  h.req_num = slot.req_num;
  h.msg_size = slot.response_size;
  h.pkt_num = pkt_num;
  const size_t off = static_cast<size_t>(pkt_num) * s->chunk;
  const size_t len = ChunkLength(slot.response_size, s->chunk, pkt_num);
  QueuePacket(s, h, std::span<const std::byte>(slot.response.data() + off, len));
}

// ---------------------------------------------------------------- packet output

// Queued packets are packed back to back in tx_buffers_, so a run of
// MTU-sized packets to one peer is one contiguous buffer: the transport hands
// it to the kernel as a single iovec per GSO send. (Per-iovec cost dominates
// the kernel's copy for MTU-sized pieces; sending payloads in place from the
// slot buffers, one header iovec and one payload iovec per packet, measured
// at about half the bandwidth of this copy on the reference VM.)
std::byte* Rpc::TxSpace() {
  if (tx_queue_.size() == kTxBatch || tx_used_ + options_.mtu > tx_buffers_.size()) FlushTx();
  return tx_buffers_.data() + tx_used_;
}

void Rpc::QueuePacket(Session* s, PacketHeader& h, std::span<const std::byte> payload) {
  std::byte* buf = TxSpace();
  h.payload_len = static_cast<uint16_t>(payload.size());
  h.seq = ++s->tx_seq;
  h.tag_len = s->protector ? static_cast<uint8_t>(s->protector->tag_size()) : 0;
  EncodeHeader(h, std::span<std::byte>(buf, kHeaderSize));
  if (!payload.empty()) std::memcpy(buf + kHeaderSize, payload.data(), payload.size());
  if (s->protector) {
    s->protector->Seal(std::span<const std::byte>(buf, kHeaderSize),
                       std::span<std::byte>(buf + kHeaderSize, payload.size()),
                       std::span<std::byte>(buf + kHeaderSize + payload.size(), h.tag_len));
  }
  const uint32_t len = static_cast<uint32_t>(kHeaderSize + payload.size() + h.tag_len);
  tx_queue_.push_back({s->peer, buf, len});
  tx_used_ += len;
  ++s->counters.packets_sent;
}

void Rpc::SendRaw(NetAddress to, const PacketHeader& hdr, std::span<const std::byte> body,
                  std::span<const std::byte> payload) {
  std::byte* buf = TxSpace();
  PacketHeader h = hdr;
  h.payload_len = static_cast<uint16_t>(body.size() + payload.size());
  h.tag_len = 0;
  EncodeHeader(h, std::span<std::byte>(buf, kHeaderSize));
  if (!body.empty()) std::memcpy(buf + kHeaderSize, body.data(), body.size());
  if (!payload.empty())
    std::memcpy(buf + kHeaderSize + body.size(), payload.data(), payload.size());
  const uint32_t len = static_cast<uint32_t>(kHeaderSize + h.payload_len);
  tx_queue_.push_back({to, buf, len});
  tx_used_ += len;
}

void Rpc::SendControl(Session* s, PacketType type, uint64_t req_num, uint32_t pkt_num) {
  PacketHeader h;
  h.type = type;
  h.dest_session = s->remote_session;
  h.epoch = s->is_client ? s->server_epoch : epoch_;
  h.req_num = req_num;
  h.pkt_num = pkt_num;
  QueuePacket(s, h, {});
}

void Rpc::SendConnectRequest(Session* s) {
  PacketHeader h;
  h.type = PacketType::kConnectRequest;
  h.dest_session = 0;
  h.epoch = 0;
  ConnectRequestBody b;
  b.client_session = s->id;
  b.client_epoch = epoch_;
  b.mtu = static_cast<uint32_t>(s->mtu);
  b.max_msg_size = options_.max_message_size;
  b.credits = options_.session_credits;
  b.window = options_.window;
  b.cookie = s->cookie;
  std::byte body[kConnectRequestBodySize];
  EncodeConnectRequest(b, body);
  SendRaw(s->peer, h, body, s->connect_payload);
  ++s->connect_attempts;
  s->last_connect_ns = MonotonicNanos();
}

void Rpc::ResetSession(Session* s, StatusCode code) {
  PacketHeader h;
  h.type = PacketType::kReset;
  h.status = static_cast<uint8_t>(code);
  h.dest_session = s->remote_session;  // names the client's session: sealed when protected
  h.epoch = epoch_;
  h.req_num = s->id;
  h.msg_size = epoch_;
  QueuePacket(s, h, {});
  ++counters_.resets_sent;
  FreeSession(s);
}

void Rpc::SendReset(NetAddress to, const PacketHeader& bad) {
  PacketHeader h;
  h.type = PacketType::kReset;
  h.dest_session = 0;
  h.epoch = bad.epoch;           // the epoch the client believes in
  h.req_num = bad.dest_session;  // the session number the client used
  h.msg_size = epoch_;           // our current epoch (diagnostics)
  SendRaw(to, h, {}, {});
  ++counters_.resets_sent;
}

void Rpc::FlushTx() {
  if (tx_queue_.empty()) return;
  const size_t n = transport_->SendBurst(tx_queue_);
  (void)n;  // refused datagrams are counted by the transport and recovered by retransmission
  for (const TxDatagram& d : tx_queue_) counters_.bytes_sent += d.size();
  counters_.packets_sent += tx_queue_.size();
  tx_queue_.clear();
  tx_used_ = 0;
  last_activity_ns_ = MonotonicNanos();
}

// ---------------------------------------------------------------- packet input

void Rpc::HandleDatagram(const RxDatagram& d, uint64_t now) {
  ++counters_.packets_received;
  counters_.bytes_received += d.len;
  ParsedPacket p;
  switch (ParsePacket(std::span<std::byte>(d.data, d.len), 65535, &p)) {
    case ParseError::kNone:
      break;
    case ParseError::kTruncated:
      ++counters_.truncated;
      return;
    case ParseError::kBadVersion:
      ++counters_.wrong_version;
      return;
    case ParseError::kBadType:
    case ParseError::kBadLength:
      ++counters_.bad_packets;
      return;
  }
  const PacketHeader& h = p.header;
  switch (h.type) {
    case PacketType::kConnectRequest:
      HandleConnectRequest(d, p, now);
      return;
    case PacketType::kConnectReply:
      HandleConnectReply(d, p, now);
      return;
    case PacketType::kReset:
      HandleReset(d, p, now);
      return;
    case PacketType::kConnectCookie:
      HandleConnectCookie(d, p);
      return;
    default:
      break;
  }
  const bool to_server = h.type == PacketType::kRequest ||
                         h.type == PacketType::kRequestForResponse || h.type == PacketType::kPing ||
                         h.type == PacketType::kDisconnect;
  Session* s = Lookup(h.dest_session);
  const bool epoch_ok =
      s != nullptr && (to_server ? h.epoch == epoch_ : h.epoch == s->server_epoch);
  if (s == nullptr || s->is_client == to_server || !(s->peer == d.from) || !epoch_ok ||
      s->state != SessionState::kConnected) {
    ++counters_.wrong_session;
    // Tell a client whose server session is gone (server restart, idle
    // expiry) so it fails fast instead of waiting for heartbeats.
    if (to_server && h.type != PacketType::kDisconnect && (s == nullptr || !epoch_ok)) {
      SendReset(d.from, h);
    }
    return;
  }
  if (s->protector) {
    if (h.tag_len != s->protector->tag_size() ||
        !s->protector->Open(std::span<const std::byte>(d.data, kHeaderSize), p.payload, p.tag)
             .ok()) {
      ++counters_.auth_failures;
      ++s->counters.auth_failures;
      return;
    }
  } else if (h.tag_len != 0) {
    ++counters_.bad_packets;
    ++s->counters.bad_packets;
    return;
  }
  if (to_server && !s->confirmed && !ConfirmSession(s)) return;
  s->last_rx_ns = now;
  s->unanswered_pings = 0;
  ++s->counters.packets_received;
  if (to_server) {
    HandleServerPacket(s, p);
  } else {
    HandleClientPacket(s, p, now);
  }
}

void Rpc::HandleConnectRequest(const RxDatagram& d, const ParsedPacket& p, uint64_t now) {
  ConnectRequestBody b;
  if (!DecodeConnectRequest(p.payload, &b) || p.header.tag_len != 0) {
    ++counters_.bad_packets;
    return;
  }
  // Nothing is reserved, and the hook does not run, until the client shows
  // that it receives at its source address: a connect without a valid
  // cookie bound to that address and its session fields gets one, and that
  // is all (stateless, like TCP SYN cookies and DTLS HelloVerifyRequest).
  const CookieBinding binding{d.from, b.client_epoch, b.client_session};
  if (!cookies_->Verify(binding, b.cookie, now)) {
    ++counters_.cookies_sent;
    PacketHeader h;
    h.type = PacketType::kConnectCookie;
    h.dest_session = b.client_session;
    h.epoch = epoch_;
    const Cookie cookie = cookies_->Make(binding, now);
    SendRaw(d.from, h, cookie, {});
    return;
  }
  const std::span<const std::byte> payload = p.payload.subspan(kConnectRequestBodySize);
  const uint64_t key = ConnectKey(d.from, b.client_epoch, b.client_session);
  if (auto it = server_by_client_.find(key); it != server_by_client_.end()) {
    Session* s = Lookup(it->second);
    if (s != nullptr && s->peer == d.from && s->client_epoch == b.client_epoch &&
        s->remote_session == b.client_session) {
      // A retransmitted connect: answer with the same reply, never run the hook twice.
      ++counters_.duplicates;
      PacketHeader h;
      h.type = PacketType::kConnectReply;
      h.dest_session = b.client_session;
      h.epoch = epoch_;
      SendRaw(d.from, h, s->connect_reply, {});
      return;
    }
  }
  auto refuse = [&](const Status& st) {
    ++counters_.connects_refused;
    PacketHeader h;
    h.type = PacketType::kConnectReply;
    h.status = static_cast<uint8_t>(st.code());
    h.dest_session = b.client_session;
    h.epoch = epoch_;
    std::byte body[kConnectReplyBodySize] = {};
    std::string msg = st.message().substr(0, max_connect_payload());
    SendRaw(d.from, h, body, AsBytes(msg));
  };
  if (b.window == 0 || b.window > kMaxWindow || b.credits == 0 || b.mtu < kMinMtu ||
      b.max_msg_size == 0) {
    refuse(Status::InvalidArgument("connect parameters out of range"));
    return;
  }
  const size_t mtu =
      std::min({static_cast<size_t>(b.mtu), options_.mtu, transport_->PathMtu(d.from)});
  if (mtu < kMinMtu) {
    refuse(Status::InvalidArgument("path MTU to the client is below the minimum"));
    return;
  }
  // Per-source and total limits on sessions that have not confirmed yet: a
  // replayed or scripted connect flood from addresses that do receive gets
  // this many sessions and no receive budget.
  auto per_ip = unconfirmed_by_ip_.find(d.from.HostKey());
  if (unconfirmed_sessions_ >= options_.max_unconfirmed_sessions ||
      (per_ip != unconfirmed_by_ip_.end() && per_ip->second >= options_.max_unconfirmed_per_ip)) {
    ++counters_.connects_limited;
    refuse(
        Status::ResourceExhausted("too many unconfirmed sessions (from this address or in all)"));
    return;
  }
  const uint16_t credits = std::min(b.credits, options_.session_credits);
  // Only confirmed sessions hold budget; the check is repeated at confirmation.
  const size_t need = receive_budget_in_use_ + ReceiveBudgetFor(credits, mtu);
  if (need > transport_->receive_buffer_bytes()) {
    refuse(Status::ResourceExhausted(
        "server receive buffer of " + std::to_string(transport_->receive_buffer_bytes()) +
        " bytes cannot hold " + std::to_string(credits) + " more packet credits x mtu " +
        std::to_string(mtu) + " (" + std::to_string(need) +
        " bytes with the existing sessions; raise the server's receive buffer or lower "
        "session_credits)"));
    return;
  }
  Result<Session*> created = NewSession(false, d.from);
  if (!created.ok()) {
    refuse(created.status());
    return;
  }
  Session* s = *created;
  s->state = SessionState::kConnected;
  s->remote_session = b.client_session;
  s->client_epoch = b.client_epoch;
  s->server_epoch = epoch_;
  s->mtu = mtu;
  s->chunk = mtu - kHeaderSize - kMaxTagSize;
  s->window = b.window;
  s->max_credits = credits;
  s->credits = credits;
  s->confirmed = false;  // no budget charged yet
  ++unconfirmed_sessions_;
  ++unconfirmed_by_ip_[d.from.HostKey()];
  s->peer_max_msg = b.max_msg_size;
  s->last_rx_ns = now;
  s->connect_key = key;
  s->server_slots.resize(s->window);
  ConnectDecision decision;
  if (nexus_->connect_hook()) {
    decision = nexus_->connect_hook()(ConnectRequestInfo{d.from, s->id, payload});
  }
  if (!decision.status.ok()) {
    FreeSession(s);
    refuse(decision.status);
    return;
  }
  if (decision.reply.size() > s->chunk - kConnectReplyBodySize) {  // fits one packet at `mtu`
    FreeSession(s);
    refuse(Status::Internal("server connect reply too large"));
    return;
  }
  s->protector = std::move(decision.protector);
  ConnectReplyBody rb;
  rb.server_session = s->id;
  rb.max_msg_size = options_.max_message_size;
  rb.mtu = static_cast<uint32_t>(mtu);
  rb.credits = credits;
  rb.window = s->window;
  rb.flags = s->protector ? kReplyFlagProtected : 0;
  s->connect_reply.resize(kConnectReplyBodySize + decision.reply.size());
  EncodeConnectReply(rb, s->connect_reply);
  if (!decision.reply.empty()) {
    std::memcpy(s->connect_reply.data() + kConnectReplyBodySize, decision.reply.data(),
                decision.reply.size());
  }
  server_by_client_[key] = s->id;
  ++counters_.sessions_connected;
  PacketHeader h;
  h.type = PacketType::kConnectReply;
  h.dest_session = b.client_session;
  h.epoch = epoch_;
  SendRaw(d.from, h, s->connect_reply, {});
}

void Rpc::HandleConnectReply(const RxDatagram& d, const ParsedPacket& p, uint64_t now) {
  Session* s = Lookup(p.header.dest_session);
  if (s == nullptr || !s->is_client || !(s->peer == d.from) || p.header.tag_len != 0) {
    ++counters_.wrong_session;
    return;
  }
  if (s->state != SessionState::kConnecting) {
    ++counters_.duplicates;
    return;
  }
  ConnectReplyBody b;
  if (!DecodeConnectReply(p.payload, &b)) {
    ++counters_.bad_packets;
    return;
  }
  const std::span<const std::byte> payload = p.payload.subspan(kConnectReplyBodySize);
  const StatusCode code = StatusCodeFromByte(p.header.status);
  if (code != StatusCode::kOk) {
    std::string reason(reinterpret_cast<const char*>(payload.data()), payload.size());
    FailSession(s, Status(code, "server " + d.from.ToString() + " refused the session: " + reason),
                SessionEvent::kConnectFailed);
    return;
  }
  if (b.window != s->window || b.credits == 0 || b.credits > s->max_credits || b.mtu < kMinMtu ||
      b.mtu > s->mtu || b.max_msg_size == 0 || p.header.epoch == 0) {
    ++counters_.bad_packets;
    return;
  }
  s->state = SessionState::kConnected;
  s->remote_session = b.server_session;
  s->server_epoch = p.header.epoch;
  s->mtu = b.mtu;
  s->chunk = b.mtu - kHeaderSize - kMaxTagSize;
  ChargeReceiveBudget(s, b.credits, b.mtu);
  s->max_credits = b.credits;
  s->credits = b.credits;
  s->peer_max_msg = b.max_msg_size;
  if (s->last_connect_ns != 0 && now > s->last_connect_ns) {
    s->peer_delay.Add(now - s->last_connect_ns, now);
  }
  s->last_rx_ns = now;
  s->last_ping_ns = now;
  s->connect_payload.clear();
  s->connect_payload.shrink_to_fit();
  std::memcpy(s->reply_body.data(), p.payload.data(), kConnectReplyBodySize);
  ++counters_.sessions_connected;
  const SessionId id = s->id;
  if (s->callback) s->callback(id, SessionEvent::kConnected, Status::Ok(), payload);
  s = Lookup(id);  // the callback may have destroyed the session
  if (s == nullptr) return;
  // Confirm the session at once (the server frees unconfirmed ones after
  // unconfirmed_session_idle_ns): a protected one under its keys, as soon as
  // they are installed.
  if ((b.flags & kReplyFlagProtected) != 0 && s->protector == nullptr) {
    s->confirm_pending = true;
  } else if (s->state == SessionState::kConnected) {
    s->last_ping_ns = now;
    SendControl(s, PacketType::kPing, 0, 0);
  }
  // Queued requests larger than the negotiated maximum fail now.
  for (auto it = s->backlog.begin(); it != s->backlog.end();) {
    if (it->request.size() > s->peer_max_msg) {
      Continuation c = std::move(it->continuation);
      it = s->backlog.erase(it);
      c(Status::InvalidArgument("rpc: request exceeds the server's maximum message size"), {});
      s = Lookup(id);
      if (s == nullptr) return;
      it = s->backlog.begin();
    } else {
      ++it;
    }
  }
  PumpSession(s);
}

void Rpc::HandleReset(const RxDatagram& d, const ParsedPacket& p, uint64_t now) {
  const PacketHeader& h = p.header;
  auto matches = [&](const Session* s) {
    return s != nullptr && s->is_client && s->state == SessionState::kConnected &&
           s->peer == d.from && s->remote_session == h.req_num && s->server_epoch == h.epoch;
  };
  Session* s = nullptr;
  if (h.dest_session != 0) {  // session-bound: from a server that still knows the session
    s = Lookup(h.dest_session);
    if (!matches(s)) s = nullptr;
  } else {  // "unknown session or epoch": the server has no keys for it
    for (uint32_t index : live_indexes_) {
      if (matches(sessions_[index].get())) {
        s = sessions_[index].get();
        break;
      }
    }
  }
  if (s == nullptr) {
    ++counters_.wrong_session;
    return;
  }
  if (h.tag_len != 0) {
    if (s->protector == nullptr || h.tag_len != s->protector->tag_size() ||
        !s->protector->Open(std::span<const std::byte>(d.data, kHeaderSize), p.payload, p.tag)
             .ok()) {
      ++counters_.auth_failures;
      ++s->counters.auth_failures;
      return;
    }
  } else if (s->protector != nullptr) {
    // Anyone who saw the session's numbers can forge this: probe instead.
    SuspectReset(s, now);
    return;
  }
  Status status;
  if (h.status != 0) {
    status = Status(StatusCodeFromByte(h.status),
                    "rpc: server " + d.from.ToString() + " ended the session");
  } else {
    status = Status::Unavailable("rpc: server " + d.from.ToString() +
                                 (h.msg_size != s->server_epoch ? " restarted (new epoch)"
                                                                : " no longer knows the session"));
  }
  FailSession(s, status, SessionEvent::kEnded);
}

bool Rpc::ProbeAfterReset(Session* s, uint64_t now) {
  if (s->last_rx_ns > s->reset_suspect_since) {  // an authentic packet since: the reset was forged
    s->reset_suspect_since = 0;
    return false;
  }
  // Ended only after kResetProbes unanswered pings AND that many RTOs: a
  // forged reset costs a few pings, a server that lost the session (restart)
  // is detected in a few round trips instead of the heartbeat limit.
  if (s->reset_probes >= kResetProbes && now - s->reset_suspect_since >= kResetProbes * s->rto_ns) {
    FailSession(s,
                Status::Unavailable("rpc: server " + s->peer.ToString() +
                                    " restarted or lost the session (unauthenticated reset, " +
                                    std::to_string(s->reset_probes) + " probes unanswered)"),
                SessionEvent::kEnded);
    return true;
  }
  if (now - s->last_ping_ns >= s->rto_ns) {
    ++s->reset_probes;
    s->last_ping_ns = now;
    SendControl(s, PacketType::kPing, 0, 0);
  }
  return false;
}

void Rpc::SuspectReset(Session* s, uint64_t now) {
  ++counters_.unauthenticated_resets;
  if (s->reset_suspect_since != 0) return;  // already probing
  s->reset_suspect_since = now;
  s->reset_probes = 1;
  s->last_ping_ns = now;
  SendControl(s, PacketType::kPing, 0, 0);
}

void Rpc::HandleConnectCookie(const RxDatagram& d, const ParsedPacket& p) {
  Session* s = Lookup(p.header.dest_session);
  if (s == nullptr || !s->is_client || !(s->peer == d.from) ||
      s->state != SessionState::kConnecting) {
    ++counters_.wrong_session;
    return;
  }
  if (p.header.tag_len != 0 || p.payload.size() != kCookieSize) {
    ++counters_.bad_packets;
    return;
  }
  if (std::memcmp(s->cookie.data(), p.payload.data(), kCookieSize) == 0) {
    ++counters_.duplicates;
    return;
  }
  // Unauthenticated like the connect itself: a forged cookie costs one more
  // round trip (the server answers a bad cookie with a good one).
  std::memcpy(s->cookie.data(), p.payload.data(), kCookieSize);
  const uint32_t attempts = s->connect_attempts;
  SendConnectRequest(s);
  s->connect_attempts = attempts;  // the retry budget counts timer-driven attempts only
}

bool Rpc::ConfirmSession(Session* s) {
  if (receive_budget_in_use_ + ReceiveBudgetFor(s->max_credits, s->mtu) >
      transport_->receive_buffer_bytes()) {
    // Other sessions confirmed first and took the budget this one was
    // offered at connect.
    ++counters_.connects_refused;
    ResetSession(s, StatusCode::kResourceExhausted);
    return false;
  }
  ForgetUnconfirmed(s->peer.HostKey());
  s->confirmed = true;
  ChargeReceiveBudget(s, s->max_credits, s->mtu);
  ++counters_.sessions_confirmed;
  return true;
}

void Rpc::HandleServerPacket(Session* s, const ParsedPacket& p) {
  switch (p.header.type) {
    case PacketType::kRequest:
      HandleRequestPacket(s, p);
      return;
    case PacketType::kRequestForResponse:
      HandleRequestForResponse(s, p);
      return;
    case PacketType::kPing: {
      // The Pong echoes the connect reply body, so a protected client can
      // check under the session keys that nobody altered the reply.
      PacketHeader h;
      h.type = PacketType::kPong;
      h.dest_session = s->remote_session;
      h.epoch = epoch_;
      QueuePacket(s, h, std::span<const std::byte>(s->connect_reply).first(kConnectReplyBodySize));
      return;
    }
    case PacketType::kDisconnect:
      FreeSession(s);
      return;
    default:
      ++counters_.bad_packets;
      return;
  }
}

void Rpc::HandleRequestPacket(Session* s, const ParsedPacket& p) {
  const PacketHeader& h = p.header;
  if (h.msg_size > options_.max_message_size) {
    ++counters_.oversized;
    return;
  }
  const uint32_t npkts = PacketsFor(h.msg_size, s->chunk);
  if (h.pkt_num >= npkts) {
    ++counters_.out_of_window;
    return;
  }
  if (h.payload_len != ChunkLength(h.msg_size, s->chunk, h.pkt_num)) {
    ++counters_.bad_packets;
    ++s->counters.bad_packets;
    return;
  }
  const uint32_t slot_index = static_cast<uint32_t>(h.req_num % s->window);
  ServerSlot& slot = s->server_slots[slot_index];
  if (slot.req_num == kNoRequest || h.req_num > slot.req_num) {
    if (h.pkt_num != 0) {  // the start of a new request is missing; go-back-N resends it
      ++counters_.out_of_order;
      ++s->counters.out_of_order;
      return;
    }
    slot.req_num = h.req_num;
    slot.state = ServerSlot::State::kReceiving;
    slot.type = h.req_type;
    slot.request_size = h.msg_size;
    slot.request_pkts = npkts;
    slot.received_pkts = 0;
    slot.request.resize(h.msg_size);
    slot.response_size = 0;
    slot.response_pkts = 0;
  } else if (h.req_num < slot.req_num) {
    ++counters_.stale;
    ++s->counters.stale;
    return;
  }
  if (h.msg_size != slot.request_size || h.req_type != slot.type) {
    ++counters_.bad_packets;
    ++s->counters.bad_packets;
    return;
  }
  if (h.pkt_num < slot.received_pkts) {
    // A retransmission: re-acknowledge so the client's go-back-N advances.
    ++counters_.duplicates;
    ++s->counters.duplicates;
    if (h.pkt_num + 1 < slot.request_pkts) {
      QueueCreditReturn(s, slot_index, /*duplicate=*/true);
      credit_returns_due_ = true;  // the client is going back N: answer at once
    } else if (slot.state == ServerSlot::State::kResponded) {
      SendResponsePacket(s, slot_index, 0);
    }
    return;
  }
  if (h.pkt_num > slot.received_pkts) {
    ++counters_.out_of_order;
    ++s->counters.out_of_order;
    return;
  }
  if (!p.payload.empty()) {
    std::memcpy(slot.request.data() + static_cast<size_t>(h.pkt_num) * s->chunk, p.payload.data(),
                p.payload.size());
  }
  ++slot.received_pkts;
  if (slot.received_pkts < slot.request_pkts) {
    QueueCreditReturn(s, slot_index, /*duplicate=*/false);
    if (++s->unreturned_pkts >= std::max<uint32_t>(1, s->max_credits / 4u)) {
      credit_returns_due_ = true;
    }
    return;
  }
  RunHandler(s, slot_index);
}

// Credit returns are cumulative and coalesced: one per slot per received
// burst, acknowledging every in-order request packet but the last (whose
// acknowledgement is response packet 0).
//
// The pending flag belongs to the slot, not to one request: a burst may
// carry a late duplicate of the slot's previous request followed by the
// first packets of its next one. The queued return is therefore computed
// for the slot's current request when it is sent, and the flag is cleared
// whatever that request is. (Clearing it only when the request number
// matched left it set forever after such a burst: no credit return was
// sent for the slot again, and every later message of more than `credits`
// packets on it stalled until a retransmission timeout.)
void Rpc::QueueCreditReturn(Session* s, uint32_t slot_index, bool duplicate) {
  ServerSlot& slot = s->server_slots[slot_index];
  slot.credit_return_for_duplicate |= duplicate;
  if (slot.credit_return_pending) return;
  slot.credit_return_pending = true;
  pending_credit_returns_.push_back({s->id, slot_index});
}

void Rpc::SendPendingCreditReturns() {
  for (const PendingCreditReturn& p : pending_credit_returns_) {
    Session* s = Lookup(p.session);
    if (s == nullptr || s->is_client) continue;  // freed meanwhile, flags with it
    s->unreturned_pkts = 0;
    ServerSlot& slot = s->server_slots[p.slot];
    const bool duplicate = slot.credit_return_for_duplicate;
    slot.credit_return_pending = false;
    slot.credit_return_for_duplicate = false;
    if (slot.state == ServerSlot::State::kIdle) continue;
    // A response sent in this burst acknowledges every request packet
    // cumulatively; only a client going back N needs the return as well.
    if (slot.state == ServerSlot::State::kResponded && !duplicate) continue;
    const uint32_t acked = std::min(slot.received_pkts, slot.request_pkts - 1);
    if (acked > 0) SendControl(s, PacketType::kCreditReturn, slot.req_num, acked - 1);
  }
  pending_credit_returns_.clear();
  credit_returns_due_ = false;
}

void Rpc::RunHandler(Session* s, uint32_t slot_index) {
  ServerSlot& slot = s->server_slots[slot_index];
  slot.state = ServerSlot::State::kHandlerRunning;
  ++counters_.handlers_run;
  ++s->counters.handlers_run;
  const RequestHandle handle{s->id, slot_index, slot.req_num};
  const RequestHandler* handler = nexus_->FindHandler(slot.type);
  if (handler == nullptr) {
    const std::string msg = "no handler for request type " + std::to_string(slot.type);
    EnqueueResponse(handle, AsBytes(msg), StatusCode::kNotFound).IgnoreError();  // slot is live
    return;
  }
  IncomingRequest req{handle, slot.type, slot.request, s->peer};
  (*handler)(*this, req);
}

void Rpc::HandleRequestForResponse(Session* s, const ParsedPacket& p) {
  const PacketHeader& h = p.header;
  const uint32_t slot_index = static_cast<uint32_t>(h.req_num % s->window);
  ServerSlot& slot = s->server_slots[slot_index];
  if (h.req_num != slot.req_num || h.payload_len != 0) {
    ++counters_.stale;
    ++s->counters.stale;
    return;
  }
  if (slot.state != ServerSlot::State::kResponded || h.pkt_num == 0 ||
      h.pkt_num >= slot.response_pkts) {
    ++counters_.out_of_window;
    return;
  }
  SendResponsePacket(s, slot_index, h.pkt_num);
}

void Rpc::HandleClientPacket(Session* s, const ParsedPacket& p, uint64_t now) {
  const PacketHeader& h = p.header;
  if (h.type == PacketType::kPong) {
    if (now > s->last_ping_ns) s->peer_delay.Add(now - s->last_ping_ns, now);
    if (s->protector != nullptr && !s->reply_verified && !p.payload.empty()) {
      if (p.payload.size() != kConnectReplyBodySize ||
          std::memcmp(p.payload.data(), s->reply_body.data(), kConnectReplyBodySize) != 0) {
        FailSession(s,
                    Status::IntegrityViolation("rpc: the connect reply from " + s->peer.ToString() +
                                               " was modified in flight"),
                    SessionEvent::kEnded);
        return;
      }
      s->reply_verified = true;
    }
    return;
  }
  if (h.type != PacketType::kCreditReturn && h.type != PacketType::kResponse) {
    ++counters_.bad_packets;
    return;
  }
  const uint32_t slot_index = static_cast<uint32_t>(h.req_num % s->window);
  ClientSlot& slot = s->client_slots[slot_index];
  if (!slot.busy || slot.req_num != h.req_num) {
    ++counters_.stale;
    ++s->counters.stale;
    return;
  }
  uint32_t index;
  if (h.type == PacketType::kCreditReturn) {
    if (h.pkt_num + 1 >= slot.request_pkts || h.payload_len != 0) {
      ++counters_.out_of_window;
      return;
    }
    index = h.pkt_num;
  } else {
    if (h.msg_size > options_.max_message_size) {
      ++counters_.oversized;
      return;
    }
    const uint32_t npkts = PacketsFor(h.msg_size, s->chunk);
    if (h.pkt_num >= npkts || (slot.response_pkts != 0 && (h.msg_size != slot.response_size ||
                                                           h.status != slot.response_status))) {
      ++counters_.out_of_window;
      return;
    }
    if (h.payload_len != ChunkLength(h.msg_size, s->chunk, h.pkt_num)) {
      ++counters_.bad_packets;
      return;
    }
    index = slot.request_pkts - 1 + h.pkt_num;
  }
  if (index < slot.num_rx) {
    ++counters_.duplicates;
    ++s->counters.duplicates;
    return;
  }
  // Credit returns and response packet 0 acknowledge cumulatively; later
  // response packets answer one request-for-response each, in order.
  const bool cumulative = h.type == PacketType::kCreditReturn || h.pkt_num == 0;
  if (index >= slot.num_tx || (!cumulative && index != slot.num_rx)) {
    ++counters_.out_of_order;
    ++s->counters.out_of_order;
    return;
  }
  const uint32_t advanced = index + 1 - slot.num_rx;
  slot.num_rx = index + 1;
  if (slot.probing) {
    slot.probing = false;
    if (slot.num_rx == slot.probe_pkt + 1 && slot.num_rx < slot.num_tx) {
      // The answer stops at the probed packet: the server has none of the
      // packets sent after it (a go-back-N receiver drops everything after
      // a hole). Go back N: reclaim their credits and resend them (the
      // PumpSession below). (If that acknowledgement was sent before the
      // probe arrived, this resends what may still arrive: no worse than
      // going back N at the timeout, as before.)
      const uint32_t lost = slot.num_tx - slot.num_rx;
      s->credits = static_cast<uint16_t>(std::min<uint32_t>(s->credits + lost, s->max_credits));
      slot.num_tx = slot.num_rx;
      if (s->congestion_control) s->cc.OnTimeout(now);
    }
  }
  if (slot.sample_pkt != kNoSample && slot.sample_pkt < slot.num_rx) {
    // The acknowledgement of the last request packet is response packet 0,
    // which waits for the handler: that round trip counts server work as
    // network delay, so it is only an upper bound (used when below target,
    // see RateController::OnUpperBoundSample).
    if (slot.sample_pkt + 1 != slot.request_pkts) {
      s->cc.OnRttSample(now - slot.sample_sent_ns, now);
    } else {
      s->cc.OnUpperBoundSample(now - slot.sample_sent_ns, now);
    }
    ++s->counters.rtt_samples;
    slot.sample_pkt = kNoSample;
  }
  s->credits = static_cast<uint16_t>(std::min<uint32_t>(s->credits + advanced, s->max_credits));
  slot.last_progress_ns = now;
  slot.rto_ns = s->rto_ns;  // progress ends the back-off
  if (h.type == PacketType::kResponse) {
    if (h.pkt_num == 0) {
      slot.response_size = h.msg_size;
      slot.response_pkts = PacketsFor(h.msg_size, s->chunk);
      slot.response_status = h.status;
      slot.response.resize(h.msg_size);
    }
    if (!p.payload.empty()) {
      std::memcpy(slot.response.data() + static_cast<size_t>(h.pkt_num) * s->chunk,
                  p.payload.data(), p.payload.size());
    }
    if (slot.num_rx == slot.request_pkts + slot.response_pkts - 1) {
      // Complete. Free the slot before the continuation runs so it can send.
      const uint64_t rtt = now - slot.start_ns;
      if (!slot.retransmitted) {
        // RFC 6298 smoothing on clean samples (Karn's rule).
        if (s->srtt_ns == 0) {
          s->srtt_ns = rtt;
          s->rttvar_ns = rtt / 2;
        } else {
          const uint64_t diff = rtt > s->srtt_ns ? rtt - s->srtt_ns : s->srtt_ns - rtt;
          s->rttvar_ns = (3 * s->rttvar_ns + diff) / 4;
          s->srtt_ns = (7 * s->srtt_ns + rtt) / 8;
        }
        s->rto_ns =
            std::clamp(s->srtt_ns + 4 * s->rttvar_ns, options_.min_rto_ns, options_.max_rto_ns);
      }
      s->counters.rtt_ns.Record(rtt);
      s->peer_delay.Add(rtt, now);
      counters_.rtt_ns.Record(rtt);
      ++s->counters.requests_completed;
      ++counters_.requests_completed;
      slot.busy = false;
      slot.req_num += s->window;
      --s->active_slots;
      Continuation cont = std::move(slot.continuation);
      slot.continuation = nullptr;
      const SessionId id = s->id;
      const StatusCode code = StatusCodeFromByte(slot.response_status);
      std::span<const std::byte> body(slot.response.data(), slot.response_size);
      if (code == StatusCode::kOk) {
        cont(Status::Ok(), body);
      } else {
        cont(Status(code, std::string(reinterpret_cast<const char*>(body.data()), body.size())),
             body);
      }
      s = Lookup(id);
      if (s != nullptr) PumpSession(s);
      return;
    }
  }
  PumpSession(s);
}

// ---------------------------------------------------------------- failure

void Rpc::FailSession(Session* s, const Status& status, SessionEvent event) {
  s->state = SessionState::kEnded;
  ++counters_.sessions_failed;
  std::vector<Continuation> pending;
  for (ClientSlot& slot : s->client_slots) {
    if (slot.busy) {
      pending.push_back(std::move(slot.continuation));
      slot.busy = false;
    }
  }
  s->active_slots = 0;
  for (Backlogged& b : s->backlog) pending.push_back(std::move(b.continuation));
  s->backlog.clear();
  COSMOS_LOG_DEBUG("rpc: session {} to {} ended: {}", s->id, s->peer.ToString(), status.ToString());
  SessionCallback cb = s->callback;
  const SessionId id = s->id;
  // The session stays (state kEnded) until DestroySession, so ids stay valid.
  for (Continuation& c : pending) c(status, {});
  if (cb) cb(id, event, status, {});
}

// ---------------------------------------------------------------- timers

void Rpc::RunTimers(uint64_t now, bool rx_backlog) {
  next_timer_ns_ = now + options_.timer_interval_ns;
  // No retransmission timeout while received packets wait unprocessed: after
  // this thread was descheduled for longer than the RTO, its socket holds the
  // acknowledgements, and timing out before reading them goes back N on
  // packets that arrived (seen as bursts of simultaneous timeouts after 1-3
  // ms stalls in the 1 MB benchmark). Deferred for at most min_rto_ns, so a
  // flood of packets cannot hold back recovery from a real loss.
  bool check_rto = true;
  if (rx_backlog) {
    if (timeouts_deferred_since_ == 0) timeouts_deferred_since_ = now;
    check_rto = now - timeouts_deferred_since_ >= options_.min_rto_ns;
  }
  if (!rx_backlog || check_rto) timeouts_deferred_since_ = 0;
  // Index-based: callbacks may create or destroy sessions.
  for (size_t k = 0; k < live_indexes_.size(); ++k) {
    Session* s = sessions_[live_indexes_[k]].get();
    if (!s->is_client) {
      const uint64_t idle_limit =
          s->confirmed ? options_.server_session_idle_ns : options_.unconfirmed_session_idle_ns;
      if (now - s->last_rx_ns > idle_limit) {
        if (!s->confirmed) ++counters_.unconfirmed_expired;
        FreeSession(s);
        --k;
      }
      continue;
    }
    if (s->state == SessionState::kConnecting) {
      if (now - s->last_connect_ns >= options_.connect_retry_ns) {
        if (s->connect_attempts >= options_.connect_attempts) {
          FailSession(
              s,
              Status::Unavailable("rpc: no connect reply from " + s->peer.ToString() + " after " +
                                  std::to_string(s->connect_attempts) + " attempts"),
              SessionEvent::kConnectFailed);
        } else {
          SendConnectRequest(s);
        }
      }
      continue;
    }
    if (s->state != SessionState::kConnected) continue;
    if (s->reset_suspect_since != 0 && ProbeAfterReset(s, now)) continue;
    // Dead only after enough silence AND enough unanswered pings: if this
    // thread itself was descheduled it sent no pings, so it does not blame
    // the peer for its own stall.
    const uint64_t dead_after = DeadPeerLimit(s, now);
    if (now - s->last_rx_ns > dead_after && s->unanswered_pings >= options_.max_missed_heartbeats) {
      FailSession(s,
                  Status::Unavailable("rpc: peer " + s->peer.ToString() + " silent for " +
                                      std::to_string((now - s->last_rx_ns) / 1000000) + " ms (" +
                                      std::to_string(s->unanswered_pings) +
                                      " heartbeats unanswered, limit " +
                                      std::to_string(dead_after / 1000000) + " ms)"),
                  SessionEvent::kEnded);
      continue;
    }
    if (now - s->last_rx_ns >= options_.heartbeat_interval_ns &&
        now - s->last_ping_ns >= options_.heartbeat_interval_ns) {
      s->last_ping_ns = now;
      ++s->unanswered_pings;
      SendControl(s, PacketType::kPing, 0, 0);
    }
    for (uint32_t i = 0; check_rto && i < s->window; ++i) {
      ClientSlot& slot = s->client_slots[i];
      // (last_progress_ns may be a little after `now`: pacing sends within the iteration.)
      if (!slot.busy || slot.num_tx == slot.num_rx || now < slot.last_progress_ns + slot.rto_ns) {
        continue;
      }
      // Probe first (after F-RTO, RFC 5682): resend only the first
      // unanswered packet and leave the rest in flight. Most timeouts on a
      // busy host are spurious (the server's thread was descheduled for
      // longer than the RTO; the packets wait in its socket), and going back
      // N at once resent up to every credit's worth of packets the server
      // already had (thousands per second in the 1 MB benchmark). The first
      // acknowledgement after the probe decides (HandleClientPacket): one
      // that covers packets after the probed one shows they arrived, so
      // nothing more is resent; one that stops at the probed packet means
      // the rest was lost, and the slot goes back N then. A timeout while
      // already probing (nothing came back at all) probes again and counts
      // as congestion.
      if (slot.probing && s->congestion_control) s->cc.OnTimeout(now);
      slot.probing = true;
      slot.probe_pkt = slot.num_rx;
      slot.retransmitted = true;
      slot.sample_pkt = kNoSample;  // Karn: no sample from a retransmitted packet
      slot.last_progress_ns = now;
      slot.rto_ns = std::min(slot.rto_ns * 2, options_.max_rto_ns);
      // Karn: the backed-off RTO stays the session's until a clean RTT
      // sample replaces it. (Resetting it on the next progress kept the RTO
      // at its initial value forever once every request was retransmitted,
      // since retransmitted requests give no sample: with many credits in
      // flight, e.g. 1 MB messages, every request then went back N again.)
      s->rto_ns = std::max(s->rto_ns, slot.rto_ns);
      ++s->counters.timeouts;
      ++counters_.timeouts;
      ++s->counters.retransmissions;
      ++counters_.retransmissions;
      QueueSlotPacket(s, i, slot.probe_pkt);
    }
  }
}

// ---------------------------------------------------------------- event loop

void Rpc::Post(std::function<void()> task) {
  // Everything happens under the lock: the task cannot run (RunPosted takes
  // the lock) before this call is done with the endpoint, so a task may end
  // the loop and let the owner destroy the endpoint.
  std::lock_guard<std::mutex> l(post_mu_);
  posted_.push_back(std::move(task));
  has_posted_.store(true, std::memory_order_release);
  uint64_t one = 1;
  ssize_t w = ::write(wake_fd_, &one, sizeof(one));
  (void)w;  // only fails on counter overflow; the flag above still wakes a busy loop
}

void Rpc::RunPosted() {
  {
    std::lock_guard<std::mutex> l(post_mu_);
    running_posted_.swap(posted_);
    has_posted_.store(false, std::memory_order_relaxed);
  }
  for (auto& task : running_posted_) {
    ++counters_.posted_tasks;
    task();
  }
  running_posted_.clear();
}

void Rpc::SchedulePacing(Session* s, uint64_t when) {
  ++counters_.pacing_delays;
  if (s->pacing_scheduled) return;
  s->pacing_scheduled = true;
  pacing_.push_back({when, s->id});
  std::push_heap(pacing_.begin(), pacing_.end(), std::greater<>());
}

void Rpc::RunPacing(uint64_t now) {
  while (!pacing_.empty() && pacing_.front().when <= now) {
    std::pop_heap(pacing_.begin(), pacing_.end(), std::greater<>());
    const SessionId id = pacing_.back().session;
    pacing_.pop_back();
    Session* s = Lookup(id);
    if (s == nullptr || !s->pacing_scheduled) continue;
    s->pacing_scheduled = false;
    PumpSession(s);
  }
}

void Rpc::WindowedMax::Add(uint64_t value, uint64_t now) {
  if (now - window_start >= kDelayWindowNs) {
    previous = now - window_start >= 2 * kDelayWindowNs ? 0 : current;
    current = 0;
    window_start = now;
  }
  current = std::max(current, value);
}

uint64_t Rpc::WindowedMax::Get(uint64_t now) const {
  if (now - window_start >= 2 * kDelayWindowNs) return 0;
  if (now - window_start >= kDelayWindowNs) return current;
  return std::max(current, previous);
}

uint64_t Rpc::DeadPeerLimit(const Session* s, uint64_t now) const {
  const uint64_t base = options_.heartbeat_interval_ns * options_.max_missed_heartbeats;
  const uint64_t delay = std::max(s->peer_delay.Get(now), scheduling_delay_.Get(now));
  return std::max(base, std::min(options_.max_dead_peer_ns, kDeadPeerDelayFactor * delay));
}

void Rpc::MaybeBlock(bool idle, uint64_t now) {
  resume_by_ns_ = now;
  if (options_.poll_mode != PollMode::kAdaptive) return;
  if (!idle) {
    last_activity_ns_ = now;
    return;
  }
  if (now - last_activity_ns_ < options_.adaptive_spin_ns) return;
  uint64_t block_ns = options_.adaptive_max_block_ns;
  if (!pacing_.empty()) {  // a paced session sends again at pacing_.front().when
    if (pacing_.front().when <= now) return;
    block_ns = std::min(block_ns, pacing_.front().when - now);
  }
  pollfd fds[2];
  int n = 0;
  if (transport_->readable_fd() >= 0) fds[n++] = {transport_->readable_fd(), POLLIN, 0};
  fds[n++] = {wake_fd_, POLLIN, 0};
  // Timers run again after the wake-up.
  resume_by_ns_ = now + block_ns;
  const timespec timeout{static_cast<time_t>(block_ns / 1'000'000'000),
                         static_cast<long>(block_ns % 1'000'000'000)};
  if (::ppoll(fds, n, &timeout, nullptr) > 0 && (fds[n - 1].revents & POLLIN)) {
    uint64_t v;
    ssize_t r = ::read(wake_fd_, &v, sizeof(v));
    (void)r;  // drained; posted tasks are found through has_posted_
  }
}

void Rpc::RunEventLoopOnce() {
  CheckThread();
  COSMOS_CHECK_MSG(!in_loop_, "Rpc event loop entered re-entrantly");
  in_loop_ = true;
  const size_t n = transport_->RecvBurst(rx_batch_);
  uint64_t now = MonotonicNanos();
  // Lateness of this iteration: the thread was descheduled (or the
  // application did not run the loop; pauses beyond the dead-peer cap are
  // not counted as scheduling delay).
  if (resume_by_ns_ != 0 && now > resume_by_ns_ &&
      now - resume_by_ns_ < options_.max_dead_peer_ns) {
    scheduling_delay_.Add(now - resume_by_ns_, now);
  }
  for (size_t i = 0; i < n; ++i) HandleDatagram(rx_batch_[i], now);
  // Credit returns wait while the receive queue keeps delivering full bursts
  // (each return then covers more packets: fewer sends, longer GSO runs at
  // the client) until a session has a quarter of its credits unreturned,
  // a client goes back N, or a short burst shows the queue drained.
  if (!pending_credit_returns_.empty() && (n < rx_batch_.size() || credit_returns_due_)) {
    SendPendingCreditReturns();
  }
  if (n > 0) now = MonotonicNanos();
  if (!pacing_.empty() && pacing_.front().when <= now) {
    RunPacing(now);
    now = MonotonicNanos();  // timers must not see a send of this iteration in their future
  }
  if (now >= next_timer_ns_) RunTimers(now, n == rx_batch_.size());
  const bool posted = has_posted_.load(std::memory_order_acquire);
  if (posted) RunPosted();
  const bool sent = !tx_queue_.empty();
  FlushTx();
  in_loop_ = false;
  MaybeBlock(n == 0 && !sent && !posted, now);
}

void Rpc::RunEventLoopFor(uint64_t duration_ns) {
  const uint64_t end = MonotonicNanos() + duration_ns;
  do {
    RunEventLoopOnce();
  } while (MonotonicNanos() < end);
}

bool Rpc::RunUntil(const std::function<bool()>& done, uint64_t timeout_ns) {
  const uint64_t end = MonotonicNanos() + timeout_ns;
  while (!done()) {
    if (MonotonicNanos() >= end) return done();
    RunEventLoopOnce();
  }
  return true;
}

void Rpc::RunUntilStopped(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_acquire)) RunEventLoopOnce();
}

}  // namespace cosmos::rpc
