// Server implementation: workers, batch execution, deferral to flushers, QoS.
#include "server/server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/check.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/endian.h"
#include "common/log.h"
#include "protocol/sealed_batch.h"
#include "rpc/rpc.h"
#include "rpc/transport_udp.h"
#include "server/qos.h"

namespace cosmos::server {

using protocol::Op;
using protocol::Opcode;

namespace {

// Handle of the first op of a (not yet validated) batch, for per-region QoS.
uint64_t LoadFirstHandle(std::span<const std::byte> request) {
  return LoadLE<uint64_t>(request.data() + protocol::kBatchHeaderSize + 8);
}

using protocol::CheckOpAtomic;
using protocol::CheckOpRange;

// True if executing `op` may block the thread (sync on a page-cache pool, or
// an admin change that formats/persists pool metadata). Such ops run on a
// flusher; the rest of their batch runs there too, in order, so per-region
// ordering (docs/semantics.md section 3) holds. Secure-region ops that may
// wait for the trusted counter: see TriedWithoutCounterWait.
bool MayBlock(const Op& op, RegionTable& table) {
  switch (op.opcode) {
    case Opcode::kCreateRegion:
    case Opcode::kDeleteRegion:
      return true;
    case Opcode::kOpenRegion:
    case Opcode::kListRegions:
    case Opcode::kGrantAccess:
    case Opcode::kListAccess:
    case Opcode::kRotateKey:
      // Authorizing a secure region opens it in the enclave on first use
      // (recovery, freshness check, a new incarnation: counter waits); a
      // grant or a key rotation then commits and waits for the counter.
      return table.secure_engine() != nullptr;
    case Opcode::kFlush:
    case Opcode::kWriteAfterFlush:
    case Opcode::kVerify:
    case Opcode::kCompareAndSwap:
    case Opcode::kFetchAdd: {
      auto ref = table.Lookup(op.handle);
      return ref.ok() && (*ref)->durability() == Durability::kPage;
    }
    case Opcode::kEpoch:
      // A client's batch on a replicated region forwards to the backups (a
      // replication thread). A primary's forwarded batch is tried on the
      // worker (ExecuteEpoch without waiting): only a placement the node does
      // not know yet (etcd) sends it to a flusher.
      return (op.flags & protocol::kEpochFlagReplica) == 0;
    default:
      return false;
  }
}

// True for ops on a secure region that can wait for the trusted counter
// (a flush, or a write whose early commit finds the counter busy). The worker
// runs them with WaitMode::kNoWait: if they would wait they stop with
// kWouldBlock and the batch moves to a secure flusher at that op, which
// repeats it (repeating is safe: a commit already made stays, a write
// re-applies the same bytes, and an atomic is repeated with the same attempt
// id, AttemptBase, which the enclave never applies twice).
bool TriedWithoutCounterWait(const Op& op, RegionTable& table) {
  switch (op.opcode) {
    case Opcode::kWrite:
    case Opcode::kFlush:
    case Opcode::kWriteAfterFlush:
    case Opcode::kCompareAndSwap:
    case Opcode::kFetchAdd:
    case Opcode::kVerify: {
      auto ref = table.Lookup(op.handle);
      return ref.ok() && (*ref)->secure();
    }
    default:
      return false;
  }
}

// Ops that administer a secure region by name; deferred to the secure
// flushers (they wait for the trusted counter), not the page-sync ones.
// A plain batch holding a WRITE and a FLUSH: the client's write+flush (the
// write_flush_duration metric).
bool IsWriteFlush(std::span<const Op> ops) {
  bool write = false, flush = false;
  for (const Op& op : ops) {
    write = write || op.opcode == Opcode::kWrite;
    flush = flush || op.opcode == Opcode::kFlush;
  }
  return write && flush;
}

bool IsSecureAdmin(Opcode opcode) {
  return opcode == Opcode::kGrantAccess || opcode == Opcode::kListAccess ||
         opcode == Opcode::kRotateKey;
}

// Enclave attempt ids (sec::Enclave::RegionCompareAndSwap): every batch a
// worker admits gets a base unique on this node run (its own count of
// admitted batches, and the worker index), and op `index` of the batch the id
// base + index + 1. The flusher repeating a deferred op uses the same id; no
// other op of any session has it, so even a deferred batch whose session
// number was reused by another client cannot collide with that client's ops.
uint64_t AttemptBase(uint64_t admitted, uint32_t worker) {
  return (admitted * 64 + worker) * protocol::kMaxOpsPerBatch;  // workers <= 64
}

}  // namespace

// A batch moved off the worker: owns a copy of the request bytes.
struct DeferredBatch {
  uint32_t worker = 0;
  rpc::RequestHandle handle;
  Requester requester;  // as admitted; never re-resolved from handle.session
  std::vector<std::byte> request;
  size_t resume_at = 0;       // index of the first op not executed yet
  uint64_t attempt_base = 0;  // AttemptBase of the batch
  protocol::ResponseBuilder response;
  // MonotonicNanos when the worker started a plain write+flush batch (the
  // write_flush_duration metric); 0 for other batches.
  uint64_t write_flush_started_ns = 0;
  // A sealed batch (protocol/sealed_batch.h): `request` is the whole message,
  // run by the enclave in one call; its answer goes to `sealed_response`.
  bool sealed = false;
  std::vector<std::byte> sealed_response;
  // A replica batch of a secure region from its primary (kReplicaBatchRequestType):
  // `request` is the message; `checked`: its epoch passed CheckReplica already.
  bool replica = false;
  bool checked = false;
};

struct QueuedBatch {  // a batch waiting for QoS tokens on its worker
  rpc::RequestHandle handle;
  uint16_t type = protocol::kRpmRequestType;
  std::vector<std::byte> request;
  uint64_t first_handle = 0;
  size_t ops = 0;
};

// Deferred batches waiting for a thread, and the threads serving them.
struct DeferQueue {
  std::mutex mu;
  std::condition_variable cv;
  FairQueue<uint64_t, std::unique_ptr<DeferredBatch>> queue;  // key: worker<<32|session
  bool stop = false;
  std::vector<std::thread> threads;
};

struct Worker {
  uint32_t index = 0;
  uint16_t port = 0;
  rpc::Rpc* rpc = nullptr;  // valid while the worker thread runs
  std::thread thread;
  std::vector<Op> ops;                 // scratch
  protocol::ResponseBuilder response;  // scratch
  // QoS state, worker-local. `qos` starts as ServerOptions::qos and changes
  // only on this worker's thread (SetQosLimits posts the change here).
  QosLimits qos;
  std::unordered_map<rpc::SessionId, std::pair<TokenBucket, TokenBucket>> session_buckets;
  std::unordered_map<uint64_t, std::pair<TokenBucket, TokenBucket>> region_buckets;
  FairQueue<rpc::SessionId, QueuedBatch> qos_queue;
  uint64_t batches_admitted = 0;  // worker-local; feeds AttemptBase
  // The batch RunBatch runs: its write_flush_started_ns (copied by Defer).
  uint64_t write_flush_started_ns = 0;
};

struct Server::Impl {
  ServerOptions options;
  std::unique_ptr<RegionTable> table;
  // (pool file path, "pool 'NAME'") of every served pool: what an error sent
  // to a client says instead of the node's file paths (ClientError).
  std::vector<std::pair<std::string, std::string>> pool_paths;

  // `s` as a client may see it: the node's pool file paths replaced by the
  // pool names (the full message stays in the node's log).
  Status ClientError(const Status& s) const {
    std::string m = s.message();
    bool changed = false;
    for (const auto& [path, name] : pool_paths) {
      if (path.empty()) continue;
      for (size_t at = m.find(path); at != std::string::npos; at = m.find(path, at + name.size())) {
        m.replace(at, path.size(), name);
        changed = true;
      }
    }
    if (!changed) return s;
    COSMOS_LOG_WARN("server: op failed: {}", s.ToString());
    return Status(s.code(), std::move(m));
  }
  rpc::Nexus nexus;
  std::vector<std::unique_ptr<Worker>> workers;

