// The cluster client (ClientOptions::cluster): regions are found in etcd
// (replicas, primary, epoch; docs/cluster.md), created on every replica, and
// used through the primary with EPOCH-tagged batches. After a failover a call
// re-reads the placement, reopens the region on the new primary and, where
// that is safe, repeats itself (docs/semantics.md section 8).
#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "client/replica_region.h"
#include "cluster/etcd_client_http.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "common/check.h"
#include "common/clock.h"
#include "common/log.h"

namespace cosmos::client {
namespace {

// Writes kept for replay after a failover are bounded: beyond this the
// Region stops logging and a failover fails the next barrier (Unavailable)
// instead of silently dropping writes the caller never saw flushed.
constexpr size_t kMaxReplayBytes = 64u << 20;

// Failover (docs/cluster.md "Failure detection and failover"): sessions to
// the nodes are declared dead after kHeartbeatMs x kMissedHeartbeats of
// silence (the RPC layer raises that limit on a slow host), the same budget
// the nodes' failure detector uses; meanwhile the placement is polled every
// kPlacementPollMs for the new configuration.
constexpr uint32_t kHeartbeatMs = 20;
constexpr uint32_t kMissedHeartbeats = 5;
// The RPC layer raises the silence limit to 8x the delays it saw, including
// the application's pauses between calls; a client idle for a few seconds
// would then wait up to 10 s for a dead primary. A wrong guess here costs
// only a re-read of the placement and a reconnect (the nodes decide
// failovers, with their own detector).
constexpr uint32_t kMaxDeadPeerMs = 250;
constexpr uint64_t kPlacementPollMs = 5;
constexpr uint64_t kSamePrimaryGraceMs = 500;

// Errors after which the configuration may have changed.
bool IsFailoverError(const Status& s) {
  return s.code() == StatusCode::kAborted || s.code() == StatusCode::kUnavailable ||
         s.code() == StatusCode::kTimeout;
}

class ClusterClient;

// A replicated region used through its current primary.
class ReplicatedRegion final : public Region {
 public:
  ReplicatedRegion(ClusterClient* owner, std::string name)
      : owner_(owner), name_(std::move(name)) {}

  // Reads the placement and opens the region on its primary.
  Status Attach();

  const RegionInfo& info() const override { return info_; }

  Status Write(uint64_t offset, std::span<const std::byte> data) override {
    COSMOS_RETURN_IF_ERROR(EnsureAttached());
    Status s = inner_->Write(offset, data);
    if (s.ok()) Log(Entry{false, offset, {data.begin(), data.end()}, {}});
    return s;
  }
  Status Read(uint64_t offset, std::span<std::byte> out) override {
    return Retry([&] { return inner_->Read(offset, out); });
  }
  Status Flush(std::span<const Range> ranges) override {
    std::vector<Range> copy(ranges.begin(), ranges.end());
    return Barrier([&] { return inner_->Flush(copy); });
  }
  Status AsyncFlush(std::span<const Range> ranges) override {
    COSMOS_RETURN_IF_ERROR(EnsureAttached());
    Status s = inner_->AsyncFlush(ranges);
    if (s.ok()) Log(Entry{true, 0, {}, {ranges.begin(), ranges.end()}});
    return s;
  }
  Status Drain() override {
    return Barrier([&] { return inner_->Drain(); });
  }
  Status WriteAfterFlush(uint64_t offset, uint64_t value) override {
    // Storing the same value twice is harmless: repeated after a failover.
    return Barrier([&] { return inner_->WriteAfterFlush(offset, value); });
  }
  Result<uint64_t> CompareAndSwap(uint64_t offset, uint64_t expected, uint64_t desired) override {
    return Once([&] { return inner_->CompareAndSwap(offset, expected, desired); });
  }
  Result<uint64_t> FetchAdd(uint64_t offset, uint64_t delta) override {
    return Once([&] { return inner_->FetchAdd(offset, delta); });
  }
  Status Verify(uint64_t offset, std::span<const std::byte> expected) override {
    return Barrier([&] { return inner_->Verify(offset, expected); });
  }
  // Asynchronous forms go to the current primary without failover handling:
  // a failover completes them with its error (Unavailable / Aborted).
  void WriteAsync(uint64_t offset, std::span<const std::byte> data, Completion done) override {
    if (Status s = EnsureAttached(); !s.ok()) return done(s);
    inner_->WriteAsync(offset, data, std::move(done));
  }
  void ReadAsync(uint64_t offset, std::span<std::byte> out, Completion done) override {
    if (Status s = EnsureAttached(); !s.ok()) return done(s);
    inner_->ReadAsync(offset, out, std::move(done));
  }
  void FlushAsync(std::span<const Range> ranges, Completion done) override {
    if (Status s = EnsureAttached(); !s.ok()) return done(s);
    inner_->FlushAsync(ranges, std::move(done));
  }

