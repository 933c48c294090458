// The remote persistent-memory client: one RPC endpoint per Client, per-Region
// batching of posted writes, and the ordering rules of docs/semantics.md
// (barrier batches for flush / write-after-flush / atomics / verify).
#include "cosmos/client.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>

#include "client/replica_region.h"
#include "client/secure_session.h"
#include "common/check.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "protocol/rpm_protocol.h"
#include "protocol/sealed_batch.h"
#include "rpc/rpc.h"
#include "rpc/transport_udp.h"
#include "sec/access_list.h"
#include "sec/crypto.h"
#include "sec/key_files.h"
#include "sec/user_key.h"

namespace cosmos {

const char* DurabilityName(Durability d) {
  switch (d) {
    case Durability::kNone:
      return "none";
    case Durability::kPage:
      return "page";
    case Durability::kCacheLine:
      return "cacheline";
    case Durability::kByte:
      return "byte";
  }
  return "unknown";
}

namespace {

using protocol::OpResult;
using protocol::RequestBuilder;

// Largest WRITE payload per op; bigger writes are split. What the protocol
// requires: a batch (its buffered posted writes, up to batch_bytes, plus this
// op) must fit one rpc message of protocol::kMaxMessageLength (8 MiB); 1 MiB
// leaves ample room. (A 32 KiB cap used to work around an rpc stall of
// messages above the 32-packet credit window; fixed in the rpc layer.)
constexpr size_t kMaxWriteChunk = 1u << 20;
// Largest READ per op: the node's default response limit
// (ServerOptions::max_read_bytes, 4 MiB; the response must also fit one
// 8 MiB message). Bigger reads are split.
constexpr size_t kMaxReadChunk = 4u << 20;

int CurrentTid() { return static_cast<int>(::syscall(SYS_gettid)); }

RegionInfo ToInfo(const protocol::RegionDesc& d) {
  RegionInfo info;
  info.name = d.name;
  info.size = d.size;
  info.durability = static_cast<Durability>(d.durability);
  info.secure = d.secure;
  return info;
}

Status CheckRange(uint64_t offset, uint64_t len, uint64_t size, const char* what) {
  if (offset > size || len > size - offset) {
    return Status::OutOfRange(std::string(what) + " [" + std::to_string(offset) + ", +" +
                              std::to_string(len) + ") outside region of " + std::to_string(size) +
                              " bytes");
  }
  return Status::Ok();
}

Status CheckRegionName(const std::string& name) {
  if (name.empty() || name.size() > protocol::kMaxNameLength) {
    return Status::InvalidArgument("region name must be 1..63 bytes");
  }
  return Status::Ok();
}

std::string HexOf(std::span<const std::byte> bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (std::byte b : bytes) {
    out.push_back(kHex[std::to_integer<unsigned>(b) >> 4]);
    out.push_back(kHex[std::to_integer<unsigned>(b) & 15]);
  }
  return out;
}

Status CheckAtomic(uint64_t offset, uint64_t size, const char* what) {
  if (offset % 8 != 0) {
    return Status::InvalidArgument(std::string(what) + ": offset " + std::to_string(offset) +
                                   " is not 8-byte aligned");
  }
  return CheckRange(offset, 8, size, what);
}

// First non-ok result of a batch, or ok.
Status FirstError(std::span<const OpResult> results) {
  for (const auto& r : results) {
    if (r.code != StatusCode::kOk) return protocol::ResultStatus(r);
  }
  return Status::Ok();
}

// Called with the transport status and the parsed results of one batch.
using BatchDone = std::function<void(const Status& status, std::span<const OpResult> results)>;

}  // namespace

class ClientImpl;

// A batch waiting to be sent or in flight.
struct Outgoing {
  std::vector<std::byte> bytes;
  bool barrier = false;      // contains FLUSH / WAF / CAS / FAA / VERIFY
  bool writes = false;       // contains WRITE ops
  uint64_t lo = UINT64_MAX;  // bounding interval of the bytes it touches
  uint64_t hi = 0;
  size_t pending_ops = 0;      // leading ops that were buffered posted writes / AsyncFlushes
  size_t pending_flushes = 0;  // AsyncFlush ops among them
  bool epoch_op = false;       // starts with the Region's EPOCH op (answered first)
  BatchDone done;              // sees the results after the leading buffered ops
};

// Mutable per-Region state, shared with in-flight continuations (which may
// run after the Region object is gone).
struct RegionState {
  ClientImpl* client = nullptr;
  uint64_t handle = 0;
  RegionInfo info;
  // Replicated region: every batch starts with EPOCH(epoch, epoch_flags).
  uint64_t epoch = 0;
  uint8_t epoch_flags = 0;
  RequestBuilder pending;  // buffered posted writes and AsyncFlushes, not yet sent
  uint64_t pending_lo = UINT64_MAX, pending_hi = 0;
  size_t pending_flushes = 0;  // AsyncFlush ops in `pending`
  // What TakePending() took, consumed by the Enqueue that follows it.
  struct Taken {
    size_t ops = 0, flushes = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
  } taken;
  std::deque<Outgoing> queue;  // waiting for the ordering rules
  struct InFlight {
    uint64_t id;
    bool barrier, writes;
    uint64_t lo, hi;
  };
  std::vector<InFlight> inflight;
  uint64_t next_id = 1;
  uint64_t async_flushes = 0;  // outstanding AsyncFlush batches
  Status posted_error;         // first failure of a posted write / AsyncFlush since last report
};

class ClientImpl final : public Client {
 public:
  ClientImpl(const ClientOptions& options) : options_(options), owner_tid_(CurrentTid()) {}

  Status Init();

  Result<RegionInfo> CreateRegion(const std::string& name, uint64_t size,
                                  const RegionOptions& options) override;
  Result<std::unique_ptr<Region>> OpenRegion(const std::string& name,
                                             const OpenOptions& options) override;
  using Client::OpenRegion;
  Result<std::vector<RegionInfo>> ListRegions() override;
  Status DeleteRegion(const std::string& name) override;
  Status GrantAccess(const std::string& name, const ClientIdentity& who, uint8_t rights) override;
  Result<AccessInfo> ListAccess(const std::string& name) override;
  Result<uint32_t> RotateKey(const std::string& name) override;
  Result<uint32_t> RotateKeyToUserKey(const std::string& name, const UserKey& user_key) override;
  size_t Poll(uint32_t max_wait_us) override;
  const std::string& server() const override { return options_.server; }

  void CheckThread() const {
    COSMOS_CHECK_MSG(CurrentTid() == owner_tid_,
                     "cosmos::Client used from a thread that does not own it");
  }

