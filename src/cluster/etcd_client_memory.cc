// In-memory etcd twin: one mutex over a sorted map, etcd's revision rules
// (one revision per write or per writing transaction), leases without a
// clock (tests expire them explicitly), watches with history replay.
#include "cluster/etcd_client_memory.h"

#include <atomic>

#include "cluster/watch_queue.h"

namespace cosmos::cluster {
namespace {

bool InRange(const KeyRange& range, const std::string& key) {
  if (range.range_end.empty()) return key == range.key;
  if (key < range.key) return false;
  if (range.range_end == std::string(1, '\0')) return true;
  return key < range.range_end;
}

template <typename T>
bool CompareNumbers(Compare::Op op, const T& a, const T& b) {
  switch (op) {
    case Compare::Op::kEqual:
      return a == b;
    case Compare::Op::kNotEqual:
      return a != b;
    case Compare::Op::kGreater:
      return a > b;
    case Compare::Op::kLess:
      return a < b;
  }
  return false;
}

Status Unavailable() { return Status::Unavailable("in-memory etcd is unavailable (injected)"); }

}  // namespace

struct MemoryEtcd::WatchState {
  KeyRange range;
  WatchQueue queue;
  std::atomic<bool> closed{false};  // the consumer dropped its stream
};

namespace {

class MemoryWatchStream final : public WatchStream {
 public:
  explicit MemoryWatchStream(std::shared_ptr<MemoryEtcd::WatchState> state)
      : state_(std::move(state)) {}
  ~MemoryWatchStream() override { state_->closed.store(true); }

  Result<WatchBatch> Next(std::chrono::milliseconds timeout) override {
    return state_->queue.Next(timeout);
  }