 private:
  // A posted write or AsyncFlush since the last completed barrier: replayed
  // on the new primary before a barrier is repeated there.
  struct Entry {
    bool flush = false;
    uint64_t offset = 0;
    std::vector<std::byte> bytes;
    std::vector<Range> ranges;
  };

  Status EnsureAttached() { return inner_ != nullptr ? Status::Ok() : Attach(); }

  void Log(Entry e) {
    if (log_overflow_) return;
    log_bytes_ += e.bytes.size() + e.ranges.size() * sizeof(Range);
    if (log_bytes_ > kMaxReplayBytes) {
      log_overflow_ = true;
      log_.clear();
      return;
    }
    log_.push_back(std::move(e));
  }
  void ClearLog() {
    log_.clear();
    log_bytes_ = 0;
    log_overflow_ = false;
  }

  // After a failover: a new primary (or the same one at a new epoch), with
  // the logged writes replayed. Waits up to the failover timeout.
  Status Reattach(const Status& cause);
  // The primary stopped answering (not a refusal): polls the placement until
  // the backups have failed it over (a new epoch or primary) instead of
  // connecting to a dead node again (a connect to a silent address takes the
  // RPC layer's full connect timeout). After kSamePrimaryGraceMs without a
  // change (only this client's path to the primary may have failed) the
  // caller tries the same primary again.
  void WaitForNewConfiguration(const std::string& old_primary, uint64_t deadline);

  // Idempotent call: repeated on the new configuration after a failover.
  Status Retry(const std::function<Status()>& call) {
    COSMOS_RETURN_IF_ERROR(EnsureAttached());
    Status s = call();
    while (IsFailoverError(s)) {
      COSMOS_RETURN_IF_ERROR(Reattach(s));
      s = call();
    }
    return s;
  }
  // A barrier: on success everything logged before it is covered.
  Status Barrier(const std::function<Status()>& call) {
    Status s = Retry(call);
    if (s.ok()) ClearLog();
    return s;
  }
  // Not idempotent (atomics): never repeated. A failover fails it with the
  // error seen (its effect is then unknown, as after a node crash); the next
  // call runs on the new configuration.
  Result<uint64_t> Once(const std::function<Result<uint64_t>()>& call) {
    COSMOS_RETURN_IF_ERROR(EnsureAttached());
    Result<uint64_t> r = call();
    if (r.ok()) {
      ClearLog();
    } else if (IsFailoverError(r.status())) {
      inner_.reset();
    }
    return r;
  }

  ClusterClient* owner_;
  std::string name_;
  RegionInfo info_;
  std::unique_ptr<Region> inner_;
  std::vector<Entry> log_;
  size_t log_bytes_ = 0;
  bool log_overflow_ = false;
};

class ClusterClient final : public Client {
 public:
  explicit ClusterClient(const ClientOptions& options) : options_(options) {}