  // Sends one batch on the session; `done` runs exactly once inside the
  // event loop (or at once if the send fails).
  // Sends one RPM batch. With `sealed_for` (a secure region, on a secure
  // session) the batch is sealed end to end for the node's enclave
  // (protocol/sealed_batch.h) and the response opened here.
  void SendBatch(std::span<const std::byte> bytes, BatchDone done,
                 const RegionState* sealed_for = nullptr);
  void SendSealedBatch(std::span<const std::byte> bytes, const std::shared_ptr<BatchDone>& done,
                       const RegionState& st);

  // Runs the event loop until `done()` or the call timeout. Timeout otherwise.
  Status WaitUntil(const std::function<bool()>& done);

  // A cluster-internal request of RPC type `type` (replica_region.h).
  Status SendRaw(uint16_t type, std::span<const std::byte> payload, client::RawDone done) {
    CheckThread();
    if (!session_up_) {
      return session_status_.ok() ? Status::Unavailable("not connected") : session_status_;
    }
    return rpc_->EnqueueRequest(
        session_, type, payload,
        [d = std::move(done)](const Status& s, std::span<const std::byte> response) {
          d(s, response);
        });
  }

  // Queues a user completion to run after the current loop iteration.
  void Defer(Completion done, Status status) {
    ready_.push_back([d = std::move(done), s = std::move(status)] { d(s); });
  }
  size_t RunReady() {
    size_t n = 0;
    while (!ready_.empty()) {
      std::vector<std::function<void()>> run;
      run.swap(ready_);
      for (auto& f : run) f();
      n += run.size();
    }
    return n;
  }

  // One-op admin batch, synchronously; returns the result payload copy.
  Result<std::vector<std::byte>> AdminCall(const RequestBuilder& b);

  const ClientOptions& options() const { return options_; }
  // Secure mode: the digest a secure region's Verify returns for `expected`
  // at `offset` (first 8 bytes, LE, of the enclave's keyed digest).
  uint64_t SecureDigest(uint64_t offset, std::span<const std::byte> expected) const {
    sec::HmacSha256Hasher mac(verify_key_.span());
    uint8_t le[16];
    const uint64_t len = expected.size();
    for (int i = 0; i < 8; ++i) {
      le[i] = static_cast<uint8_t>(offset >> (8 * i));
      le[8 + i] = static_cast<uint8_t>(len >> (8 * i));
    }
    mac.Update(le);
    mac.Update({reinterpret_cast<const uint8_t*>(expected.data()), expected.size()});
    const sec::Digest d = mac.Final();
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | d[static_cast<size_t>(i)];
    return v;
  }

  // Open Regions, so Poll can send their buffered ops.
  void Remember(std::shared_ptr<RegionState> st) { regions_.push_back(std::move(st)); }
  void Forget(RegionState* st) {
    std::erase_if(regions_, [st](const std::shared_ptr<RegionState>& r) { return r.get() == st; });
  }

 private:
  Status ConnectTo(rpc::NetAddress addr, uint16_t flags, protocol::HelloReply* reply);