  std::atomic<bool> accepting{true};
  std::atomic<bool> stop_workers{false};
  std::atomic<uint32_t> next_assignment{0};
  bool stopped = false;
  std::mutex stop_mu;

  // Page syncs and admin changes go to `flush`; batches whose first blocking
  // op is on a secure region go to `secure` (its threads mostly sleep in the
  // trusted counter's wait, so there are more of them: concurrent flushes of
  // a region can then share one counter value).
  DeferQueue flush, secure;
  // A primary's batches on replicated regions (options.replication): each
  // waits for the backups, so they never hold a flusher.
  DeferQueue replicate;

  std::atomic<uint64_t> batches{0}, ops{0}, bytes_written{0}, deferred{0}, rejected{0}, lost{0},
      qos_delayed{0};
  ServerMetrics metrics;

  static thread_local Worker* current_worker;

  // Executes ops[from..] of the batch with AttemptBase `attempt_base` into
  // `out`. With `worker_thread`, stops before the first op that may block and
  // returns its index; otherwise runs to the end.
  size_t Execute(Requester requester, uint64_t attempt_base, std::span<const Op> ops, size_t from,
                 protocol::ResponseBuilder* out, bool worker_thread);
  // `attempt`: the op's enclave attempt id (atomics on secure regions).
  // `wait`: whether a secure-region op may block for the trusted counter
  // (kNoWait: it returns kWouldBlock instead, having added nothing to `out`).
  Status ExecuteOne(Requester requester, const Op& op, uint64_t attempt,
                    protocol::ResponseBuilder* out, WaitMode wait);
  // GRANT_ACCESS, LIST_ACCESS, ROTATE_KEY: a secure region's admin calls.
  Status ExecuteSecureAdmin(Requester requester, const Op& op, protocol::ResponseBuilder* out);
  // Admin access to a region: Ok for a plain region. For a secure one, a
  // session without a secure handshake gets NotFound (the answer for an
  // absent name: it must not learn the region exists); a secure session
  // needs `rights` (kSecureRight*) in the region's sealed access list.
  // On success a secure region's desc.size is the enclave's authenticated
  // plaintext size.
  Status AuthorizeAdmin(Requester requester, protocol::RegionDesc& desc, uint8_t rights);
  void HandleRequest(rpc::Rpc& rpc, const rpc::IncomingRequest& req);
  void RunBatch(Worker& w, const rpc::RequestHandle& handle, std::span<const std::byte> bytes);
  // A sealed batch: the host reads only its clear header, routes it (a
  // read-only one runs here, any other on a secure flusher: it may wait for
  // the trusted counter) and hands the whole message to the enclave.
  void RunSealedBatch(Worker& w, const rpc::RequestHandle& handle,
                      std::span<const std::byte> bytes);
  // The enclave's answer to a sealed batch, or a host-error response. A
  // batch carrying an epoch (kSealedFlagEpoch, a replicated region) goes
  // through the replication hook to every backup (on a `replicate` thread).
  std::vector<std::byte> ExecuteSealed(const Requester& requester,
                                       std::span<const std::byte> bytes);
  // Secure replicated regions, backup side: a peer enclave's hello (answered
  // on the worker) and a primary's replica batch (epoch checked on the
  // worker when the node knows it, applied on a secure flusher).
  void HandlePeerHello(rpc::Rpc& rpc, const rpc::IncomingRequest& req);
  void HandleReplicaBatch(Worker& w, const rpc::IncomingRequest& req);
  // The outcome of a replica batch (one result) for its primary.
  std::vector<std::byte> ApplyReplica(const DeferredBatch& d);
  void PumpQos(Worker& w);
  void Defer(Worker& w, const rpc::RequestHandle& handle, const Requester& requester,
             std::span<const std::byte> bytes, size_t resume_at, uint64_t attempt_base,
             protocol::ResponseBuilder&& partial, DeferQueue* queue);
  void FlusherLoop(DeferQueue* q);
  // Replicated regions: Ok when the batch may run. A batch that starts with
  // an EPOCH op needs a cluster node and only data ops on that op's region;
  // a batch without one may not touch a replicated region.
  Status AdmitReplication(std::span<const Op> ops);
  // EPOCH op of a batch a primary forwarded (kEpochFlagReplica). kNoWait:
  // WouldBlock (nothing added to `out`) when the check needs etcd.
  Status ExecuteEpoch(const Op& op, protocol::ResponseBuilder* out, WaitMode wait);
  // A deferred client batch on a replicated region, on a `replicate` thread.
  void RunPrimary(DeferredBatch& d, std::span<const Op> list);
  void WorkerLoop(Worker* w, std::promise<Status>* ready);
  rpc::ConnectDecision OnConnect(const rpc::ConnectRequestInfo& info);
};

thread_local Worker* Server::Impl::current_worker = nullptr;

Status Server::Impl::AuthorizeAdmin(Requester requester, protocol::RegionDesc& desc,
                                    uint8_t rights) {
  if (!desc.secure) return Status::Ok();
  SecureRegionEngine* engine = table->secure_engine();
  if (engine == nullptr || !engine->IsSecureSession(requester)) {
    return Status::NotFound(RegionTable::NotFoundMessage(desc.name));
  }
  COSMOS_ASSIGN_OR_RETURN(RegionRef ref, table->Lookup(desc.handle));
  COSMOS_RETURN_IF_ERROR(engine->Authorize(requester, *ref.get(), rights));
  // Report the size the enclave authenticated, not the host's table entry.
  COSMOS_ASSIGN_OR_RETURN(desc.size, engine->AuthenticatedSize(*ref.get()));
  return Status::Ok();
}

Status Server::Impl::ExecuteSecureAdmin(Requester requester, const Op& op,
                                        protocol::ResponseBuilder* out) {
  std::string_view name(reinterpret_cast<const char*>(op.payload.data()), op.payload.size());
  std::span<const std::byte> identity;
  uint8_t rights = 0;
  UserKeyTransfer user_key;
  if (op.opcode == Opcode::kGrantAccess) {
    COSMOS_RETURN_IF_ERROR(protocol::DecodeGrantPayload(op.payload, &name, &identity, &rights));
  } else if (op.opcode == Opcode::kRotateKey) {
    COSMOS_RETURN_IF_ERROR(
        protocol::DecodeRotatePayload(op.payload, op.flags, &name, &user_key.wrapped));
  }
  COSMOS_ASSIGN_OR_RETURN(auto desc, table->Open(name));
  // A plain session gets NotFound (as for an absent name), a secure one
  // without the admin right PermissionDenied; the enclave checks again.
  COSMOS_RETURN_IF_ERROR(AuthorizeAdmin(requester, desc, kSecureRightAdmin));
  if (!desc.secure) {
    return Status::FailedPrecondition("region '" + desc.name +
                                      "' is not secure: access lists and keys belong to secure "
                                      "regions");
  }
  COSMOS_ASSIGN_OR_RETURN(RegionRef ref, table->Lookup(desc.handle));
  SecureRegionEngine* engine = table->secure_engine();
  switch (op.opcode) {
    case Opcode::kGrantAccess:
      COSMOS_RETURN_IF_ERROR(engine->Grant(requester, *ref.get(), identity, rights));
      COSMOS_LOG_INFO("server: access list of secure region '{}' changed (rights {})", desc.name,
                      rights);
      out->AddOk();
      return Status::Ok();
    case Opcode::kListAccess: {
      COSMOS_ASSIGN_OR_RETURN(protocol::AccessInfo info, engine->ListAccess(requester, *ref.get()));
      out->AddAccessInfo(info);
      return Status::Ok();
    }
    case Opcode::kRotateKey: {
      const bool with_user_key = !user_key.wrapped.empty();
      COSMOS_ASSIGN_OR_RETURN(
          uint32_t epoch,
          engine->RotateKey(requester, *ref.get(), with_user_key ? &user_key : nullptr));
      COSMOS_LOG_INFO("server: secure region '{}' re-encrypted under key epoch {}{}", desc.name,
                      epoch, with_user_key ? " (user-supplied key)" : "");
      if (with_user_key) {
        out->AddU64WithReceipt(epoch, user_key.receipt);
      } else {
        out->AddU64(epoch);
      }
      return Status::Ok();
    }
    default:
      return Status::InvalidArgument("unexpected opcode");
  }
}

Status Server::Impl::ExecuteOne(Requester requester, const Op& op, uint64_t attempt,
                                protocol::ResponseBuilder* out, WaitMode wait) {
  switch (op.opcode) {
    case Opcode::kCreateRegion: {
      std::string_view name, pool;
      UserKeyTransfer user_key;
      COSMOS_RETURN_IF_ERROR(
          protocol::DecodeCreatePayload(op.payload, op.flags, &name, &pool, &user_key.wrapped));
      const bool with_user_key = !user_key.wrapped.empty();
      COSMOS_ASSIGN_OR_RETURN(
          auto desc,
          table->Create(name, op.offset, (op.flags & protocol::kCreateFlagSecure) != 0, pool));
      if (desc.secure) {
        COSMOS_ASSIGN_OR_RETURN(RegionRef created, table->Lookup(desc.handle));
        Status formatted = table->secure_engine()->Format(requester, *created.get(),
                                                          with_user_key ? &user_key : nullptr);
        if (!formatted.ok()) {
          created = RegionRef();
          (void)table->Delete(desc.name);
          return formatted;
        }
      }
      std::string pool_name = std::string(pool);
      if (auto created = table->Lookup(desc.handle); created.ok())
        pool_name = (*created)->pool_name;
      COSMOS_LOG_INFO("server: created {}region '{}' ({} bytes, {}) in pool '{}'",
                      desc.secure ? "secure " : "", desc.name, desc.size,
                      pmem::DurabilityName(static_cast<pmem::DurabilityLevel>(desc.durability)),
                      pool_name);
      out->AddRegionDesc(desc, with_user_key ? std::span<const std::byte>(user_key.receipt)
                                             : std::span<const std::byte>());
      return Status::Ok();
    }
    case Opcode::kOpenRegion: {
      COSMOS_ASSIGN_OR_RETURN(
          auto desc, table->Open(std::string_view(reinterpret_cast<const char*>(op.payload.data()),
                                                  op.payload.size())));
      COSMOS_RETURN_IF_ERROR(AuthorizeAdmin(requester, desc, kSecureRightAny));
      out->AddRegionDesc(desc);
      return Status::Ok();
    }
    case Opcode::kListRegions: {
      // A session sees plain regions and the secure regions it holds a right
      // on; the rest stay invisible (names included).
      std::vector<protocol::RegionDesc> visible;
      for (auto& desc : table->List()) {
        Status s = AuthorizeAdmin(requester, desc, kSecureRightAny);
        if (s.ok()) {
          visible.push_back(std::move(desc));
        } else if (s.code() == StatusCode::kIntegrityViolation) {
          COSMOS_LOG_WARN("server: secure region '{}' hidden from a listing: {}", desc.name,
                          s.ToString());
        }
      }
      out->AddRegionList(visible);
      return Status::Ok();
    }
    case Opcode::kDeleteRegion: {
      std::string_view name(reinterpret_cast<const char*>(op.payload.data()), op.payload.size());
      COSMOS_ASSIGN_OR_RETURN(auto desc, table->Open(name));
      // Deleting a secure region takes its admin right (checked in the
      // enclave); a plain session cannot even see it. The table closes it in
      // the enclave before it frees the pool region.
      COSMOS_RETURN_IF_ERROR(AuthorizeAdmin(requester, desc, kSecureRightAdmin));
      COSMOS_RETURN_IF_ERROR(table->Delete(name));
      COSMOS_LOG_INFO("server: deleted region '{}'", name);
      out->AddOk();
      return Status::Ok();
    }
    case Opcode::kGrantAccess:
    case Opcode::kListAccess:
    case Opcode::kRotateKey:
      return ExecuteSecureAdmin(requester, op, out);
    case Opcode::kEpoch:
      return ExecuteEpoch(op, out, wait);
    case Opcode::kStat: {
      protocol::NodeStat s;
      s.workers = static_cast<uint32_t>(workers.size());
      s.pools = static_cast<uint32_t>(table->pool_count());
      s.regions = table->region_count();
      s.batches = batches.load();
      s.ops = ops.load();
      s.bytes_written = bytes_written.load();
      out->AddNodeStat(s);
      return Status::Ok();
    }
    default:
      break;
  }
  COSMOS_ASSIGN_OR_RETURN(RegionRef ref, table->Lookup(op.handle));
  const pmem::Region& region = ref->region;
  SecureRegionEngine* engine = ref->secure() ? table->secure_engine() : nullptr;
  if (ref->secure() && engine == nullptr) {
    return Status::FailedPrecondition("secure region without a security engine");
  }
  const uint64_t size = engine != nullptr ? engine->LogicalSize(*ref.get()) : region.size();
  switch (op.opcode) {
    case Opcode::kWrite: {
      COSMOS_RETURN_IF_ERROR(CheckOpRange(op.offset, op.payload.size(), size, "write"));
      if (engine != nullptr) {
        COSMOS_RETURN_IF_ERROR(engine->Write(requester, *ref.get(), op.offset, op.payload, wait));
      } else if (!op.payload.empty()) {
        std::memcpy(region.data() + op.offset, op.payload.data(), op.payload.size());
      }
      bytes_written.fetch_add(op.payload.size(), std::memory_order_relaxed);
      out->AddOk();
      return Status::Ok();
    }
    case Opcode::kRead: {
      uint64_t len = protocol::PayloadU64(op.payload, 0);
      COSMOS_RETURN_IF_ERROR(CheckOpRange(op.offset, len, size, "read"));
      if (len > options.max_read_bytes ||
          out->bytes().size() + len > protocol::kMaxMessageLength - 1024) {
        return Status::InvalidArgument("read of " + std::to_string(len) +
                                       " bytes exceeds the node's response limit");
      }
      if (engine != nullptr) {
        // Decrypt into per-thread scratch first: a refused or tampered read
        // must leave no half-built result behind.
        thread_local std::vector<std::byte> plain;
        plain.resize(len);
        COSMOS_RETURN_IF_ERROR(engine->Read(requester, *ref.get(), op.offset, plain));
        std::byte* dst = out->Add(StatusCode::kOk, len);
        if (len > 0) std::memcpy(dst, plain.data(), len);
        metrics.bytes_read.Add(len);
        return Status::Ok();
      }
      std::byte* dst = out->Add(StatusCode::kOk, len);
      if (len > 0) std::memcpy(dst, region.data() + op.offset, len);
      metrics.bytes_read.Add(len);
      return Status::Ok();
    }
    case Opcode::kFlush:
    case Opcode::kVerify: {
      auto ranges = protocol::DecodeRanges(op.payload);
      for (const auto& r : ranges) {
        COSMOS_RETURN_IF_ERROR(CheckOpRange(r.offset, r.length, size,
                                            op.opcode == Opcode::kFlush ? "flush" : "verify"));
      }
      if (engine != nullptr) {
        // Verify persists first, as a flush does, when the client may write;
        // a reader (read right only) may not commit the writers' pending
        // data and gets the digest of the durable state (the enclave checks
        // the read right).
        const bool persist = op.opcode == Opcode::kFlush ||
                             engine->Authorize(requester, *ref.get(), kSecureRightWrite).ok();
        if (persist) COSMOS_RETURN_IF_ERROR(engine->Flush(requester, *ref.get(), wait));
      } else {
        if (ranges.size() == 1) {
          // One range: Persist lets the backend sync just that range.
          if (ranges[0].length > 0) {
            COSMOS_RETURN_IF_ERROR(region.Persist(ranges[0].offset, ranges[0].length));
          }
        } else {
          bool any = false;
          for (const auto& r : ranges) {
            if (r.length == 0) continue;
            COSMOS_RETURN_IF_ERROR(region.Flush(r.offset, r.length));
            any = true;
          }
          if (any) COSMOS_RETURN_IF_ERROR(region.Drain());
        }
      }
      if (op.opcode == Opcode::kFlush) {
        out->AddOk();
        return Status::Ok();
      }
      if (engine != nullptr) {
        COSMOS_ASSIGN_OR_RETURN(uint64_t d, engine->Digest(requester, *ref.get(), ranges));
        out->AddU64(d);
        return Status::Ok();
      }
      Checksum64Builder digest(protocol::kVerifySeed);
      for (const auto& r : ranges) digest.Update(region.data() + r.offset, r.length);
      out->AddU64(digest.Finish());
      return Status::Ok();
    }
    case Opcode::kWriteAfterFlush: {
      COSMOS_RETURN_IF_ERROR(CheckOpAtomic(op.offset, size, "write_after_flush"));
      uint64_t value = protocol::PayloadU64(op.payload, 0);
      if (engine != nullptr) {
        std::byte b[8];
        std::memcpy(b, &value, 8);
        COSMOS_RETURN_IF_ERROR(engine->Write(requester, *ref.get(), op.offset, b, wait));
        COSMOS_RETURN_IF_ERROR(engine->Flush(requester, *ref.get(), wait));
      } else {
        COSMOS_RETURN_IF_ERROR(region.AtomicStore64(op.offset, value));
      }
      out->AddOk();
      return Status::Ok();
    }
    case Opcode::kCompareAndSwap:
    case Opcode::kFetchAdd: {
      COSMOS_RETURN_IF_ERROR(CheckOpAtomic(op.offset, size, OpcodeName(op.opcode)));
      if (engine != nullptr) {
        // In the enclave, acknowledged with a flush's freshness; a repeat
        // after a counter-wait deferral carries the same attempt id.
        COSMOS_ASSIGN_OR_RETURN(
            uint64_t before,
            op.opcode == Opcode::kCompareAndSwap
                ? engine->CompareAndSwap(requester, *ref.get(), op.offset,
                                         protocol::PayloadU64(op.payload, 0),
                                         protocol::PayloadU64(op.payload, 1), attempt, wait)
                : engine->FetchAdd(requester, *ref.get(), op.offset,
                                   protocol::PayloadU64(op.payload, 0), attempt, wait));
        out->AddU64(before);
        return Status::Ok();
      }
      std::atomic_ref<uint64_t> word(*reinterpret_cast<uint64_t*>(region.data() + op.offset));
      uint64_t before;
      if (op.opcode == Opcode::kCompareAndSwap) {
        before = protocol::PayloadU64(op.payload, 0);
        word.compare_exchange_strong(before, protocol::PayloadU64(op.payload, 1));
      } else {
        before = word.fetch_add(protocol::PayloadU64(op.payload, 0));
      }
      COSMOS_RETURN_IF_ERROR(region.Persist(op.offset, 8));
      out->AddU64(before);
      return Status::Ok();
    }
    default:
      return Status::InvalidArgument("unexpected opcode");
  }
}

size_t Server::Impl::Execute(Requester requester, uint64_t attempt_base, std::span<const Op> list,
                             size_t from, protocol::ResponseBuilder* out, bool worker_thread) {
  for (size_t i = from; i < list.size(); ++i) {
    if (worker_thread && MayBlock(list[i], *table)) return i;
    const uint64_t attempt = attempt_base + i + 1;
    const WaitMode wait =
        worker_thread && (TriedWithoutCounterWait(list[i], *table) ||
                          list[i].opcode == Opcode::kEpoch)  // a forwarded batch's (MayBlock)
            ? WaitMode::kNoWait
            : WaitMode::kMayWait;
    const bool flush = list[i].opcode == Opcode::kFlush;
    const uint64_t started = flush ? MonotonicNanos() : 0;
    Status s = ExecuteOne(requester, list[i], attempt, out, wait);
    if (wait == WaitMode::kNoWait && s.code() == StatusCode::kWouldBlock) {
      metrics.counter_wait_deferrals.Add();
      return i;  // nothing was added to `out`; a secure flusher repeats it
    }
    if (flush) metrics.flush_duration.ObserveNs(MonotonicNanos() - started);
    ops.fetch_add(1, std::memory_order_relaxed);
    metrics.ops[static_cast<uint8_t>(list[i].opcode)].Add();
    if (!s.ok()) {
      metrics.errors[static_cast<uint8_t>(s.code()) % metrics.errors.size()].Add();
      out->AddError(ClientError(s));
      for (size_t j = i + 1; j < list.size(); ++j) {
        out->AddError(
            Status::Cancelled("not executed: op " + std::to_string(i) + " of the batch failed"));
      }
      return list.size();
    }
  }
  return list.size();
}

void Server::Impl::RunBatch(Worker& w, const rpc::RequestHandle& handle,
                            std::span<const std::byte> bytes) {
  batches.fetch_add(1, std::memory_order_relaxed);
  Status parsed = protocol::ParseRequest(bytes, &w.ops);
  w.response.Clear();
  if (!parsed.ok()) {
    // A malformed batch executes nothing; the client gets the parse error.
    rejected.fetch_add(1, std::memory_order_relaxed);
    w.response.AddError(parsed);
    (void)w.rpc->EnqueueResponse(handle, w.response.bytes());
    return;
  }
  Requester requester;
  requester.session = (static_cast<uint64_t>(w.index) << 32) | handle.session;
  if (SecureRegionEngine* engine = table->secure_engine(); engine != nullptr) {
    requester.secure_session = engine->SecureSessionOf(requester.session);
  }
  w.write_flush_started_ns = IsWriteFlush(w.ops) ? MonotonicNanos() : 0;
  const uint64_t attempt_base = AttemptBase(w.batches_admitted++, w.index);
  if (Status admitted = AdmitReplication(w.ops); !admitted.ok()) {
    w.response.AddError(admitted);
    for (size_t j = 1; j < w.ops.size(); ++j) {
      w.response.AddError(Status::Cancelled("not executed: the batch was refused"));
    }
    (void)w.rpc->EnqueueResponse(handle, w.response.bytes());
    return;
  }
  size_t stop = Execute(requester, attempt_base, w.ops, 0, &w.response, /*worker_thread=*/true);
  if (stop < w.ops.size()) {
    auto ref = table->Lookup(w.ops[stop].handle);
    const bool secure = (ref.ok() && (*ref)->secure()) || IsSecureAdmin(w.ops[stop].opcode);
    DeferQueue* queue = secure ? &this->secure : &flush;
    // A client's batch on a replicated region runs on a replication thread; a
    // batch forwarded by a primary only executes locally (a flusher).
    if (w.ops[stop].opcode == Opcode::kEpoch &&
        (w.ops[stop].flags & protocol::kEpochFlagReplica) == 0) {
      queue = &replicate;
    }
    Defer(w, handle, requester, bytes, stop, attempt_base, std::move(w.response), queue);
    w.response = protocol::ResponseBuilder();
    return;
  }
  Status s = w.rpc->EnqueueResponse(handle, w.response.bytes());
  if (!s.ok()) lost.fetch_add(1, std::memory_order_relaxed);
  if (w.write_flush_started_ns != 0) {
    metrics.write_flush_duration.ObserveNs(MonotonicNanos() - w.write_flush_started_ns);
  }
}

void Server::Impl::Defer(Worker& w, const rpc::RequestHandle& handle, const Requester& requester,
                         std::span<const std::byte> bytes, size_t resume_at, uint64_t attempt_base,
                         protocol::ResponseBuilder&& partial, DeferQueue* queue) {
  auto d = std::make_unique<DeferredBatch>();
  d->worker = w.index;
  d->handle = handle;
  d->requester = requester;
  d->request.assign(bytes.begin(), bytes.end());
  d->resume_at = resume_at;
  d->attempt_base = attempt_base;
  d->response = std::move(partial);
  d->write_flush_started_ns = w.write_flush_started_ns;
  deferred.fetch_add(1, std::memory_order_relaxed);
  uint64_t key = (static_cast<uint64_t>(w.index) << 32) | handle.session;
  DeferQueue& q = *queue;
  {
    std::lock_guard lock(q.mu);
    q.queue.Push(key, std::move(d));
  }
  q.cv.notify_one();
}

void Server::Impl::FlusherLoop(DeferQueue* q) {
  std::vector<Op> list;
  for (;;) {
    std::unique_ptr<DeferredBatch> d;
    {
      std::unique_lock lock(q->mu);
      q->cv.wait(lock, [&] { return q->stop || !q->queue.empty(); });
      if (q->queue.empty()) return;  // stopping and drained
      d = std::move(q->queue.Pop()->second);
    }
    if (d->sealed || d->replica) {
      if (d->replica) {
        d->sealed_response = ApplyReplica(*d);
      } else {
        d->sealed_response = ExecuteSealed(d->requester, d->request);
      }
      Worker& w = *workers[d->worker];
      auto* raw = d.release();
      w.rpc->Post([this, raw, &w] {
        std::unique_ptr<DeferredBatch> owned(raw);
        if (!w.rpc->EnqueueResponse(owned->handle, owned->sealed_response).ok()) {
          lost.fetch_add(1, std::memory_order_relaxed);
        }
      });
      continue;
    }
    Status parsed = protocol::ParseRequest(d->request, &list);
    COSMOS_CHECK(parsed.ok());  // parsed once already on the worker
    if (q == &replicate) {
      RunPrimary(*d, list);
    } else {
      Execute(d->requester, d->attempt_base, list, d->resume_at, &d->response,
              /*worker_thread=*/false);
    }
    if (d->write_flush_started_ns != 0) {
      metrics.write_flush_duration.ObserveNs(MonotonicNanos() - d->write_flush_started_ns);
    }
    Worker& w = *workers[d->worker];
    auto* raw = d.release();
    w.rpc->Post([this, raw, &w] {
      std::unique_ptr<DeferredBatch> owned(raw);
      Status s = w.rpc->EnqueueResponse(owned->handle, owned->response.bytes());
      if (!s.ok()) lost.fetch_add(1, std::memory_order_relaxed);
    });
  }
}

Status Server::Impl::AdmitReplication(std::span<const Op> list) {
  if (list.front().opcode == Opcode::kEpoch) {
    if (options.replication == nullptr) {
      return Status::FailedPrecondition(
          "this node is not a cluster member (cosmosd --cluster): no replicated regions");
    }
    for (size_t i = 1; i < list.size(); ++i) {
      if (!protocol::IsDataOpcode(list[i].opcode) || list[i].handle != list.front().handle) {
        return Status::InvalidArgument(
            "a batch on a replicated region holds only data ops on that region");
      }
    }
    if (auto ref = table->Lookup(list.front().handle); ref.ok() && (*ref)->secure()) {
      // Its plaintext would pass through this host and the backups' hosts.
      return Status::FailedPrecondition("region '" + (*ref)->region.name() +
                                        "' is a secure replicated region: it takes sealed "
                                        "batches only (a secure cluster client sends them)");
    }
    return Status::Ok();
  }
  if (options.replication == nullptr) return Status::Ok();
  for (const Op& op : list) {
    if (!protocol::IsDataOpcode(op.opcode)) continue;
    auto ref = table->Lookup(op.handle);
    if (ref.ok() && options.replication->IsReplicated((*ref)->region.name())) {
      return Status::FailedPrecondition("region '" + (*ref)->region.name() +
                                        "' is replicated: its ops must carry its epoch "
                                        "(open it through the cluster)");
    }
  }
  return Status::Ok();
}

Status Server::Impl::ExecuteEpoch(const Op& op, protocol::ResponseBuilder* out, WaitMode wait) {
  // Only a batch forwarded by a primary gets here; a client's goes to
  // RunPrimary, which answers its EPOCH op itself.
  if (options.replication == nullptr || (op.flags & protocol::kEpochFlagReplica) == 0) {
    return Status::Internal("epoch op outside a replicated batch");
  }
  COSMOS_ASSIGN_OR_RETURN(RegionRef ref, table->Lookup(op.handle));
  COSMOS_RETURN_IF_ERROR(options.replication->CheckReplica(
      ref->region.name(), op.offset, (op.flags & protocol::kEpochFlagResync) != 0,
      wait == WaitMode::kMayWait));
  out->AddOk();
  return Status::Ok();
}

void Server::Impl::RunPrimary(DeferredBatch& d, std::span<const Op> list) {
  auto ref = table->Lookup(list.front().handle);
  if (!ref.ok()) {
    d.response.AddError(ref.status());
    for (size_t j = 1; j < list.size(); ++j) {
      d.response.AddError(Status::Cancelled("not executed: op 0 of the batch failed"));
    }
    return;
  }
  const std::string name = (*ref)->region.name();
  *ref = RegionRef();  // the local ops look the region up again
  options.replication->ExecutePrimary(
      name, list,
      [&](size_t from, protocol::ResponseBuilder* out) {
        return Execute(d.requester, d.attempt_base, list, from, out, /*worker_thread=*/false);
      },
      &d.response);
}

void Server::Impl::PumpQos(Worker& w) {
  const QosLimits& q = w.qos;
  const uint64_t now = MonotonicNanos();
  auto make = [&](double rate) {
    double burst = rate * q.burst_seconds;
    return TokenBucket(rate, burst < 1 ? 1 : burst);
  };
  while (auto item = w.qos_queue.Pop([&](const rpc::SessionId& sid, const QueuedBatch& b) {
    auto [sit, snew] = w.session_buckets.try_emplace(sid);
    if (snew) sit->second = {make(q.client_bytes_per_sec), make(q.client_ops_per_sec)};
    auto [rit, rnew] = w.region_buckets.try_emplace(b.first_handle);
    if (rnew) rit->second = {make(q.region_bytes_per_sec), make(q.region_ops_per_sec)};
    double bytes = static_cast<double>(b.request.size());
    double n = static_cast<double>(b.ops);
    // Check all four before taking any, so a refusal takes nothing.
    if (!sit->second.first.CanTake(bytes, now) || !sit->second.second.CanTake(n, now) ||
        !rit->second.first.CanTake(bytes, now) || !rit->second.second.CanTake(n, now)) {
      return false;
    }
    sit->second.first.Take(bytes);
    sit->second.second.Take(n);
    rit->second.first.Take(bytes);
    rit->second.second.Take(n);
    return true;
  })) {
    if (item->second.type == protocol::kRpmSealedRequestType) {
      RunSealedBatch(w, item->second.handle, item->second.request);
    } else {
      RunBatch(w, item->second.handle, item->second.request);
    }
  }
}

void Server::Impl::HandleRequest(rpc::Rpc& rpc, const rpc::IncomingRequest& req) {
  Worker* w = current_worker;
  COSMOS_CHECK(w != nullptr && w->rpc == &rpc);
  if (req.type == protocol::kPeerHelloRequestType) {
    HandlePeerHello(rpc, req);
    return;
  }
  if (req.type == protocol::kReplicaBatchRequestType) {
    HandleReplicaBatch(*w, req);
    return;
  }
  const bool sealed = req.type == protocol::kRpmSealedRequestType;
  if (!accepting.load(std::memory_order_acquire)) {
    const Status down = Status::Unavailable("node is shutting down");
    if (sealed) {
      auto view = protocol::ParseSealedRequest(req.payload);
      (void)rpc.EnqueueResponse(
          req.handle, protocol::EncodeSealedHostError(view.ok() ? view->header.seq : 0, down));
      return;
    }
    protocol::ResponseBuilder rb;
    rb.AddError(down);
    (void)rpc.EnqueueResponse(req.handle, rb.bytes());
    return;
  }
  if (w->qos.enabled()) {
    QueuedBatch b;
    b.handle = req.handle;
    b.type = req.type;
    b.request.assign(req.payload.begin(), req.payload.end());
    if (sealed) {
      // The host cannot count a sealed batch's ops: it is charged as one.
      auto view = protocol::ParseSealedRequest(req.payload);
      b.first_handle = view.ok() ? view->header.handle : 0;
      b.ops = 1;
    } else if (req.payload.size() >= protocol::kBatchHeaderSize + protocol::kOpHeaderSize) {
      b.first_handle = LoadFirstHandle(req.payload);
      b.ops = LoadLE<uint16_t>(req.payload.data() + 6);
    }
    w->qos_queue.Push(req.handle.session, std::move(b));
    size_t before = w->qos_queue.size();
    PumpQos(*w);
    if (w->qos_queue.size() >= before) qos_delayed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (sealed) {
    RunSealedBatch(*w, req.handle, req.payload);
  } else {
    RunBatch(*w, req.handle, req.payload);
  }
}

std::vector<std::byte> Server::Impl::ExecuteSealed(const Requester& requester,
                                                   std::span<const std::byte> bytes) {
  auto view = protocol::ParseSealedRequest(bytes);
  if (!view.ok()) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    return protocol::EncodeSealedHostError(0, view.status());
  }
  const uint64_t seq = view->header.seq;
  SecureRegionEngine* engine = table->secure_engine();
  if (engine == nullptr || !engine->IsSecureSession(requester)) {
    return protocol::EncodeSealedHostError(
        seq, Status::FailedPrecondition("sealed batches need a secure session"));
  }
  auto ref = table->Lookup(view->header.handle);
  if (!ref.ok()) return protocol::EncodeSealedHostError(seq, ref.status());
  if (!(*ref)->secure()) {
    return protocol::EncodeSealedHostError(
        seq, Status::FailedPrecondition("sealed batches are for secure regions only"));
  }
  RegionEntry& entry = *ref->get();
  Result<std::vector<std::byte>> sealed = Status::Internal("unset");
  if ((view->header.flags & protocol::kSealedFlagEpoch) != 0 && options.replication == nullptr) {
    sealed = Status::FailedPrecondition(
        "this node is not a cluster member (cosmosd --cluster): no replicated regions");
  } else if ((view->header.flags & protocol::kSealedFlagEpoch) != 0) {
    // A replicated region's batch (RunSealedBatch queued it on a replication
    // thread): through the hook to every backup's enclave.
    const uint64_t epoch = view->header.epoch;
    sealed = options.replication->ExecutePrimarySealed(
        entry.region.name(), epoch, [&](std::span<const sec::PeerChannelId> backups) {
          return engine->ExecuteReplicatedSealedBatch(requester, entry, bytes, epoch, backups);
        });
  } else if (options.replication != nullptr &&
             options.replication->IsReplicated(entry.region.name())) {
    sealed = Status::FailedPrecondition("region '" + entry.region.name() +
                                        "' is replicated: its sealed batches must carry its "
                                        "epoch (open it through the cluster)");
  } else {
    sealed = engine->ExecuteSealedBatch(requester, entry, bytes);
  }
  if (!sealed.ok()) {
    COSMOS_LOG_WARN("server: sealed batch on region '{}' refused: {}", entry.region.name(),
                    sealed.status().ToString());
    return protocol::EncodeSealedHostError(seq, ClientError(sealed.status()));
  }
  ops.fetch_add(1, std::memory_order_relaxed);
  return std::move(*sealed);
}

void Server::Impl::RunSealedBatch(Worker& w, const rpc::RequestHandle& handle,
                                  std::span<const std::byte> bytes) {
  batches.fetch_add(1, std::memory_order_relaxed);
  Requester requester;
  requester.session = (static_cast<uint64_t>(w.index) << 32) | handle.session;
  if (SecureRegionEngine* engine = table->secure_engine(); engine != nullptr) {
    requester.secure_session = engine->SecureSessionOf(requester.session);
  }
  auto view = protocol::ParseSealedRequest(bytes);
  const bool replicated = view.ok() && (view->header.flags & protocol::kSealedFlagEpoch) != 0;
  if (replicated && options.replication == nullptr) {
    (void)w.rpc->EnqueueResponse(
        handle, protocol::EncodeSealedHostError(
                    view->header.seq,
                    Status::FailedPrecondition("this node is not a cluster member (cosmosd "
                                               "--cluster): no replicated regions")));
    return;
  }
  if (view.ok() && (replicated || (view->header.flags & protocol::kSealedFlagReadOnly) == 0)) {
    // It may wait for the trusted counter (and, replicated, for the backups):
    // a secure flusher (a replication thread) runs it.
    DeferQueue& q = replicated ? replicate : secure;
    auto d = std::make_unique<DeferredBatch>();
    d->worker = w.index;
    d->handle = handle;
    d->requester = requester;
    d->request.assign(bytes.begin(), bytes.end());
    d->sealed = true;
    deferred.fetch_add(1, std::memory_order_relaxed);
    const uint64_t key = (static_cast<uint64_t>(w.index) << 32) | handle.session;
    {
      std::lock_guard lock(q.mu);
      q.queue.Push(key, std::move(d));
    }
    q.cv.notify_one();
    return;
  }
  std::vector<std::byte> response = ExecuteSealed(requester, bytes);
  if (!w.rpc->EnqueueResponse(handle, response).ok()) {
    lost.fetch_add(1, std::memory_order_relaxed);
  }
}

void Server::Impl::HandlePeerHello(rpc::Rpc& rpc, const rpc::IncomingRequest& req) {
  SecureRegionEngine* engine = table->secure_engine();
  Result<std::vector<std::byte>> reply =
      !accepting.load(std::memory_order_acquire) ? Status::Unavailable("node is shutting down")
      : engine == nullptr ? Status::FailedPrecondition("this node does not run the security layer")
                          : engine->AcceptPeer(req.payload);
  if (reply.ok()) {
    (void)rpc.EnqueueResponse(req.handle, *reply);
    return;
  }
  COSMOS_LOG_WARN("server: peer enclave hello refused: {}", reply.status().ToString());
  protocol::ResponseBuilder rb;
  rb.AddError(reply.status());
  (void)rpc.EnqueueResponse(req.handle, rb.bytes());
}

void Server::Impl::HandleReplicaBatch(Worker& w, const rpc::IncomingRequest& req) {
  auto fail = [&](const Status& s) {
    protocol::ResponseBuilder rb;
    rb.AddError(s);
    (void)w.rpc->EnqueueResponse(req.handle, rb.bytes());
  };
  if (!accepting.load(std::memory_order_acquire)) {
    return fail(Status::Unavailable("node is shutting down"));
  }
  auto view = protocol::ParseReplicaBatch(req.payload);
  if (!view.ok()) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    return fail(view.status());
  }
  if (options.replication == nullptr || table->secure_engine() == nullptr) {
    return fail(Status::FailedPrecondition(
        "replica batches need a secure cluster member (cosmosd --cluster with platform keys)"));
  }
  auto desc = table->Open(view->header.name);
  if (!desc.ok()) return fail(desc.status());
  if (!desc->secure) {
    return fail(Status::FailedPrecondition("region '" + std::string(view->header.name) +
                                           "' is not secure here"));
  }
  Status check = options.replication->CheckReplica(view->header.name, view->header.epoch,
                                                   /*resync=*/false, /*may_block=*/false);
  if (!check.ok() && check.code() != StatusCode::kWouldBlock) return fail(check);
  auto d = std::make_unique<DeferredBatch>();
  d->worker = w.index;
  d->handle = req.handle;
  d->request.assign(req.payload.begin(), req.payload.end());
  d->replica = true;
  d->checked = check.ok();
  deferred.fetch_add(1, std::memory_order_relaxed);
  const uint64_t key = (static_cast<uint64_t>(w.index) << 32) | req.handle.session;
  {
    std::lock_guard lock(secure.mu);
    secure.queue.Push(key, std::move(d));
  }
  secure.cv.notify_one();
}