  Status Init() {
    COSMOS_ASSIGN_OR_RETURN(auto endpoints, cluster::ParseEtcdEndpoints(options_.cluster));
    cluster::EtcdHttpOptions eo;
    eo.endpoints = std::move(endpoints);
    COSMOS_ASSIGN_OR_RETURN(etcd_, cluster::OpenEtcdHttpClient(std::move(eo)));
    membership_ = std::make_unique<cluster::Membership>(*etcd_, cluster::ClusterKeys());
    placement_ = std::make_unique<cluster::PlacementStore>(*etcd_, cluster::ClusterKeys());
    return Status::Ok();
  }

  Result<RegionInfo> CreateRegion(const std::string& name, uint64_t size,
                                  const RegionOptions& options) override {
    if (options.secure && !options_.secure()) {
      return Status::FailedPrecondition("a secure region needs a secure connection");
    }
    const int r = options.replicas == 0 ? 1 : options.replicas;
    COSMOS_ASSIGN_OR_RETURN(cluster::NodeList nodes, membership_->ListNodes());
    // The record claims the name first: of two concurrent creations one wins.
    COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement vp,
                            placement_->Create(name, r, nodes.nodes));
    std::vector<std::string> created;
    Status failed;
    // A secure region is created by this client on every replica over its
    // own attested session: each replica's enclave makes its own region key
    // (from the client's material, with a fresh salt, when given one) and
    // lists this client as admin. Data reaches the backups only from the
    // primary's enclave over attested peer channels.
    RegionOptions local;
    local.pool = options.pool;
    local.secure = options.secure;
    local.user_key = options.user_key;
    for (const std::string& node : vp.placement.replicas) {
      auto c = Node(node);
      Result<RegionInfo> info = c.ok() ? (*c)->CreateRegion(name, size, local) : c.status();
      if (!info.ok()) {
        failed = info.status().WithContext("create region '" + name + "' on node " + node);
        break;
      }
      created.push_back(node);
    }
    if (!failed.ok()) {
      // Undo: the region must not stay half-created.
      for (const std::string& node : created) {
        if (auto c = Node(node); c.ok()) (void)(*c)->DeleteRegion(name);
      }
      (void)placement_->Remove(vp);
      return failed;
    }
    COSMOS_ASSIGN_OR_RETURN(auto region, OpenRegion(name, OpenOptions{}));
    return region->info();
  }