  ClientOptions options_;
  int owner_tid_;
  rpc::Nexus nexus_;
  std::unique_ptr<rpc::Rpc> rpc_;
  rpc::SessionId session_ = 0;
  bool session_up_ = false;
  std::optional<client::SecureClientConfig> secure_;   // set in secure mode
  sec::SecretArray<32> verify_key_;                    // of the current secure session
  std::unique_ptr<sec::SecureChannel> batch_channel_;  // of the current secure session
  uint64_t batch_seq_ = 0;                             // last sealed batch's seq
  uint64_t batch_generation_ = 0;                      // bumped when batch_channel_ changes
  sec::SecretArray<32> key_wrap_key_;                  // of the current secure session
  // A user key wrapped for the enclave under the current secure session
  // (FailedPrecondition on a plain connection), and the check of the
  // enclave's receipt for it (IntegrityViolation on a mismatch).
  Result<sec::Bytes> WrapUserKey(sec::UserKeyUse use, const std::string& name, const UserKey& key);
  Status CheckUserKeyReceipt(sec::UserKeyUse use, const std::string& name, uint32_t key_epoch,
                             const UserKey& key, std::span<const std::byte> receipt);
  Status session_status_;
  std::vector<std::function<void()>> ready_;
  std::vector<std::shared_ptr<RegionState>> regions_;
};

namespace {

// Sends queued batches of `st` that the ordering rules allow (docs/semantics.md):
// a barrier batch goes only when nothing of the Region is in flight and
// holds back everything after it; a plain batch may pipeline unless it
// overlaps an in-flight batch that writes.
void Pump(const std::shared_ptr<RegionState>& st) {
  while (!st->queue.empty()) {
    Outgoing& o = st->queue.front();
    if (st->inflight.size() >= st->client->options().max_inflight) return;
    bool blocked = false;
    for (const auto& f : st->inflight) {
      if (f.barrier || o.barrier) blocked = true;
      if ((f.writes || o.writes) && o.lo < f.hi && f.lo < o.hi) blocked = true;
    }
    if (blocked) return;
    Outgoing out = std::move(o);
    st->queue.pop_front();
    uint64_t id = st->next_id++;
    st->inflight.push_back({id, out.barrier, out.writes, out.lo, out.hi});
    BatchDone done = std::move(out.done);
    const size_t pending_ops = out.pending_ops, pending_flushes = out.pending_flushes;
    const bool epoch_op = out.epoch_op;
    // A secure region's batches are sealed (those of a replicated one carry
    // its epoch in the sealed header instead of an EPOCH op).
    const RegionState* sealed_for = st->info.secure && !epoch_op ? st.get() : nullptr;
    st->client->SendBatch(
        out.bytes,
        [st, id, pending_ops, pending_flushes, epoch_op, done = std::move(done)](
            const Status& transport, std::span<const OpResult> all) {
          // A refused EPOCH op (stale epoch, not the primary) fails the batch as
          // a whole: nothing after it ran.
          Status s = transport;
          std::span<const OpResult> results = all;
          if (s.ok() && epoch_op) {
            if (all.empty()) {
              s = Status::Corruption("rpm response: no result for the epoch op");
            } else if (all[0].code != StatusCode::kOk) {
              s = protocol::ResultStatus(all[0]);
            }
            results = s.ok() ? all.subspan(1) : std::span<const OpResult>();
          }
          auto it = std::find_if(st->inflight.begin(), st->inflight.end(),
                                 [id](const RegionState::InFlight& f) { return f.id == id; });
          if (it != st->inflight.end()) st->inflight.erase(it);
          // The leading buffered ops (posted writes, AsyncFlushes) report to the
          // Region's posted error; the caller's own ops go to `done`.
          size_t k = std::min(pending_ops, results.size());
          Status posted =
              s.ok() ? FirstError(results.first(k)) : (pending_ops > 0 ? s : Status::Ok());
          if (!posted.ok() && st->posted_error.ok()) st->posted_error = posted;
          st->async_flushes -= pending_flushes;
          if (done) done(s, s.ok() ? results.subspan(k) : results);
          Pump(st);
        },
        sealed_for);
  }
}

// Moves the buffered ops out as the start of the next batch (recorded in
// st->taken for the Enqueue that follows).
RequestBuilder TakePending(RegionState* st) {
  RequestBuilder b = std::move(st->pending);
  st->pending = RequestBuilder();
  st->taken = RegionState::Taken{b.op_count(), st->pending_flushes, st->pending_lo, st->pending_hi};
  st->pending_flushes = 0;
  st->pending_lo = UINT64_MAX;
  st->pending_hi = 0;
  return b;
}

// Queues a batch whose leading ops came from TakePending; `writes` says the
// caller's own ops write [lo, hi).
void Enqueue(const std::shared_ptr<RegionState>& st, RequestBuilder b, bool barrier, uint64_t lo,
             uint64_t hi, BatchDone done, bool writes = false) {
  Outgoing o;
  if (st->epoch != 0 && !st->info.secure) {
    RequestBuilder with_epoch;
    with_epoch.Epoch(st->handle, st->epoch, st->epoch_flags);
    with_epoch.Append(b);
    o.bytes.assign(with_epoch.bytes().begin(), with_epoch.bytes().end());
    o.epoch_op = true;
  } else {
    o.bytes.assign(b.bytes().begin(), b.bytes().end());
  }
  o.pending_ops = st->taken.ops;
  o.pending_flushes = st->taken.flushes;
  o.barrier = barrier || st->taken.flushes > 0;
  o.writes = writes || st->taken.lo != UINT64_MAX;
  o.lo = std::min(lo, st->taken.lo);
  o.hi = std::max(hi, st->taken.hi);
  st->taken = RegionState::Taken{};
  o.done = std::move(done);
  st->queue.push_back(std::move(o));
  Pump(st);
}

// Sends the buffered ops as their own batch; their failure is reported by
// the next Flush/Drain (posted error).
void SendPending(const std::shared_ptr<RegionState>& st) {
  if (st->pending.empty()) return;
  RequestBuilder b = TakePending(st.get());
  Enqueue(st, std::move(b), false, UINT64_MAX, 0, nullptr);
}

}  // namespace

Status ClientImpl::ConnectTo(rpc::NetAddress addr, uint16_t flags, protocol::HelloReply* reply) {
  auto hello = protocol::EncodeHello(protocol::Hello{protocol::kVersion, flags});
  std::unique_ptr<client::SecureConnector> connector;
  if (secure_) {
    // Secure: the sec ClientHello rides after the rpm hello.
    COSMOS_ASSIGN_OR_RETURN(connector, client::SecureConnector::Start(*secure_));
    auto ch = connector->connect_payload();
    hello.insert(hello.end(), ch.begin(), ch.end());
  }
  // Shared with the session callback, which lives as long as the session.
  struct Handshake {
    bool finished = false;
    Status outcome;
    std::vector<std::byte> reply;
  };
  auto hs = std::make_shared<Handshake>();
  auto id = rpc_->CreateSession(
      addr, hello,
      [this, hs](rpc::SessionId sid, rpc::SessionEvent ev, const Status& s,
                 std::span<const std::byte> r) {
        switch (ev) {
          case rpc::SessionEvent::kConnected:
            hs->reply.assign(r.begin(), r.end());
            hs->outcome = Status::Ok();
            hs->finished = true;
            break;
          case rpc::SessionEvent::kConnectFailed:
            hs->outcome = s.ok() ? Status::Unavailable("connect failed") : s;
            hs->finished = true;
            break;
          case rpc::SessionEvent::kEnded:
            if (sid == session_) {
              session_up_ = false;
              session_status_ = s.ok() ? Status::Unavailable("session ended") : s;
            }
            break;
        }
      });
  if (!id.ok()) return id.status();
  session_ = *id;
  uint64_t timeout_ns = static_cast<uint64_t>(options_.timeout_ms) * 1'000'000;
  if (!rpc_->RunUntil([hs] { return hs->finished; }, timeout_ns)) {
    (void)rpc_->DestroySession(*id);
    return Status::Unavailable("no answer from cosmosd at " + addr.ToString());
  }
  if (!hs->outcome.ok()) {
    (void)rpc_->DestroySession(*id);
    return hs->outcome.WithContext("connect to " + addr.ToString());
  }
  std::vector<std::byte> reply_bytes = hs->reply;
  if (connector != nullptr) {
    const size_t n = std::min(reply_bytes.size(), protocol::kHelloReplySize);
    auto keys = connector->Finish(std::span<const std::byte>(reply_bytes).subspan(n));
    if (!keys.ok()) {
      (void)rpc_->DestroySession(*id);
      return keys.status().WithContext("secure connect to " + addr.ToString());
    }
    verify_key_ = keys->verify_key;
    key_wrap_key_ = keys->key_wrap_key;
    batch_channel_ = std::move(keys->batch_channel);
    batch_seq_ = 0;
    ++batch_generation_;
    COSMOS_RETURN_IF_ERROR(rpc_->SetSessionProtector(*id, std::move(keys->protector)));
    reply_bytes.resize(n);
  }
  auto r = protocol::DecodeHelloReply(reply_bytes);
  if (!r.ok()) {
    (void)rpc_->DestroySession(*id);
    return r.status();
  }
  *reply = *r;
  session_up_ = true;
  session_status_ = Status::Ok();
  return Status::Ok();
}

Status ClientImpl::Init() {
  COSMOS_ASSIGN_OR_RETURN(rpc::NetAddress addr, rpc::NetAddress::Parse(options_.server));
  if (options_.secure()) {
    COSMOS_ASSIGN_OR_RETURN(secure_, client::SecureClientConfig::Load(
                                         options_.platform_public_key_file,
                                         options_.measurement_file, options_.client_key_file));
  }
  rpc::UdpTransportOptions topts;
  topts.bind.v6 = addr.v6;  // an IPv6 node: bind [::]:0 (IPv4 any otherwise)
  COSMOS_ASSIGN_OR_RETURN(auto transport, rpc::OpenUdpTransport(topts));
  rpc::RpcOptions ropts;
  ropts.poll_mode = options_.busy_poll ? rpc::PollMode::kBusyPoll : rpc::PollMode::kAdaptive;
  ropts.adaptive_spin_ns = uint64_t{options_.idle_spin_us} * 1000;
  if (options_.heartbeat_interval_ms == 0 || options_.missed_heartbeats == 0 ||
      options_.max_dead_peer_ms == 0) {
    return Status::InvalidArgument(
        "heartbeat_interval_ms, missed_heartbeats and max_dead_peer_ms must be >= 1");
  }
  ropts.max_dead_peer_ns = uint64_t{options_.max_dead_peer_ms} * 1'000'000;
  ropts.heartbeat_interval_ns = uint64_t{options_.heartbeat_interval_ms} * 1'000'000;
  ropts.max_missed_heartbeats = options_.missed_heartbeats;
  ropts.mtu = options_.mtu;
  COSMOS_ASSIGN_OR_RETURN(rpc_, rpc::Rpc::Create(&nexus_, std::move(transport), ropts));
  protocol::HelloReply reply;
  COSMOS_RETURN_IF_ERROR(ConnectTo(addr, protocol::kHelloWantsAssignment, &reply));
  if (reply.worker_port != 0 && reply.worker_port != addr.port) {
    // The node assigned another worker: move there (one endpoint per worker).
    (void)rpc_->DestroySession(session_);
    rpc::NetAddress worker = addr;
    worker.port = reply.worker_port;
    COSMOS_RETURN_IF_ERROR(ConnectTo(worker, 0, &reply));
  }
  return Status::Ok();
}

void ClientImpl::SendBatch(std::span<const std::byte> bytes, BatchDone done,
                           const RegionState* sealed_for) {
  if (!session_up_) {
    done(session_status_.ok() ? Status::Unavailable("not connected") : session_status_, {});
    return;
  }
  // The continuation may outlive `done`'s captures only through shared state
  // they own, so moving `done` in is safe.
  auto shared_done = std::make_shared<BatchDone>(std::move(done));
  if (sealed_for != nullptr && batch_channel_ != nullptr) {
    SendSealedBatch(bytes, shared_done, *sealed_for);
    return;
  }
  Status s = rpc_->EnqueueRequest(
      session_, protocol::kRpmRequestType, bytes,
      [shared_done](const Status& status, std::span<const std::byte> response) {
        if (!status.ok()) {
          (*shared_done)(status, {});
          return;
        }
        std::vector<OpResult> results;
        Status parsed = protocol::ParseResponse(response, &results);
        if (!parsed.ok()) {
          (*shared_done)(parsed, {});
          return;
        }
        (*shared_done)(Status::Ok(), results);
      });
  if (!s.ok()) (*shared_done)(s, {});
}

void ClientImpl::SendSealedBatch(std::span<const std::byte> bytes,
                                 const std::shared_ptr<BatchDone>& done, const RegionState& st) {
  std::vector<protocol::Op> parsed;
  bool read_only = protocol::ParseRequest(bytes, &parsed).ok();
  for (const auto& op : parsed) read_only = read_only && op.opcode == protocol::Opcode::kRead;
  protocol::SealedRequestHeader h;
  h.flags = read_only ? protocol::kSealedFlagReadOnly : 0;
  h.handle = st.handle;
  h.seq = ++batch_seq_;
  h.name = st.info.name;
  if (st.epoch != 0) {
    // A replicated region: the node checks the epoch as an EPOCH op's, and
    // the enclave runs the batch only with replication at that epoch.
    h.flags |= protocol::kSealedFlagEpoch;
    h.epoch = st.epoch;
  }
  std::vector<std::byte> message = protocol::EncodeSealedRequestHeader(h);
  const size_t aad_size = message.size();
  message.resize(aad_size + bytes.size() + protocol::kSealedTagSize);
  if (!bytes.empty()) std::memcpy(message.data() + aad_size, bytes.data(), bytes.size());
  auto* m = reinterpret_cast<uint8_t*>(message.data());
  Status sealed = batch_channel_->Seal(
      h.seq, sec::ByteSpan(m, aad_size), sec::MutableByteSpan(m + aad_size, bytes.size()),
      sec::MutableByteSpan(m + message.size() - protocol::kSealedTagSize,
                           protocol::kSealedTagSize));
  if (!sealed.ok()) {
    (*done)(sealed, {});
    return;
  }
  // A reconnect installs a new batch channel: an answer sealed for the old
  // session cannot be opened any more and fails the batch.
  const uint64_t generation = batch_generation_;
  const uint64_t seq = h.seq;
  Status s = rpc_->EnqueueRequest(
      session_, protocol::kRpmSealedRequestType, message,
      [done, seq, generation, self = this](const Status& status,
                                           std::span<const std::byte> response) {
        if (!status.ok()) {
          (*done)(status, {});
          return;
        }
        auto view = protocol::ParseSealedResponse(response);
        if (!view.ok()) {
          (*done)(view.status(), {});
          return;
        }
        if (view->header.request_seq != seq) {
          (*done)(Status::IntegrityViolation("sealed response answers another batch"), {});
          return;
        }
        std::vector<OpResult> results;
        if ((view->header.flags & protocol::kSealedResponseHostError) != 0) {
          // Unauthenticated: the host may only ever make a batch fail.
          Status parsed = protocol::ParseResponse(view->body, &results);
          Status failed = parsed.ok() && results.size() == 1 ? protocol::ResultStatus(results[0])
                                                             : Status::Ok();
          if (failed.ok()) {
            failed = Status::IntegrityViolation("malformed host error for a sealed batch");
          }
          (*done)(failed, {});
          return;
        }
        if (self->batch_generation_ != generation || self->batch_channel_ == nullptr) {
          (*done)(Status::Unavailable("secure session replaced before the answer arrived"), {});
          return;
        }
        std::vector<std::byte> plain(view->body.begin(), view->body.end());
        auto* b = reinterpret_cast<uint8_t*>(plain.data());
        const auto* aad = reinterpret_cast<const uint8_t*>(view->associated_data.data());
        const auto* tag = reinterpret_cast<const uint8_t*>(view->tag.data());
        Status opened = self->batch_channel_->Open(
            view->header.response_seq, sec::ByteSpan(aad, view->associated_data.size()),
            sec::MutableByteSpan(b, plain.size()), sec::ByteSpan(tag, view->tag.size()));
        if (!opened.ok()) {
          (*done)(Status::IntegrityViolation("sealed response rejected: " + opened.ToString()), {});
          return;
        }
        Status parsed = protocol::ParseResponse(plain, &results);
        if (!parsed.ok()) {
          (*done)(parsed, {});
          return;
        }
        (*done)(Status::Ok(), results);
      });
  if (!s.ok()) (*done)(s, {});
}

Status ClientImpl::WaitUntil(const std::function<bool()>& done) {
  const uint64_t deadline =
      MonotonicNanos() + static_cast<uint64_t>(options_.timeout_ms) * 1'000'000;
  while (!done()) {
    if (MonotonicNanos() > deadline) {
      return Status::Timeout("no answer from " + options_.server + " within " +
                             std::to_string(options_.timeout_ms) + " ms");
    }
    rpc_->RunEventLoopOnce();
  }
  return Status::Ok();
}

Result<std::vector<std::byte>> ClientImpl::AdminCall(const RequestBuilder& b) {
  CheckThread();
  auto call = std::make_shared<std::pair<bool, Result<std::vector<std::byte>>>>(
      false, Status::Internal("pending"));
  SendBatch(b.bytes(), [call](const Status& s, std::span<const OpResult> results) {
    call->first = true;
    if (!s.ok()) {
      call->second = s;
    } else if (results.size() != 1) {
      call->second = Status::Corruption("rpm response: expected one result");
    } else if (results[0].code != StatusCode::kOk) {
      call->second = protocol::ResultStatus(results[0]);
    } else {
      call->second = std::vector<std::byte>(results[0].payload.begin(), results[0].payload.end());
    }
  });
  Status w = WaitUntil([&] { return call->first; });
  RunReady();
  if (!w.ok()) return w;
  return std::move(call->second);
}

Result<RegionInfo> ClientImpl::CreateRegion(const std::string& name, uint64_t size,
                                            const RegionOptions& options) {
  if (name.empty() || name.size() > protocol::kMaxNameLength) {
    return Status::InvalidArgument("region name must be 1..63 bytes");
  }
  if (options.pool.size() > protocol::kMaxNameLength)
    return Status::InvalidArgument("pool name too long");
  sec::Bytes wrapped;
  if (options.user_key != nullptr) {
    if (!options.secure) return Status::InvalidArgument("a user key is for secure regions only");
    COSMOS_ASSIGN_OR_RETURN(wrapped,
                            WrapUserKey(sec::UserKeyUse::kCreateRegion, name, *options.user_key));
  }
  RequestBuilder b;
  b.CreateRegion(name, size, options.secure, options.pool,
                 std::as_bytes(std::span<const uint8_t>(wrapped)));
  COSMOS_ASSIGN_OR_RETURN(auto payload, AdminCall(b));
  std::array<std::byte, protocol::kUserKeyReceiptSize> receipt{};
  COSMOS_ASSIGN_OR_RETURN(auto desc, options.user_key != nullptr
                                         ? protocol::DecodeRegionDescWithReceipt(payload, receipt)
                                         : protocol::DecodeRegionDesc(payload));
  if (options.user_key != nullptr) {
    COSMOS_RETURN_IF_ERROR(CheckUserKeyReceipt(sec::UserKeyUse::kCreateRegion, name,
                                               /*key_epoch=*/1, *options.user_key, receipt));
  }
  if (desc.secure != options.secure || desc.name != name) {
    return Status::IntegrityViolation(
        "node answered the creation of " + std::string(options.secure ? "secure" : "plain") +
        " region '" + name + "' with a " + (desc.secure ? "secure" : "plain") + " region '" +
        desc.name + "'");
  }
  return ToInfo(desc);
}

Result<std::vector<RegionInfo>> ClientImpl::ListRegions() {
  RequestBuilder b;
  b.ListRegions();
  COSMOS_ASSIGN_OR_RETURN(auto payload, AdminCall(b));
  COSMOS_ASSIGN_OR_RETURN(auto descs, protocol::DecodeRegionList(payload));
  std::vector<RegionInfo> out;
  for (const auto& d : descs) out.push_back(ToInfo(d));
  return out;
}

Status ClientImpl::DeleteRegion(const std::string& name) {
  COSMOS_RETURN_IF_ERROR(CheckRegionName(name));
  RequestBuilder b;
  b.DeleteRegion(name);
  return AdminCall(b).status();
}

Status ClientImpl::GrantAccess(const std::string& name, const ClientIdentity& who, uint8_t rights) {
  COSMOS_RETURN_IF_ERROR(CheckRegionName(name));
  if (rights > (kAccessRead | kAccessWrite | kAccessAdmin)) {
    return Status::InvalidArgument("rights are kAccessRead | kAccessWrite | kAccessAdmin bits");
  }
  RequestBuilder b;
  b.GrantAccess(name, who.public_key, rights);
  return AdminCall(b).status();
}

Result<AccessInfo> ClientImpl::ListAccess(const std::string& name) {
  COSMOS_RETURN_IF_ERROR(CheckRegionName(name));
  RequestBuilder b;
  b.ListAccess(name);
  COSMOS_ASSIGN_OR_RETURN(auto payload, AdminCall(b));
  COSMOS_ASSIGN_OR_RETURN(protocol::AccessInfo wire, protocol::DecodeAccessInfo(payload));
  AccessInfo info;
  info.key_epoch = wire.key_epoch;
  for (const auto& e : wire.entries) info.entries.push_back({HexOf(e.fingerprint), e.rights});
  return info;
}

Result<sec::Bytes> ClientImpl::WrapUserKey(sec::UserKeyUse use, const std::string& name,
                                           const UserKey& key) {
  if (!secure_) {
    return Status::FailedPrecondition(
        "user region keys need a secure connection (the key travels wrapped for the enclave)");
  }
  return sec::WrapUserKey(key_wrap_key_.span(), use, name, key.bytes);
}

Status ClientImpl::CheckUserKeyReceipt(sec::UserKeyUse use, const std::string& name,
                                       uint32_t key_epoch, const UserKey& key,
                                       std::span<const std::byte> receipt) {
  const sec::Digest want =
      sec::UserKeyReceipt(key_wrap_key_.span(), use, name, key_epoch, key.bytes);
  if (!sec::ConstantTimeEqual(sec::AsBytes(receipt), want)) {
    return Status::IntegrityViolation("node did not prove that region '" + name +
                                      "' uses the supplied key (receipt mismatch)");
  }
  return Status::Ok();
}

Result<uint32_t> ClientImpl::RotateKeyToUserKey(const std::string& name, const UserKey& user_key) {
  COSMOS_RETURN_IF_ERROR(CheckRegionName(name));
  COSMOS_ASSIGN_OR_RETURN(sec::Bytes wrapped,
                          WrapUserKey(sec::UserKeyUse::kRotateKey, name, user_key));
  RequestBuilder b;
  b.RotateKey(name, std::as_bytes(std::span<const uint8_t>(wrapped)));
  COSMOS_ASSIGN_OR_RETURN(auto payload, AdminCall(b));
  std::array<std::byte, protocol::kUserKeyReceiptSize> receipt{};
  COSMOS_ASSIGN_OR_RETURN(uint64_t epoch, protocol::DecodeU64WithReceipt(payload, receipt));
  if (epoch > UINT32_MAX) return Status::Corruption("rpm response: key epoch out of range");
  COSMOS_RETURN_IF_ERROR(CheckUserKeyReceipt(sec::UserKeyUse::kRotateKey, name,
                                             static_cast<uint32_t>(epoch), user_key, receipt));
  return static_cast<uint32_t>(epoch);
}

Result<uint32_t> ClientImpl::RotateKey(const std::string& name) {
  COSMOS_RETURN_IF_ERROR(CheckRegionName(name));
  RequestBuilder b;
  b.RotateKey(name);
  COSMOS_ASSIGN_OR_RETURN(auto payload, AdminCall(b));
  COSMOS_ASSIGN_OR_RETURN(uint64_t epoch, protocol::DecodeU64(payload));
  if (epoch > UINT32_MAX) return Status::Corruption("rpm response: key epoch out of range");
  return static_cast<uint32_t>(epoch);
}

size_t ClientImpl::Poll(uint32_t max_wait_us) {
  CheckThread();
  const uint64_t deadline = MonotonicNanos() + static_cast<uint64_t>(max_wait_us) * 1000;
  size_t n = 0;
  for (const auto& st : regions_) SendPending(st);
  do {
    rpc_->RunEventLoopOnce();
    n += RunReady();
  } while (n == 0 && MonotonicNanos() < deadline);
  return n;
}

// An open region; see include/cosmos/client.h for the contracts.
class RegionImpl final : public Region {
 public:
  RegionImpl(ClientImpl* client, const protocol::RegionDesc& d)
      : st_(std::make_shared<RegionState>()) {
    st_->client = client;
    st_->handle = d.handle;
    st_->info = ToInfo(d);
  }
  ~RegionImpl() override {
    // Posted writes still buffered are sent, and in-flight batches given the
    // call timeout to finish, so a dropped Region does not silently lose
    // what the node could still apply.
    SendPending();
    (void)st_->client->WaitUntil([this] { return st_->queue.empty() && st_->inflight.empty(); });
    st_->client->Forget(st_.get());
    st_->client->RunReady();
  }