std::vector<std::byte> Server::Impl::ApplyReplica(const DeferredBatch& d) {
  protocol::ResponseBuilder rb;
  auto view = protocol::ParseReplicaBatch(d.request);
  Status s = view.status();
  if (s.ok() && !d.checked) {
    s = options.replication->CheckReplica(view->header.name, view->header.epoch,
                                          /*resync=*/false, /*may_block=*/true);
  }
  if (s.ok()) {
    auto desc = table->Open(view->header.name);
    s = desc.status();
    if (s.ok()) {
      auto ref = table->Lookup(desc->handle);
      s = ref.ok() ? table->secure_engine()->ApplyReplicaBatch(*ref->get(), d.request)
                   : ref.status();
    }
  }
  if (s.ok()) {
    ops.fetch_add(1, std::memory_order_relaxed);
    rb.AddOk();
  } else {
    if (s.code() != StatusCode::kAborted) {
      COSMOS_LOG_WARN("server: replica batch refused: {}", s.ToString());
    }
    rb.AddError(s);
  }
  return {rb.bytes().begin(), rb.bytes().end()};
}

rpc::ConnectDecision Server::Impl::OnConnect(const rpc::ConnectRequestInfo& info) {
  rpc::ConnectDecision d;
  // A secure connect appends the sec ClientHello to the rpm hello.
  const size_t hello_size = std::min(info.payload.size(), protocol::kHelloSize);
  auto hello = protocol::DecodeHello(info.payload.first(hello_size));
  if (!hello.ok()) {
    d.status = hello.status();
    return d;
  }
  if (!accepting.load(std::memory_order_acquire)) {
    d.status = Status::Unavailable("node is shutting down");
    return d;
  }
  protocol::HelloReply reply;
  reply.workers = static_cast<uint32_t>(workers.size());
  Worker* here = current_worker;
  if ((hello->flags & protocol::kHelloWantsAssignment) != 0 && here != nullptr) {
    uint32_t pick = next_assignment.fetch_add(1, std::memory_order_relaxed) %
                    static_cast<uint32_t>(workers.size());
    if (pick != here->index) reply.worker_port = workers[pick]->port;
  }
  std::vector<std::byte> hello_reply = protocol::EncodeHelloReply(reply);
  if (info.payload.size() > protocol::kHelloSize) {
    SecureRegionEngine* engine = table->secure_engine();
    if (engine == nullptr || here == nullptr) {
      d.status = Status::FailedPrecondition("this node does not run the security layer");
      return d;
    }
    const SessionKey session = (static_cast<uint64_t>(here->index) << 32) | info.session;
    d = engine->AcceptConnect(session, info.payload.subspan(protocol::kHelloSize));
    if (!d.status.ok()) return d;
    // Reply: the rpm hello reply, then the ServerHello.
    d.reply.insert(d.reply.begin(), hello_reply.begin(), hello_reply.end());
    return d;
  }
  if (options.require_secure) {
    d.status = Status::PermissionDenied("this node accepts secure connections only");
    return d;
  }
  d.reply = std::move(hello_reply);
  return d;
}