 private:
  std::shared_ptr<MemoryEtcd::WatchState> state_;
};

}  // namespace

MemoryEtcd::~MemoryEtcd() {
  for (auto& w : watches_) w->queue.End(Status::Unavailable("in-memory etcd destroyed"));
}

Status MemoryEtcd::CheckAvailable() const { return available_ ? Status::Ok() : Unavailable(); }

RangeResult MemoryEtcd::ReadRange(const KeyRange& range, int64_t limit) const {
  RangeResult result;
  result.revision = revision_;
  for (auto it = kvs_.lower_bound(range.key); it != kvs_.end(); ++it) {
    // Keys are sorted and start at range.key: the first one outside is past
    // the end.
    if (!InRange(range, it->first)) break;
    ++result.count;
    if (limit > 0 && static_cast<int64_t>(result.kvs.size()) >= limit) {
      result.more = true;
      continue;
    }
    result.kvs.push_back(it->second);
  }
  return result;
}

Status MemoryEtcd::ApplyPut(const std::string& key, std::string_view value, int64_t lease,
                            int64_t rev, std::vector<WatchEvent>& events) {
  if (key.empty()) return Status::InvalidArgument("etcdserver: key is not provided");
  if (lease != 0 && !leases_.contains(lease)) {
    return Status::NotFound("etcdserver: requested lease not found");
  }
  KeyValue& kv = kvs_[key];
  if (kv.create_revision == 0) {
    kv.key = key;
    kv.create_revision = rev;
  }
  kv.value = std::string(value);
  kv.mod_revision = rev;
  ++kv.version;
  kv.lease = lease;
  events.push_back({WatchEvent::Type::kPut, kv});
  return Status::Ok();
}

void MemoryEtcd::ApplyDelete(const KeyRange& range, int64_t rev, std::vector<WatchEvent>& events,
                             int64_t* deleted) {
  for (auto it = kvs_.lower_bound(range.key); it != kvs_.end();) {
    if (!InRange(range, it->first)) break;  // sorted: past the end
    KeyValue tombstone;
    tombstone.key = it->first;
    tombstone.mod_revision = rev;
    events.push_back({WatchEvent::Type::kDelete, std::move(tombstone)});
    ++*deleted;
    it = kvs_.erase(it);
  }
}

void MemoryEtcd::Publish(std::vector<WatchEvent> events) {
  if (events.empty()) return;
  history_.insert(history_.end(), events.begin(), events.end());
  std::erase_if(watches_, [](const std::shared_ptr<WatchState>& w) { return w->closed.load(); });
  for (auto& w : watches_) {
    WatchBatch batch;
    batch.revision = revision_;
    for (const WatchEvent& e : events) {
      if (InRange(w->range, e.kv.key)) batch.events.push_back(e);
    }
    if (!batch.events.empty()) w->queue.Push(std::move(batch));
  }
}

bool MemoryEtcd::EvaluateCompare(const Compare& c) const {
  const auto it = kvs_.find(c.key);
  const KeyValue absent;
  const KeyValue& kv = it == kvs_.end() ? absent : it->second;
  switch (c.target) {
    case Compare::Target::kVersion:
      return CompareNumbers(c.op, kv.version, c.number);
    case Compare::Target::kCreateRevision:
      return CompareNumbers(c.op, kv.create_revision, c.number);
    case Compare::Target::kModRevision:
      return CompareNumbers(c.op, kv.mod_revision, c.number);
    case Compare::Target::kLease:
      return CompareNumbers(c.op, kv.lease, c.number);
    case Compare::Target::kValue:
      // etcd: a value compare on a missing key is false.
      return it != kvs_.end() && CompareNumbers(c.op, kv.value, c.value);
  }
  return false;
}

Result<RangeResult> MemoryEtcd::Range(const KeyRange& range, int64_t limit) {
  std::lock_guard lock(mu_);
  COSMOS_RETURN_IF_ERROR(CheckAvailable());
  return ReadRange(range, limit);
}

Result<int64_t> MemoryEtcd::Put(std::string_view key, std::string_view value, int64_t lease) {
  std::lock_guard lock(mu_);
  COSMOS_RETURN_IF_ERROR(CheckAvailable());
  std::vector<WatchEvent> events;
  COSMOS_RETURN_IF_ERROR(ApplyPut(std::string(key), value, lease, revision_ + 1, events));
  ++revision_;
  Publish(std::move(events));
  return revision_;
}

Result<int64_t> MemoryEtcd::Delete(const KeyRange& range) {
  std::lock_guard lock(mu_);
  COSMOS_RETURN_IF_ERROR(CheckAvailable());
  std::vector<WatchEvent> events;
  int64_t deleted = 0;
  ApplyDelete(range, revision_ + 1, events, &deleted);
  if (deleted > 0) ++revision_;
  Publish(std::move(events));
  return deleted;
}

Result<TxnResult> MemoryEtcd::Txn(const TxnRequest& request) {
  std::lock_guard lock(mu_);
  COSMOS_RETURN_IF_ERROR(CheckAvailable());
  TxnResult result;
  result.succeeded = true;
  for (const Compare& c : request.compares) result.succeeded &= EvaluateCompare(c);
  const std::vector<TxnOp>& ops = result.succeeded ? request.success : request.failure;
  // etcd validates a put's lease before applying anything: all or nothing.
  for (const TxnOp& op : ops) {
    if (op.kind == TxnOp::Kind::kPut && op.lease != 0 && !leases_.contains(op.lease)) {
      return Status::NotFound("etcdserver: requested lease not found");
    }
    if (op.kind == TxnOp::Kind::kPut && op.range.key.empty()) {
      return Status::InvalidArgument("etcdserver: key is not provided");
    }
  }
  const int64_t rev = revision_ + 1;
  std::vector<WatchEvent> events;
  for (const TxnOp& op : ops) {
    switch (op.kind) {
      case TxnOp::Kind::kPut:
        COSMOS_RETURN_IF_ERROR(ApplyPut(op.range.key, op.value, op.lease, rev, events));
        break;
      case TxnOp::Kind::kDelete: {
        int64_t deleted = 0;
        ApplyDelete(op.range, rev, events, &deleted);
        break;
      }
      case TxnOp::Kind::kRange:
        result.ranges.push_back(ReadRange(op.range, 0));
        break;
    }
  }
  if (!events.empty()) revision_ = rev;
  for (RangeResult& r : result.ranges) r.revision = revision_;
  result.revision = revision_;
  Publish(std::move(events));
  return result;
}

Result<LeaseGrant> MemoryEtcd::GrantLease(int64_t ttl_seconds) {
  std::lock_guard lock(mu_);
  COSMOS_RETURN_IF_ERROR(CheckAvailable());
  if (ttl_seconds < 1) return Status::InvalidArgument("etcd lease TTL must be >= 1 s");
  const int64_t id = next_lease_++;
  leases_[id] = ttl_seconds;
  return LeaseGrant{id, ttl_seconds};
}

Result<int64_t> MemoryEtcd::KeepAlive(int64_t lease_id) {
  std::lock_guard lock(mu_);
  COSMOS_RETURN_IF_ERROR(CheckAvailable());
  const auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    return Status::NotFound("etcd lease " + std::to_string(lease_id) + " has expired");
  }
  return it->second;
}