  const RegionInfo& info() const override { return st_->info; }
  const std::shared_ptr<RegionState>& state() const { return st_; }

  Status Write(uint64_t offset, std::span<const std::byte> data) override {
    Check();
    COSMOS_RETURN_IF_ERROR(CheckRange(offset, data.size(), st_->info.size, "write"));
    while (!data.empty()) {
      size_t n = std::min(data.size(), kMaxWriteChunk);
      if (st_->pending.size() + protocol::kOpHeaderSize + n > st_->client->options().batch_bytes ||
          st_->pending.op_count() + 2 >= protocol::kMaxOpsPerBatch) {
        SendPending();
      }
      st_->pending.Write(st_->handle, offset, data.first(n));
      st_->pending_lo = std::min(st_->pending_lo, offset);
      st_->pending_hi = std::max(st_->pending_hi, offset + n);
      data = data.subspan(n);
      offset += n;
    }
    st_->client->RunReady();
    return Status::Ok();
  }

  Status Read(uint64_t offset, std::span<std::byte> out) override {
    Check();
    COSMOS_RETURN_IF_ERROR(CheckRange(offset, out.size(), st_->info.size, "read"));
    if (out.size() > kMaxReadChunk) {
      // Large reads go in pieces (see kMaxReadChunk).
      for (size_t done = 0; done < out.size(); done += kMaxReadChunk) {
        size_t n = std::min(out.size() - done, kMaxReadChunk);
        COSMOS_RETURN_IF_ERROR(Read(offset + done, out.subspan(done, n)));
      }
      return Status::Ok();
    }
    RequestBuilder b = TakePending();
    b.Read(st_->handle, offset, out.size());
    auto res = std::make_shared<std::vector<std::byte>>();
    Status s = RunSync(std::move(b), false, offset, offset + out.size(),
                       [res](std::span<const OpResult> r) {
                         res->assign(r.back().payload.begin(), r.back().payload.end());
                       });
    if (!s.ok()) return s;
    if (res->size() != out.size()) return Status::Corruption("rpm response: short read");
    if (!out.empty()) std::memcpy(out.data(), res->data(), out.size());
    return Status::Ok();
  }