void Server::Impl::WorkerLoop(Worker* w, std::promise<Status>* ready) {
  current_worker = w;
  rpc::UdpTransportOptions topts;
  auto ip = rpc::NetAddress::Parse(options.listen_ip + ":" +
                                   std::to_string(options.port == 0 ? 0 : options.port + w->index));
  if (!ip.ok()) {
    ready->set_value(ip.status());
    return;
  }
  topts.bind = *ip;
  auto transport = rpc::OpenUdpTransport(topts);
  if (!transport.ok()) {
    ready->set_value(transport.status().WithContext("worker " + std::to_string(w->index)));
    return;
  }
  rpc::RpcOptions ropts;
  ropts.mtu = options.mtu;
  ropts.poll_mode = options.busy_poll ? rpc::PollMode::kBusyPoll : rpc::PollMode::kAdaptive;
  ropts.adaptive_spin_ns = static_cast<uint64_t>(options.idle_spin_us) * 1000;
  auto endpoint = rpc::Rpc::Create(&nexus, std::move(*transport), ropts);
  if (!endpoint.ok()) {
    ready->set_value(endpoint.status());
    return;
  }
  std::unique_ptr<rpc::Rpc> rpc = std::move(*endpoint);
  w->rpc = rpc.get();
  w->port = rpc->local_address().port;
  ready->set_value(Status::Ok());
  while (!stop_workers.load(std::memory_order_acquire)) {
    rpc->RunEventLoopOnce();
    if (!w->qos_queue.empty()) PumpQos(*w);
  }
  // Deliver the answers flushers posted last, then close.
  rpc->RunEventLoopFor(2'000'000);
  w->rpc = nullptr;
}

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                              std::vector<ServedPool> pools) {
  if (pools.empty()) return Status::InvalidArgument("cosmosd needs at least one pool");
  if (options.workers == 0 || options.workers > 64)
    return Status::InvalidArgument("workers must be 1..64");
  if (options.flushers == 0 || options.flushers > 64)
    return Status::InvalidArgument("flushers must be 1..64");
  if (options.secure_flushers == 0 || options.secure_flushers > 256)
    return Status::InvalidArgument("secure_flushers must be 1..256");
  if (options.port != 0 && options.port + options.workers > 65536) {
    return Status::InvalidArgument("port range of the workers exceeds 65535");
  }
  if (options.replication != nullptr &&
      (options.replication_threads == 0 || options.replication_threads > 64)) {
    return Status::InvalidArgument("replication_threads must be 1..64");
  }
  if (options.require_secure && options.secure_engine == nullptr) {
    return Status::InvalidArgument("require_secure needs the security layer (secure_engine)");
  }
  auto impl = std::make_unique<Impl>();
  Impl* self = impl.get();
  impl->options = options;
  impl->table = std::make_unique<RegionTable>(std::move(pools));
  impl->table->set_secure_engine(options.secure_engine);
  for (const auto& [name, info] : impl->table->PoolInfos()) {
    // "pool /srv/x.pool: msync ..." becomes "pool 'main': msync ...".
    impl->pool_paths.emplace_back("pool " + info.path, "pool '" + name + "'");
    impl->pool_paths.emplace_back(info.path, "pool '" + name + "'");
  }
  impl->nexus.RegisterHandler(
      protocol::kRpmRequestType,
      [self](rpc::Rpc& rpc, const rpc::IncomingRequest& req) { self->HandleRequest(rpc, req); });
  impl->nexus.RegisterHandler(
      protocol::kRpmSealedRequestType,
      [self](rpc::Rpc& rpc, const rpc::IncomingRequest& req) { self->HandleRequest(rpc, req); });
  for (uint16_t type : {protocol::kReplicaBatchRequestType, protocol::kPeerHelloRequestType}) {
    impl->nexus.RegisterHandler(type, [self](rpc::Rpc& rpc, const rpc::IncomingRequest& req) {
      self->HandleRequest(rpc, req);
    });
  }
  impl->nexus.SetConnectHook(
      [self](const rpc::ConnectRequestInfo& info) { return self->OnConnect(info); });
  for (uint32_t i = 0; i < options.workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->qos = options.qos;
    impl->workers.push_back(std::move(w));
  }
  std::unique_ptr<Server> server(new Server(std::move(impl)));
  Status first_error;
  for (auto& w : self->workers) {
    std::promise<Status> ready;
    auto fut = ready.get_future();
    w->thread = std::thread([self, wp = w.get(), &ready] { self->WorkerLoop(wp, &ready); });
    Status s = fut.get();
    if (!s.ok()) {
      first_error = s;
      break;
    }
  }
  for (uint32_t i = 0; i < options.flushers; ++i) {
    self->flush.threads.emplace_back([self] { self->FlusherLoop(&self->flush); });
  }
  const uint32_t secure_threads = options.secure_engine != nullptr ? options.secure_flushers : 0;
  for (uint32_t i = 0; i < secure_threads; ++i) {
    self->secure.threads.emplace_back([self] { self->FlusherLoop(&self->secure); });
  }
  const uint32_t replication_threads =
      options.replication != nullptr ? options.replication_threads : 0;
  for (uint32_t i = 0; i < replication_threads; ++i) {
    self->replicate.threads.emplace_back([self] { self->FlusherLoop(&self->replicate); });
  }
  if (!first_error.ok()) {
    server->Stop();
    return first_error;
  }
  for (const auto& [name, info] : self->table->PoolInfos()) {
    COSMOS_LOG_INFO("cosmosd: serving pool '{}' ({}, backend {}, durability {}{}), {} regions",
                    name, info.path, info.backend, pmem::DurabilityName(info.durability),
                    info.durability == pmem::DurabilityLevel::kNone ? ": NOT durable" : "",
                    info.region_count);
  }
  // Ports are contiguous (port+i) when --port is given; with --port 0 each
  // worker has its own ephemeral port, so list them.
  std::string ports;
  for (const auto& w : self->workers) {
    ports += (ports.empty() ? "" : ",") + std::to_string(w->port);
  }
  COSMOS_LOG_INFO("cosmosd: {} workers on {} port(s) {}, {} flushers{}{}", options.workers,
                  options.listen_ip, ports, options.flushers,
                  secure_threads > 0 ? ", " + std::to_string(secure_threads) + " secure flushers"
                                     : std::string(),
                  options.qos.enabled() ? ", QoS on" : "");
  return server;
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

void Server::Stop() {
  std::lock_guard stop_lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->accepting.store(false, std::memory_order_release);
  for (DeferQueue* q : {&impl_->replicate, &impl_->flush, &impl_->secure}) {
    {
      std::lock_guard lock(q->mu);
      q->stop = true;
    }
    q->cv.notify_all();
  }
  for (DeferQueue* q : {&impl_->replicate, &impl_->flush, &impl_->secure}) {
    for (auto& t : q->threads) t.join();
  }
  impl_->stop_workers.store(true, std::memory_order_release);
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  COSMOS_LOG_INFO("cosmosd: stopped after {} batches, {} ops", impl_->batches.load(),
                  impl_->ops.load());
}

Status Server::SetQosLimits(const QosLimits& limits) {
  std::lock_guard stop_lock(impl_->stop_mu);
  if (impl_->stopped) return Status::Unavailable("server is stopped");
  for (auto& w : impl_->workers) {
    Worker* worker = w.get();
    Impl* impl = impl_.get();
    // On the worker's thread: new buckets at the new rates, then serve what
    // they admit (everything queued, when the limits are lifted).
    worker->rpc->Post([impl, worker, limits] {
      worker->qos = limits;
      worker->session_buckets.clear();
      worker->region_buckets.clear();
      if (!worker->qos_queue.empty()) impl->PumpQos(*worker);
    });
  }
  impl_->options.qos = limits;
  COSMOS_LOG_INFO("cosmosd: QoS limits now: {}", DescribeQos(limits));
  return Status::Ok();
}

std::string DescribeQos(const QosLimits& q) {
  if (!q.enabled()) return "off (unlimited)";
  auto rate = [](double v, const char* unit) {
    if (v <= 0) return std::string("unlimited");
    return v >= 1 ? fmt::format("{:.0f} {}", v, unit) : fmt::format("{:g} {}", v, unit);
  };
  return fmt::format("client {} and {}, region {} and {}, burst {:.3f} s",
                     rate(q.client_bytes_per_sec, "B/s"), rate(q.client_ops_per_sec, "ops/s"),
                     rate(q.region_bytes_per_sec, "B/s"), rate(q.region_ops_per_sec, "ops/s"),
                     q.burst_seconds);
}

uint16_t Server::port() const { return impl_->workers.front()->port; }

std::vector<uint16_t> Server::worker_ports() const {
  std::vector<uint16_t> out;
  for (const auto& w : impl_->workers) out.push_back(w->port);
  return out;
}

RegionTable& Server::table() { return *impl_->table; }

const ServerMetrics& Server::metrics() const { return impl_->metrics; }

ServerRpcSnapshot Server::RpcSnapshot(std::chrono::milliseconds timeout) const {
  // Filled by the workers' posted tasks; shared, so a task that runs after
  // the wait gave up (or after Stop) writes into live memory.
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    ServerRpcSnapshot sum;
  };
  auto shared = std::make_shared<Shared>();
  uint32_t posted = 0;
  {
    // Stop takes this lock before it ends the workers: every endpoint lives
    // for the whole Post.
    std::lock_guard stop_lock(impl_->stop_mu);
    if (impl_->stopped) return {};
    for (const auto& w : impl_->workers) {
      rpc::Rpc* endpoint = w->rpc;
      if (endpoint == nullptr) continue;
      endpoint->Post([shared, endpoint] {
        const rpc::EndpointCounters& c = endpoint->counters();
        const size_t sessions = endpoint->session_count();
        std::lock_guard lock(shared->mu);
        ServerRpcSnapshot& s = shared->sum;
        ++s.workers_answered;
        s.sessions += sessions;
        s.sessions_connected += c.sessions_connected;
        s.sessions_failed += c.sessions_failed;
        s.connects_refused += c.connects_refused;
        s.packets_sent += c.packets_sent;
        s.packets_received += c.packets_received;
        s.bytes_sent += c.bytes_sent;
        s.bytes_received += c.bytes_received;
        s.retransmissions += c.retransmissions;
        s.timeouts += c.timeouts;
        s.dropped_packets += c.truncated + c.wrong_version + c.bad_packets + c.oversized +
                             c.wrong_session + c.out_of_window;
        s.auth_failures += c.auth_failures;
        shared->cv.notify_all();
      });
      ++posted;
    }
  }
  std::unique_lock lock(shared->mu);
  shared->cv.wait_for(lock, timeout, [&] { return shared->sum.workers_answered == posted; });
  return shared->sum;
}

ServerStats Server::stats() const {
  ServerStats s;
  s.batches = impl_->batches.load();
  s.ops = impl_->ops.load();
  s.bytes_written = impl_->bytes_written.load();
  s.deferred_batches = impl_->deferred.load();
  s.rejected_batches = impl_->rejected.load();
  s.lost_responses = impl_->lost.load();
  s.qos_delayed = impl_->qos_delayed.load();
  return s;
}

}  // namespace cosmos::server