Status MemoryEtcd::RevokeLease(int64_t lease_id) {
  {
    std::lock_guard lock(mu_);
    COSMOS_RETURN_IF_ERROR(CheckAvailable());
    if (!leases_.contains(lease_id)) {
      return Status::NotFound("etcdserver: requested lease not found");
    }
  }
  ExpireLease(lease_id);
  return Status::Ok();
}

void MemoryEtcd::ExpireLease(int64_t lease_id) {
  std::lock_guard lock(mu_);
  if (leases_.erase(lease_id) == 0) return;
  const int64_t rev = revision_ + 1;
  std::vector<WatchEvent> events;
  for (auto it = kvs_.begin(); it != kvs_.end();) {
    if (it->second.lease != lease_id) {
      ++it;
      continue;
    }
    KeyValue tombstone;
    tombstone.key = it->first;
    tombstone.mod_revision = rev;
    events.push_back({WatchEvent::Type::kDelete, std::move(tombstone)});
    it = kvs_.erase(it);
  }
  if (!events.empty()) revision_ = rev;
  Publish(std::move(events));
}

Result<std::unique_ptr<WatchStream>> MemoryEtcd::Watch(const KeyRange& range,
                                                       int64_t start_revision) {
  std::lock_guard lock(mu_);
  COSMOS_RETURN_IF_ERROR(CheckAvailable());
  auto state = std::make_shared<WatchState>();
  state->range = range;
  if (start_revision > 0) {
    // Replay history from start_revision, one batch per revision.
    WatchBatch batch;
    for (const WatchEvent& e : history_) {
      if (e.kv.mod_revision < start_revision || !InRange(range, e.kv.key)) continue;
      if (!batch.events.empty() && batch.events.back().kv.mod_revision != e.kv.mod_revision) {
        batch.revision = revision_;
        state->queue.Push(std::move(batch));
        batch = WatchBatch();
      }
      batch.events.push_back(e);
    }
    if (!batch.events.empty()) {
      batch.revision = revision_;
      state->queue.Push(std::move(batch));
    }
  }
  watches_.push_back(state);
  return std::unique_ptr<WatchStream>(std::make_unique<MemoryWatchStream>(std::move(state)));
}

void MemoryEtcd::SetAvailable(bool available) {
  std::lock_guard lock(mu_);
  available_ = available;
  if (!available) {
    for (auto& w : watches_) w->queue.End(Unavailable());
    watches_.clear();
  }
}

int64_t MemoryEtcd::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

std::vector<int64_t> MemoryEtcd::leases() const {
  std::lock_guard lock(mu_);
  std::vector<int64_t> ids;
  for (const auto& [id, ttl] : leases_) ids.push_back(id);
  return ids;
}

}  // namespace cosmos::cluster