  Status Flush(std::span<const Range> ranges) override {
    Check();
    COSMOS_RETURN_IF_ERROR(CheckRanges(ranges, "flush"));
    RequestBuilder b = TakePending();
    b.Flush(st_->handle, ToProto(ranges));
    Status s = RunSync(std::move(b), true, 0, 0, nullptr);
    return Combine(s);
  }

  Status AsyncFlush(std::span<const Range> ranges) override {
    Check();
    COSMOS_RETURN_IF_ERROR(CheckRanges(ranges, "flush"));
    // Buffered like a posted write: it leaves with the next operation of this
    // Region (so write + AsyncFlush + WriteAfterFlush is one round trip), or
    // at Drain / Client::Poll / when the buffer is full.
    if (st_->pending.op_count() + 2 >= protocol::kMaxOpsPerBatch) SendPending();
    st_->pending.Flush(st_->handle, ToProto(ranges));
    ++st_->pending_flushes;
    ++st_->async_flushes;
    if (st_->pending.size() >= st_->client->options().batch_bytes) SendPending();
    st_->client->RunReady();
    return Status::Ok();
  }

  Status Drain() override {
    Check();
    SendPending();
    auto st = st_;
    Status w = st_->client->WaitUntil(
        [st] { return st->async_flushes == 0 && st->queue.empty() && st->inflight.empty(); });
    st_->client->RunReady();
    if (!w.ok()) return w;
    Status e = st_->posted_error;
    st_->posted_error = Status::Ok();
    return e;
  }