  Result<std::unique_ptr<Region>> OpenRegion(const std::string& name, const OpenOptions&) override {
    auto region = std::make_unique<ReplicatedRegion>(this, name);
    // A primary that just died is still named until a backup fails it over.
    const uint64_t deadline = MonotonicNanos() + uint64_t{options_.failover_timeout_ms} * 1'000'000;
    for (;;) {
      Status s = region->Attach();
      if (s.ok()) break;
      if (!IsFailoverError(s) || MonotonicNanos() > deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::unique_ptr<Region>(std::move(region));
  }
  using Client::OpenRegion;

  Result<std::vector<RegionInfo>> ListRegions() override {
    COSMOS_ASSIGN_OR_RETURN(cluster::RegionList list, placement_->List());
    std::vector<RegionInfo> out;
    for (const auto& vp : list.regions) {
      RegionInfo info;
      info.name = vp.placement.region;
      info.epoch = vp.placement.epoch;
      info.replicas = vp.placement.replicas;
      info.primary = vp.placement.primary;
      if (auto c = Node(vp.placement.primary); c.ok()) {
        if (auto infos = (*c)->ListRegions(); infos.ok()) {
          for (const auto& i : *infos) {
            if (i.name == info.name) {
              info.size = i.size;
              info.durability = i.durability;
            }
          }
        }
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  Status DeleteRegion(const std::string& name) override {
    COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement vp, placement_->Get(name));
    for (const std::string& node : vp.placement.replicas) {
      COSMOS_ASSIGN_OR_RETURN(Client * c, Node(node));
      Status s = c->DeleteRegion(name);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s.WithContext("node " + node);
    }
    return placement_->Remove(vp);
  }

  // Access lists and keys are per replica (each enclave seals its own): a
  // change goes to every replica of the current configuration, primary
  // first; a failure part-way leaves the replicas differing until the call
  // is repeated (it is idempotent: Grant sets, RotateKey only advances).
  Status GrantAccess(const std::string& name, const ClientIdentity& who, uint8_t rights) override {
    COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement vp, placement_->Get(name));
    for (const std::string& node : PrimaryFirst(vp.placement)) {
      COSMOS_ASSIGN_OR_RETURN(Client * c, Node(node));
      COSMOS_RETURN_IF_ERROR(c->GrantAccess(name, who, rights).WithContext("node " + node));
    }
    return Status::Ok();
  }
  Result<AccessInfo> ListAccess(const std::string& name) override {
    COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement vp, placement_->Get(name));
    COSMOS_ASSIGN_OR_RETURN(Client * c, Node(vp.placement.primary));
    return c->ListAccess(name);
  }
  Result<uint32_t> RotateKey(const std::string& name) override {
    COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement vp, placement_->Get(name));
    uint32_t primary_epoch = 0;
    for (const std::string& node : PrimaryFirst(vp.placement)) {
      COSMOS_ASSIGN_OR_RETURN(Client * c, Node(node));
      auto epoch = c->RotateKey(name);
      if (!epoch.ok()) return epoch.status().WithContext("node " + node);
      if (node == vp.placement.primary) primary_epoch = *epoch;
    }
    return primary_epoch;
  }
  static std::vector<std::string> PrimaryFirst(const cluster::RegionPlacement& p) {
    std::vector<std::string> order{p.primary};
    for (const std::string& r : p.replicas) {
      if (r != p.primary) order.push_back(r);
    }
    return order;
  }

  size_t Poll(uint32_t max_wait_us) override {
    size_t n = 0;
    for (auto& [id, c] : nodes_) n += c->Poll(0);
    if (n == 0 && max_wait_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(std::min<uint32_t>(max_wait_us, 1000)));
      for (auto& [id, c] : nodes_) n += c->Poll(0);
    }
    return n;
  }

  const std::string& server() const override { return options_.cluster; }

  // A connection to node `id` (its address from its etcd record), cached.
  Result<Client*> Node(const std::string& id) {
    if (auto it = nodes_.find(id); it != nodes_.end()) return it->second.get();
    COSMOS_ASSIGN_OR_RETURN(cluster::NodeList list, membership_->ListNodes());
    for (const auto& n : list.nodes) {
      if (n.id != id) continue;
      ClientOptions o = options_;
      o.cluster.clear();
      o.server = n.address;
      o.heartbeat_interval_ms = std::min(o.heartbeat_interval_ms, kHeartbeatMs);
      o.missed_heartbeats = std::min(o.missed_heartbeats, kMissedHeartbeats);
      o.max_dead_peer_ms = std::min(o.max_dead_peer_ms, kMaxDeadPeerMs);
      COSMOS_ASSIGN_OR_RETURN(auto c, Client::Connect(o));
      Client* raw = c.get();
      nodes_[id] = std::move(c);
      return raw;
    }
    return Status::Unavailable("node " + id + " is not registered (down?)");
  }
  // Stops using a cached connection (its node failed or restarted). The
  // client stays alive: Regions opened through it may still refer to it.
  void Forget(const std::string& id) {
    auto it = nodes_.find(id);
    if (it == nodes_.end()) return;
    retired_.push_back(std::move(it->second));
    nodes_.erase(it);
  }

  cluster::PlacementStore& placement() { return *placement_; }
  const ClientOptions& options() const { return options_; }