  Status WriteAfterFlush(uint64_t offset, uint64_t value) override {
    Check();
    COSMOS_RETURN_IF_ERROR(CheckAtomic(offset, st_->info.size, "write_after_flush"));
    RequestBuilder b = TakePending();
    b.WriteAfterFlush(st_->handle, offset, value);
    return Combine(RunSync(std::move(b), true, 0, 0, nullptr));
  }

  Result<uint64_t> CompareAndSwap(uint64_t offset, uint64_t expected, uint64_t desired) override {
    Check();
    COSMOS_RETURN_IF_ERROR(CheckAtomic(offset, st_->info.size, "compare_and_swap"));
    RequestBuilder b = TakePending();
    b.CompareAndSwap(st_->handle, offset, expected, desired);
    return AtomicCall(std::move(b));
  }

  Result<uint64_t> FetchAdd(uint64_t offset, uint64_t delta) override {
    Check();
    COSMOS_RETURN_IF_ERROR(CheckAtomic(offset, st_->info.size, "fetch_add"));
    RequestBuilder b = TakePending();
    b.FetchAdd(st_->handle, offset, delta);
    return AtomicCall(std::move(b));
  }

  Status Verify(uint64_t offset, std::span<const std::byte> expected) override {
    Check();
    COSMOS_RETURN_IF_ERROR(CheckRange(offset, expected.size(), st_->info.size, "verify"));
    RequestBuilder b = TakePending();
    protocol::Range r{offset, expected.size()};
    b.Verify(st_->handle, std::span<const protocol::Range>(&r, 1));
    auto digest = std::make_shared<uint64_t>(0);
    auto shape = std::make_shared<Status>();
    Status s = RunSync(std::move(b), true, 0, 0, [digest, shape](std::span<const OpResult> res) {
      auto d = protocol::DecodeU64(res.back().payload);
      if (d.ok()) {
        *digest = *d;
      } else {
        *shape = d.status();
      }
    });
    COSMOS_RETURN_IF_ERROR(Combine(s));
    COSMOS_RETURN_IF_ERROR(*shape);
    Checksum64Builder local(protocol::kVerifySeed);
    local.Update(expected.data(), expected.size());
    const uint64_t want =
        st_->info.secure ? st_->client->SecureDigest(offset, expected) : local.Finish();
    if (want != *digest) {
      return Status::IntegrityViolation("verify: durable bytes of region '" + st_->info.name +
                                        "' at [" + std::to_string(offset) + ", +" +
                                        std::to_string(expected.size()) + ") differ from expected");
    }
    return Status::Ok();
  }

  void WriteAsync(uint64_t offset, std::span<const std::byte> data, Completion done) override {
    Check();
    Status c = CheckRange(offset, data.size(), st_->info.size, "write");
    if (c.ok() && data.size() > kMaxWriteChunk) {
      Completion part = Split(data.size(), kMaxWriteChunk, std::move(done));
      for (size_t at = 0; at < data.size(); at += kMaxWriteChunk) {
        WriteAsync(offset + at, data.subspan(at, std::min(kMaxWriteChunk, data.size() - at)), part);
      }
      return;
    }
    if (c.ok()) c = Room();
    if (!c.ok()) {
      st_->client->Defer(std::move(done), c);
      return;
    }
    RequestBuilder b = TakePending();
    b.Write(st_->handle, offset, data);
    auto client = st_->client;
    Enqueue(
        std::move(b), false, offset, offset + data.size(),
        [client, done = std::move(done)](const Status& s, std::span<const OpResult> r) {
          client->Defer(done, s.ok() ? FirstError(r) : s);
        },
        true);
  }

  void ReadAsync(uint64_t offset, std::span<std::byte> out, Completion done) override {
    Check();
    Status c = CheckRange(offset, out.size(), st_->info.size, "read");
    if (c.ok() && out.size() > kMaxReadChunk) {
      Completion part = Split(out.size(), kMaxReadChunk, std::move(done));
      for (size_t at = 0; at < out.size(); at += kMaxReadChunk) {
        ReadAsync(offset + at, out.subspan(at, std::min(kMaxReadChunk, out.size() - at)), part);
      }
      return;
    }
    if (c.ok()) c = Room();
    if (!c.ok()) {
      st_->client->Defer(std::move(done), c);
      return;
    }
    RequestBuilder b = TakePending();
    b.Read(st_->handle, offset, out.size());
    auto client = st_->client;
    Enqueue(std::move(b), false, offset, offset + out.size(),
            [client, out, done = std::move(done)](const Status& s, std::span<const OpResult> r) {
              Status e = s.ok() ? FirstError(r) : s;
              if (e.ok()) {
                if (r.back().payload.size() != out.size()) {
                  e = Status::Corruption("rpm response: short read");
                } else if (!out.empty()) {
                  std::memcpy(out.data(), r.back().payload.data(), out.size());
                }
              }
              client->Defer(done, e);
            });
  }

  void FlushAsync(std::span<const Range> ranges, Completion done) override {
    Check();
    Status c = CheckRanges(ranges, "flush");
    if (c.ok()) c = Room();
    if (!c.ok()) {
      st_->client->Defer(std::move(done), c);
      return;
    }
    RequestBuilder b = TakePending();
    b.Flush(st_->handle, ToProto(ranges));
    auto client = st_->client;
    Enqueue(std::move(b), true, 0, 0,
            [client, done = std::move(done)](const Status& s, std::span<const OpResult> r) {
              client->Defer(done, s.ok() ? FirstError(r) : s);
            });
  }

 private:
  void Check() const { st_->client->CheckThread(); }

  // A completion for the pieces of a split transfer: runs `done` once, after
  // the last piece, with the first error.
  static Completion Split(size_t total, size_t chunk, Completion done) {
    struct Join {
      size_t left;
      Status first;
      Completion done;
    };
    auto j =
        std::make_shared<Join>(Join{(total + chunk - 1) / chunk, Status::Ok(), std::move(done)});
    return [j](Status s) {
      if (!s.ok() && j->first.ok()) j->first = s;
      if (--j->left == 0) j->done(j->first);
    };
  }

  Status Room() const {
    if (st_->queue.size() + st_->inflight.size() >= st_->client->options().max_inflight) {
      return Status::ResourceExhausted("max_inflight operations outstanding on region '" +
                                       st_->info.name + "'");
    }
    return Status::Ok();
  }

  Status CheckRanges(std::span<const Range> ranges, const char* what) const {
    if (ranges.size() > protocol::kMaxRangesPerOp) {
      return Status::InvalidArgument("at most 256 ranges per call");
    }
    for (const auto& r : ranges)
      COSMOS_RETURN_IF_ERROR(CheckRange(r.offset, r.length, st_->info.size, what));
    return Status::Ok();
  }