 private:
  ClientOptions options_;
  std::unique_ptr<cluster::EtcdClient> etcd_;
  std::unique_ptr<cluster::Membership> membership_;
  std::unique_ptr<cluster::PlacementStore> placement_;
  std::map<std::string, std::unique_ptr<Client>> nodes_;
  std::vector<std::unique_ptr<Client>> retired_;
};

Status ReplicatedRegion::Attach() {
  inner_.reset();
  COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement vp, owner_->placement().Get(name_));
  const cluster::RegionPlacement& p = vp.placement;
  auto primary = owner_->Node(p.primary);
  if (!primary.ok()) return primary.status();
  auto region = OpenRegionAtEpoch(**primary, name_, p.epoch, /*replica=*/false);
  if (!region.ok()) {
    owner_->Forget(p.primary);
    return region.status().WithContext("open region '" + name_ + "' on primary " + p.primary);
  }
  RegionInfo info = (*region)->info();
  info.epoch = p.epoch;
  info.replicas = p.replicas;
  info.primary = p.primary;
  // Report the weakest durability among the replicas (each node reports its
  // own pool's level; a backup that cannot be asked now keeps the primary's).
  for (const std::string& node : p.replicas) {
    if (node == p.primary) continue;
    auto c = owner_->Node(node);
    if (!c.ok()) continue;
    auto infos = (*c)->ListRegions();
    if (!infos.ok()) {
      owner_->Forget(node);
      continue;
    }
    for (const auto& i : *infos) {
      if (i.name == name_ && i.durability < info.durability) info.durability = i.durability;
    }
  }
  info_ = std::move(info);
  inner_ = std::move(*region);
  return Status::Ok();
}

Status ReplicatedRegion::Reattach(const Status& cause) {
  if (log_overflow_) {
    inner_.reset();
    return Status::Unavailable("region '" + name_ +
                               "': failover after more than 64 MiB of "
                               "unflushed writes; they cannot be replayed (" +
                               cause.ToString() + ")");
  }
  const uint64_t deadline =
      MonotonicNanos() + uint64_t{owner_->options().failover_timeout_ms} * 1'000'000;
  const std::string old_primary = info_.primary;
  if (cause.code() != StatusCode::kAborted) WaitForNewConfiguration(old_primary, deadline);
  Status last = cause;
  for (;;) {
    inner_.reset();
    if (cause.code() != StatusCode::kAborted) owner_->Forget(old_primary);
    Status s = Attach();
    if (s.ok()) {
      COSMOS_LOG_INFO("cluster client: region '{}' now on {} at epoch {} ({})", name_,
                      info_.primary, info_.epoch, cause.ToString());
      // Replay what the caller wrote since its last completed barrier.
      for (const Entry& e : log_) {
        s = e.flush ? inner_->AsyncFlush(e.ranges) : inner_->Write(e.offset, e.bytes);
        if (!s.ok()) break;
      }
      if (s.ok()) return Status::Ok();
    }
    last = s;
    if (MonotonicNanos() > deadline) {
      inner_.reset();
      return Status(cause.code(), "region '" + name_ + "': no working configuration within " +
                                      std::to_string(owner_->options().failover_timeout_ms) +
                                      " ms after: " + cause.message() +
                                      "; last attempt: " + last.ToString());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kPlacementPollMs));
  }
}

void ReplicatedRegion::WaitForNewConfiguration(const std::string& old_primary, uint64_t deadline) {
  const uint64_t grace = std::min(deadline, MonotonicNanos() + kSamePrimaryGraceMs * 1'000'000);
  while (MonotonicNanos() < grace) {
    auto vp = owner_->placement().Get(name_);
    if (vp.ok() && (vp->placement.epoch != info_.epoch || vp->placement.primary != old_primary)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kPlacementPollMs));
  }
}

}  // namespace

Result<std::unique_ptr<Client>> ConnectCluster(const ClientOptions& options) {
  auto c = std::make_unique<ClusterClient>(options);
  COSMOS_RETURN_IF_ERROR(c->Init());
  return std::unique_ptr<Client>(std::move(c));
}

}  // namespace cosmos::client