  static std::vector<protocol::Range> ToProto(std::span<const Range> ranges) {
    std::vector<protocol::Range> out;
    for (const auto& r : ranges) out.push_back({r.offset, r.length});
    return out;
  }

  RequestBuilder TakePending() { return cosmos::TakePending(st_.get()); }
  void SendPending() { cosmos::SendPending(st_); }
  void Enqueue(RequestBuilder b, bool barrier, uint64_t lo, uint64_t hi, BatchDone done,
               bool writes = false) {
    cosmos::Enqueue(st_, std::move(b), barrier, lo, hi, std::move(done), writes);
  }

  // Sends `b` and waits for it. `on_ok` sees the results when every op
  // succeeded. Returns the transport error or the first failed op.
  Status RunSync(RequestBuilder b, bool barrier, uint64_t lo, uint64_t hi,
                 std::function<void(std::span<const OpResult>)> on_ok) {
    struct Call {
      bool done = false;
      Status status;
    };
    auto call = std::make_shared<Call>();
    Enqueue(std::move(b), barrier, lo, hi,
            [call, on_ok = std::move(on_ok)](const Status& s, std::span<const OpResult> r) {
              call->done = true;
              call->status = s.ok() ? FirstError(r) : s;
              if (call->status.ok() && r.empty())
                call->status = Status::Corruption("rpm response: no results");
              if (call->status.ok() && on_ok) on_ok(r);
            });
    Status w = st_->client->WaitUntil([call] { return call->done; });
    st_->client->RunReady();
    return w.ok() ? call->status : w;
  }

  // Reports `s`, or else an earlier posted-write failure (then clears it).
  Status Combine(Status s) {
    if (st_->posted_error.ok()) return s;
    Status e = st_->posted_error;  // the root cause: later ops were cancelled by it
    st_->posted_error = Status::Ok();
    return e;
  }

  Result<uint64_t> AtomicCall(RequestBuilder b) {
    auto value = std::make_shared<Result<uint64_t>>(Status::Internal("pending"));
    Status s = RunSync(std::move(b), true, 0, 0, [value](std::span<const OpResult> r) {
      *value = protocol::DecodeU64(r.back().payload);
    });
    COSMOS_RETURN_IF_ERROR(Combine(s));
    return *value;
  }

  std::shared_ptr<RegionState> st_;
};

Result<std::unique_ptr<Region>> ClientImpl::OpenRegion(const std::string& name,
                                                       const OpenOptions& options) {
  if (name.empty() || name.size() > protocol::kMaxNameLength) {
    return Status::InvalidArgument("region name must be 1..63 bytes");
  }
  RequestBuilder b;
  b.OpenRegion(name);
  COSMOS_ASSIGN_OR_RETURN(auto payload, AdminCall(b));
  COSMOS_ASSIGN_OR_RETURN(auto desc, protocol::DecodeRegionDesc(payload));
  if (desc.name != name) {
    return Status::IntegrityViolation("node answered an open of region '" + name +
                                      "' with region '" + desc.name + "'");
  }
  if (secure_ && !desc.secure && !options.allow_plain) {
    return Status::PermissionDenied(
        "region '" + name +
        "' is not a secure region; a secure connection refuses to use it in clear (its secure "
        "flag may have been cleared by the node's host). Open it with allow_plain to use a "
        "plain region on purpose");
  }
  auto region = std::make_unique<RegionImpl>(this, desc);
  Remember(region->state());
  return std::unique_ptr<Region>(std::move(region));
}

Result<std::unique_ptr<Region>> client::OpenRegionAtEpoch(Client& client, const std::string& name,
                                                          uint64_t epoch, bool replica) {
  auto* impl = dynamic_cast<ClientImpl*>(&client);
  if (impl == nullptr) return Status::InvalidArgument("not a single-node client");
  if (epoch == 0) return Status::InvalidArgument("epochs start at 1");
  COSMOS_ASSIGN_OR_RETURN(auto region, impl->OpenRegion(name, OpenOptions{}));
  auto* ri = static_cast<RegionImpl*>(region.get());
  ri->state()->epoch = epoch;
  ri->state()->epoch_flags = replica ? protocol::kEpochFlagReplica : 0;
  ri->state()->info.epoch = epoch;
  return region;
}

Result<std::unique_ptr<Region>> client::OpenRegionForResync(Client& client, const std::string& name,
                                                            uint64_t epoch) {
  COSMOS_ASSIGN_OR_RETURN(auto region, OpenRegionAtEpoch(client, name, epoch, true));
  static_cast<RegionImpl*>(region.get())->state()->epoch_flags =
      protocol::kEpochFlagReplica | protocol::kEpochFlagResync;
  return region;
}

Result<ClientIdentity> ClientIdentity::FromPublicKeyFile(const std::string& path) {
  COSMOS_ASSIGN_OR_RETURN(sec::Ed25519PublicKey key,
                          sec::LoadPublicKey(path, sec::KeyKind::kClientPublic));
  ClientIdentity id;
  static_assert(sizeof(key) == sizeof(id.public_key));
  std::memcpy(id.public_key.data(), key.data(), key.size());
  return id;
}

std::string ClientIdentity::Fingerprint() const {
  sec::Ed25519PublicKey key;
  std::memcpy(key.data(), public_key.data(), key.size());
  const sec::IdentityFingerprint f = sec::FingerprintOf(key);
  return HexOf(std::as_bytes(std::span(f)));
}

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (options.max_inflight == 0) return Status::InvalidArgument("max_inflight must be > 0");
  if (options.batch_bytes < 64 || options.batch_bytes > (4u << 20)) {
    return Status::InvalidArgument("batch_bytes must be 64 B .. 4 MiB");
  }
  if (!options.cluster.empty()) return client::ConnectCluster(options);
  auto c = std::make_unique<ClientImpl>(options);
  COSMOS_RETURN_IF_ERROR(c->Init());
  return std::unique_ptr<Client>(std::move(c));
}

Status client::SendRawRequest(Client& client, uint16_t type, std::span<const std::byte> payload,
                              RawDone done) {
  auto* impl = dynamic_cast<ClientImpl*>(&client);
  if (impl == nullptr) return Status::InvalidArgument("not a single-node client");
  return impl->SendRaw(type, payload, std::move(done));
}

Status client::WaitForRaw(Client& client, const std::function<bool()>& done) {
  auto* impl = dynamic_cast<ClientImpl*>(&client);
  if (impl == nullptr) return Status::InvalidArgument("not a single-node client");
  impl->CheckThread();
  return impl->WaitUntil(done);
}

}  // namespace cosmos
