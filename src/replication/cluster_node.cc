// ClusterNode: registration, placement cache, epoch checks, forwarding to
// backups, failure detection and failover (docs/cluster.md "Data path").
#include "replication/cluster_node.h"

#include <algorithm>
#include <set>

#include "client/replica_region.h"
#include "cluster/etcd_client_http.h"
#include "common/clock.h"
#include "common/log.h"
#include "rpc/rpc.h"
#include "rpc/transport_udp.h"

namespace cosmos::replication {

using protocol::Op;
using protocol::Opcode;
using protocol::OpResult;

namespace {

// Connections from one replication thread to the backups: a Client (and its
// Regions) belongs to the thread that created it, so each server thread that
// forwards keeps its own, keyed by the ClusterNode it serves.
struct ForwardTarget {
  std::unique_ptr<Client> client;
  std::map<std::string, std::pair<uint64_t, std::unique_ptr<Region>>, std::less<>> regions;
};
thread_local std::map<const void*, std::map<std::string, ForwardTarget>> t_forward;

// Resync granularity: one Verify digest and, when it differs, one copy per
// block; passes over the blocks changed meanwhile are bounded.
constexpr uint64_t kResyncBlock = 64 * 1024;
constexpr uint64_t kResyncSubBlock = 4 * 1024;  // compared when a block differs
constexpr int kMaxResyncPasses = 20;

bool Contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Copies the results `results` into `out` (after whatever it already holds).
void AppendResults(std::span<const OpResult> results, protocol::ResponseBuilder* out) {
  for (const OpResult& r : results) {
    std::byte* p = out->Add(r.code, r.payload.size());
    if (!r.payload.empty()) std::memcpy(p, r.payload.data(), r.payload.size());
  }
}

// Payload bytes of the ops that ran (those before the first failure).
uint64_t PayloadBytes(std::span<const Op> ops, std::span<const OpResult> results) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < ops.size() && i < results.size(); ++i) {
    if (results[i].code != StatusCode::kOk) break;
    bytes += ops[i].payload.size();
  }
  return bytes;
}

// Fails a whole batch: `first` for op 0, Cancelled for the rest.
void FailBatch(const Status& first, size_t ops, protocol::ResponseBuilder* out) {
  out->AddError(first);
  for (size_t i = 1; i < ops; ++i) {
    out->AddError(Status::Cancelled("not executed: op 0 of the batch failed"));
  }
}

}  // namespace

Result<std::unique_ptr<ClusterNode>> ClusterNode::Create(ClusterNodeOptions options) {
  COSMOS_RETURN_IF_ERROR(cluster::ValidateName("node id", options.node_id));
  if (options.lease_ttl_seconds < 1) return Status::InvalidArgument("lease TTL must be >= 1 s");
  COSMOS_ASSIGN_OR_RETURN(auto endpoints, cluster::ParseEtcdEndpoints(options.etcd_endpoints));
  cluster::EtcdHttpOptions eo;
  eo.endpoints = std::move(endpoints);
  eo.request_timeout = std::chrono::milliseconds(2000);
  std::unique_ptr<ClusterNode> node(new ClusterNode(std::move(options)));
  COSMOS_ASSIGN_OR_RETURN(node->etcd_, cluster::OpenEtcdHttpClient(std::move(eo)));
  node->membership_ = std::make_unique<cluster::Membership>(*node->etcd_, cluster::ClusterKeys());
  node->placement_ =
      std::make_unique<cluster::PlacementStore>(*node->etcd_, cluster::ClusterKeys());
  return node;
}

ClusterNode::~ClusterNode() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (detect_thread_.joinable()) detect_thread_.join();
  if (resync_thread_.joinable()) resync_thread_.join();
  keeper_.reset();
  if (registration_) {
    Status s = membership_->Deregister(*registration_);
    if (!s.ok())
      COSMOS_LOG_WARN("cluster: deregistering node {}: {}", options_.node_id, s.ToString());
  }
}

Status ClusterNode::Join(const std::string& address) {
  cluster::NodeRecord record;
  record.id = options_.node_id;
  record.address = address;
  record.failure_domain = options_.zone;
  record.capacity_bytes = options_.capacity_bytes;
  COSMOS_ASSIGN_OR_RETURN(cluster::NodeRegistration reg,
                          membership_->Register(record, options_.lease_ttl_seconds));
  record_ = record;
  registration_ = reg;
  keeper_ = std::make_unique<cluster::LeaseKeeper>(
      *etcd_, reg.lease_id, std::chrono::milliseconds(options_.lease_ttl_seconds * 1000 / 3));
  COSMOS_LOG_INFO("cluster: node {} registered at {} (zone '{}', lease {} s)", record.id, address,
                  record.failure_domain, reg.ttl_seconds);
  watch_thread_ = std::thread([this] { WatchLoop(); });
  detect_thread_ = std::thread([this] { DetectLoop(); });
  resync_thread_ = std::thread([this] { ResyncLoop(); });
  return Status::Ok();
}

bool ClusterNode::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_; });
  return !stop_;
}

std::optional<cluster::RegionPlacement> ClusterNode::Known(std::string_view region) {
  std::lock_guard lock(mu_);
  auto it = placements_.find(region);
  if (it == placements_.end()) return std::nullopt;
  return it->second.placement;
}

void ClusterNode::Install(const cluster::VersionedPlacement& vp) {
  std::lock_guard lock(mu_);
  Cached& c = placements_[vp.placement.region];
  if (c.mod_revision > vp.mod_revision) return;
  c.placement = vp.placement;
  c.mod_revision = vp.mod_revision;
}

Result<cluster::RegionPlacement> ClusterNode::PlacementFor(std::string_view region,
                                                           uint64_t epoch) {
  {
    std::lock_guard lock(mu_);
    auto it = placements_.find(region);
    if (it != placements_.end() && it->second.placement.epoch >= epoch) {
      return it->second.placement;
    }
  }
  // A newer epoch than we know (the watch may lag): ask etcd.
  auto vp = placement_->Get(region);
  if (!vp.ok()) {
    if (vp.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("region '" + std::string(region) + "' is not a replicated region");
    }
    return Status::Unavailable("placement of region '" + std::string(region) +
                               "' unknown: " + vp.status().ToString());
  }
  Install(*vp);
  return vp->placement;
}

bool ClusterNode::IsReplicated(std::string_view region) {
  std::lock_guard lock(mu_);
  return placements_.find(region) != placements_.end();
}

// The fencing rule: a request acts in exactly the epoch this node knows.
// Older: Aborted (a newer configuration exists; the sender must not get an
// acknowledgement). Newer: the placement is read from etcd first.
Status ClusterNode::CheckReplica(std::string_view region, uint64_t epoch, bool resync,
                                 bool may_block) {
  if (!may_block) {
    std::lock_guard lock(mu_);
    auto it = placements_.find(region);
    if (it == placements_.end() || it->second.placement.epoch < epoch) {
      return Status::WouldBlock("placement of region '" + std::string(region) + "' at epoch " +
                                std::to_string(epoch) + " needs etcd");
    }
  }
  COSMOS_ASSIGN_OR_RETURN(cluster::RegionPlacement p, PlacementFor(region, epoch));
  if (epoch < p.epoch) {
    return Status::Aborted("region '" + std::string(region) + "': stale epoch " +
                           std::to_string(epoch) + ", the region is at epoch " +
                           std::to_string(p.epoch));
  }
  if (epoch > p.epoch) {
    return Status::Unavailable("region '" + std::string(region) + "': epoch " +
                               std::to_string(epoch) + " not known yet");
  }
  if (resync) {
    // Copies for a node joining the region: never onto a serving replica.
    if (Contains(p.replicas, options_.node_id)) {
      return Status::Aborted("region '" + std::string(region) + "': node " + options_.node_id +
                             " is already a replica at epoch " + std::to_string(epoch));
    }
    return Status::Ok();
  }
  if (!Contains(p.replicas, options_.node_id) || p.primary == options_.node_id) {
    return Status::Aborted("region '" + std::string(region) + "': node " + options_.node_id +
                           " is not a backup at epoch " + std::to_string(epoch));
  }
  return Status::Ok();
}

std::mutex& ClusterNode::RegionMutex(std::string_view region) {
  std::lock_guard lock(mu_);
  auto& m = region_mutexes_[std::string(region)];
  if (m == nullptr) m = std::make_unique<std::mutex>();
  return *m;
}

Result<std::string> ClusterNode::AddressOf(const std::string& node) {
  {
    std::lock_guard lock(mu_);
    if (auto it = addresses_.find(node); it != addresses_.end()) return it->second;
  }
  COSMOS_ASSIGN_OR_RETURN(cluster::NodeList list, membership_->ListNodes());
  std::lock_guard lock(mu_);
  for (const auto& n : list.nodes) addresses_[n.id] = n.address;
  if (auto it = addresses_.find(node); it != addresses_.end()) return it->second;
  return Status::Unavailable("node " + node + " is not registered");
}

void ClusterNode::ExecutePrimary(std::string_view region, std::span<const Op> ops,
                                 const LocalExecutor& local, protocol::ResponseBuilder* out) {
  const uint64_t epoch = ops.front().offset;
  // One batch of a region at a time from check to last backup ack: the
  // backups apply batches in the order the primary did.
  std::lock_guard region_lock(RegionMutex(region));
  auto p = PlacementFor(region, epoch);
  Status check = p.status();
  if (p.ok()) {
    if (epoch < p->epoch) {
      check = Status::Aborted("region '" + std::string(region) + "': stale epoch " +
                              std::to_string(epoch) + ", the region is at epoch " +
                              std::to_string(p->epoch));
    } else if (epoch > p->epoch) {
      check = Status::Unavailable("region '" + std::string(region) + "': epoch " +
                                  std::to_string(epoch) + " not known yet");
    } else if (p->primary != options_.node_id) {
      check = Status::Aborted("region '" + std::string(region) + "': node " + options_.node_id +
                              " is not the primary at epoch " + std::to_string(epoch) + " (" +
                              p->primary + " is)");
    }
  }
  if (!check.ok()) return FailBatch(check, ops.size(), out);

  protocol::ResponseBuilder here;
  local(1, &here);
  std::vector<OpResult> results;
  Status parsed = protocol::ParseResponse(here.bytes(), &results);
  if (!parsed.ok() || results.size() != ops.size() - 1) {
    return FailBatch(Status::Internal("local results of a replicated batch"), ops.size(), out);
  }
  MarkDirty(region, ops.subspan(1), results);
  std::string joiner;  // a node being resynced gets every batch too
  {
    std::lock_guard lock(mu_);
    if (auto it = resyncs_.find(region); it != resyncs_.end() && !it->second.failed) {
      joiner = it->second.joiner;
    }
  }
  std::vector<std::string> backups;
  for (const std::string& r : p->replicas) {
    if (r != options_.node_id) backups.push_back(r);
  }
  // Forward what ran here (the ops before the first failure) to each backup.
  std::vector<std::string> failed;
  Status fenced;
  // Stage the batch on every backup first (posted writes and flushes are
  // buffered and sent at once), then wait for each: the backups work in
  // parallel.
  std::vector<Status> staged;
  const uint64_t forward_started = MonotonicNanos();
  for (const std::string& b : backups) {
    staged.push_back(Forward(b, region, epoch, ops.subspan(1), results));
  }
  for (size_t i = 0; i < backups.size(); ++i) {
    const std::string& b = backups[i];
    Status s = staged[i].ok() ? FinishForward(b, region) : staged[i];
    if (s.ok()) {
      metrics_.forwarded_batches.Add();
      metrics_.forwarded_bytes.Add(PayloadBytes(ops.subspan(1), results));
      continue;
    }
    if (s.code() != StatusCode::kAborted) metrics_.forward_failures.Add();
    COSMOS_LOG_WARN("cluster: region '{}' epoch {}: forwarding to {} failed: {}", region, epoch, b,
                    s.ToString());
    if (s.code() == StatusCode::kAborted) {
      fenced = s;
    } else {
      failed.push_back(b);
    }
  }
  if (!backups.empty()) metrics_.forward_duration.ObserveNs(MonotonicNanos() - forward_started);
  if (!joiner.empty()) {
    Status s = Forward(joiner, region, epoch, ops.subspan(1), results, /*resync=*/true);
    if (s.ok()) s = FinishForward(joiner, region, /*resync=*/true);
    if (!s.ok()) {
      // Not a replica: the batch does not depend on it; the resync stops.
      COSMOS_LOG_WARN("cluster: region '{}': forward to joining node {} failed: {}", region, joiner,
                      s.ToString());
      std::lock_guard lock(mu_);
      if (auto it = resyncs_.find(region); it != resyncs_.end()) it->second.failed = true;
    }
  }
  if (!fenced.ok()) {
    // A backup knows a newer configuration: this node is no longer the
    // primary and must not acknowledge.
    return FailBatch(Status::Aborted("fenced: " + fenced.message()), ops.size(), out);
  }
  for (const std::string& b : failed) RemoveReplica(region, b, epoch);
  if (!failed.empty()) {
    // Acknowledge only if the new configuration holds exactly this node and
    // the backups that did acknowledge; otherwise the client retries.
    auto now = PlacementFor(region, epoch + 1);
    bool covered =
        now.ok() && now->primary == options_.node_id && now->epoch == epoch + failed.size();
    for (const std::string& f : failed)
      covered = covered && now.ok() && !Contains(now->replicas, f);
    if (!covered) {
      return FailBatch(Status::Unavailable("region '" + std::string(region) + "': backup " +
                                           failed.front() + " failed; retry on the new epoch"),
                       ops.size(), out);
    }
  }
  out->AddOk();
  AppendResults(results, out);
}

Status ClusterNode::Forward(const std::string& node, std::string_view region, uint64_t epoch,
                            std::span<const Op> ops, std::span<const OpResult> results,
                            bool resync) {
  auto& targets = t_forward[this];
  COSMOS_ASSIGN_OR_RETURN(std::string address, AddressOf(node));
  if (auto old = targets.find(node); old != targets.end() && old->second.client != nullptr &&
                                     old->second.client->server() != address) {
    targets.erase(old);  // the node came back at another address
  }
  ForwardTarget& t = targets[node];
  auto drop = [&](Status s) {
    targets.erase(node);  // reconnect next time
    return s;
  };
  if (t.client == nullptr) {
    ClientOptions co;
    co.server = address;
    co.busy_poll = false;
    // Blocks at once while a backup works: on a host with fewer cores than
    // busy threads a spinning waiter delays the very backup it waits for.
    co.idle_spin_us = 0;
    // A forward carries the client's whole batch: ask for jumbo datagrams
    // (the session uses the smaller of this, the backup's and the path MTU).
    co.mtu = 8972;
    // The same failure-detection budget as the backups' detector.
    co.heartbeat_interval_ms = static_cast<uint32_t>(options_.heartbeat_interval.count());
    co.missed_heartbeats = options_.missed_heartbeats;
    // The RPC layer raises a session's silence limit with the delays it sees
    // (up to 10 s); on a loaded host a dead backup then held the region's
    // batches until the 2 s call timeout (seen: 4 s per removal in the soak
    // test). A slow backup wrongly removed is resynced back.
    co.max_dead_peer_ms = 500;
    co.timeout_ms = 2000;
    auto c = Client::Connect(co);
    if (!c.ok()) return drop(c.status());
    t.client = std::move(*c);
  }
  auto& [at_epoch, rr] = t.regions[std::string(region) + (resync ? "\n" : "")];
  if (rr == nullptr || at_epoch != epoch) {
    rr.reset();
    auto opened = resync ? client::OpenRegionForResync(*t.client, std::string(region), epoch)
                         : client::OpenRegionAtEpoch(*t.client, std::string(region), epoch, true);
    if (!opened.ok()) return drop(opened.status());
    rr = std::move(*opened);
    at_epoch = epoch;
  }
  Region& r = *rr;
  for (size_t i = 0; i < ops.size() && i < results.size(); ++i) {
    if (results[i].code != StatusCode::kOk) break;  // the rest did not run
    const Op& op = ops[i];
    Status s;
    switch (op.opcode) {
      case Opcode::kWrite:
        s = r.Write(op.offset, op.payload);
        break;
      case Opcode::kFlush:
      case Opcode::kVerify: {
        // A verify is made durable on the backups; the digest is the primary's.
        std::vector<Range> ranges;
        for (const auto& pr : protocol::DecodeRanges(op.payload)) {
          ranges.push_back({pr.offset, pr.length});
        }
        s = r.AsyncFlush(ranges);
        break;
      }
      case Opcode::kWriteAfterFlush:
        s = r.WriteAfterFlush(op.offset, protocol::PayloadU64(op.payload, 0));
        break;
      case Opcode::kCompareAndSwap:
      case Opcode::kFetchAdd: {
        // The primary decided the atomic; the backups store its outcome,
        // ordered and durable like a write-after-flush.
        auto before = protocol::DecodeU64(results[i].payload);
        if (!before.ok()) return drop(before.status());
        uint64_t after = 0;
        if (op.opcode == Opcode::kCompareAndSwap) {
          after = *before == protocol::PayloadU64(op.payload, 0)
                      ? protocol::PayloadU64(op.payload, 1)
                      : *before;
        } else {
          after = *before + protocol::PayloadU64(op.payload, 0);
        }
        s = r.WriteAfterFlush(op.offset, after);
        break;
      }
      default:
        break;  // reads change nothing
    }
    if (!s.ok()) return s.code() == StatusCode::kAborted ? s : drop(s);
  }
  (void)t.client->Poll(0);  // sends what is buffered; FinishForward waits for it
  return Status::Ok();
}

Status ClusterNode::FinishForward(const std::string& node, std::string_view region, bool resync) {
  auto& targets = t_forward[this];
  auto it = targets.find(node);
  if (it == targets.end()) return Status::Internal("forward target vanished");
  auto rit = it->second.regions.find(std::string(region) + (resync ? "\n" : ""));
  if (rit == it->second.regions.end() || rit->second.second == nullptr) {
    return Status::Internal("forward region vanished");
  }
  Status s = rit->second.second->Drain();
  if (!s.ok() && s.code() != StatusCode::kAborted) targets.erase(it);  // reconnect next time
  return s;
}

void ClusterNode::RemoveReplica(std::string_view region, const std::string& dead, uint64_t epoch) {
  {
    // Not a resync candidate at this address until it registers again.
    std::lock_guard lock(mu_);
    if (auto it = addresses_.find(dead); it != addresses_.end()) failed_at_[dead] = it->second;
  }
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto vp = placement_->Get(region);
    if (!vp.ok()) {
      COSMOS_LOG_WARN("cluster: region '{}': cannot remove failed node {} yet (etcd: {}); retrying",
                      region, dead, vp.status().ToString());
      if (!Sleep(std::chrono::milliseconds(100))) return;
      continue;
    }
    Install(*vp);
    // Only the configuration in which the failure was seen is changed: a
    // node acting in an older epoch (a paused old primary) must not edit a
    // newer configuration it knows nothing about.
    if (!Contains(vp->placement.replicas, dead) || vp->placement.epoch != epoch) return;
    auto next = cluster::WithoutReplica(vp->placement, dead);
    if (!next.ok()) {
      COSMOS_LOG_ERROR("cluster: region '{}': node {} failed and is its last replica: {}", region,
                       dead, next.status().ToString());
      return;
    }
    auto done = placement_->Reconfigure(*vp, *next);
    if (done.ok()) {
      Install(*done);
      metrics_.replicas_removed.Add();
      if (done->placement.primary != vp->placement.primary) metrics_.failovers.Add();
      COSMOS_LOG_WARN("cluster: region '{}': removed failed node {}; epoch {}, primary {}", region,
                      dead, done->placement.epoch, done->placement.primary);
      return;
    }
    if (done.status().code() != StatusCode::kAborted) {
      COSMOS_LOG_WARN("cluster: region '{}': reconfiguration waits: {}", region,
                      done.status().ToString());
      if (!Sleep(std::chrono::milliseconds(100))) return;
    }
  }
  COSMOS_LOG_WARN(
      "cluster: region '{}': failed node {} not removed (etcd unreachable); the next failure "
      "seen on it retries",
      region, dead);
}

void ClusterNode::MarkDirty(std::string_view region, std::span<const Op> ops,
                            std::span<const OpResult> results) {
  std::lock_guard lock(mu_);
  auto it = resyncs_.find(region);
  if (it == resyncs_.end()) return;
  for (size_t i = 0; i < ops.size() && i < results.size(); ++i) {
    if (results[i].code != StatusCode::kOk) break;  // the rest did not run
    uint64_t length = 0;
    switch (ops[i].opcode) {
      case Opcode::kWrite:
        length = ops[i].payload.size();
        break;
      case Opcode::kWriteAfterFlush:
      case Opcode::kCompareAndSwap:
      case Opcode::kFetchAdd:
        length = 8;
        break;
      default:
        break;
    }
    if (length == 0) continue;
    for (uint64_t b = ops[i].offset / kResyncBlock;
         b <= (ops[i].offset + length - 1) / kResyncBlock; ++b) {
      ++it->second.changes[b];
    }
  }
}

Status ClusterNode::Resync(const cluster::RegionPlacement& p, const std::string& joiner) {
  const uint64_t epoch = p.epoch;
  COSMOS_ASSIGN_OR_RETURN(std::string joiner_address, AddressOf(joiner));  // fresh: ResyncLoop
  ClientOptions co;
  co.busy_poll = false;
  co.idle_spin_us = 0;
  co.mtu = 8972;
  co.timeout_ms = 5000;
  // The primary's own copy, read through this node's replicated path (each
  // read takes the region's lock, so it is ordered with client batches).
  co.server = record_.address;
  COSMOS_ASSIGN_OR_RETURN(auto self, Client::Connect(co));
  COSMOS_ASSIGN_OR_RETURN(auto source, client::OpenRegionAtEpoch(*self, p.region, epoch, false));
  const uint64_t size = source->info().size;
  co.server = joiner_address;
  co.timeout_ms = 2000;
  auto joiner_connected = Client::Connect(co);
  if (!joiner_connected.ok()) {
    // Still registered but not answering (its lease has not expired yet):
    // not a candidate at this address until it registers again.
    std::lock_guard lock(mu_);
    failed_at_[joiner] = joiner_address;
    return joiner_connected.status();
  }
  auto joiner_client = std::move(*joiner_connected);
  // A returning node keeps its copy (only what differs is copied); a new or
  // emptied one gets a zero-filled region of the same size first.
  bool present = false;
  COSMOS_ASSIGN_OR_RETURN(auto listed, joiner_client->ListRegions());
  for (const auto& info : listed) {
    if (info.name != p.region) continue;
    if (info.size == size) {
      present = true;
    } else {
      COSMOS_RETURN_IF_ERROR(joiner_client->DeleteRegion(p.region));
    }
  }
  COSMOS_LOG_INFO("cluster: region '{}': resyncing node {} ({})", p.region, joiner,
                  present ? "it holds a copy: only what differs is copied" : "new copy");
  if (!present) {
    auto created = joiner_client->CreateRegion(p.region, size, RegionOptions{});
    if (!created.ok()) return created.status();
  }
  COSMOS_ASSIGN_OR_RETURN(auto target,
                          client::OpenRegionForResync(*joiner_client, p.region, epoch));

  {
    // From here on every batch of the region also reaches the joiner (taken
    // under the region's lock: no batch is half-way through).
    std::lock_guard region_lock(RegionMutex(p.region));
    std::lock_guard lock(mu_);
    resyncs_[p.region] = ResyncState{joiner, false, {}};
  }
  struct StopTracking {
    ClusterNode* node;
    std::string region;
    ~StopTracking() {
      std::lock_guard lock(node->mu_);
      node->resyncs_.erase(region);
    }
  } stop_tracking{this, p.region};
  metrics_.resyncs_started.Add();
  metrics_.resyncs_running.Add(1);
  struct Running {
    MetricGauge& gauge;
    ~Running() { gauge.Add(-1); }
  } running{metrics_.resyncs_running};

  // Each 64 KiB block is compared by Verify digest; one that differs is
  // compared again in 4 KiB sub-blocks and only those that differ are
  // copied. A block is clean once its digest matched with no batch writing
  // it meanwhile: every later batch reaches the joiner in the primary's
  // order, so it stays identical. Copied blocks are checked again in the
  // next pass; the node is added once every block is clean.
  const uint64_t blocks = (size + kResyncBlock - 1) / kResyncBlock;
  std::vector<bool> clean(blocks, false);
  uint64_t left = blocks;
  uint64_t copied = 0, coarse_copied = 0, compared = 0, sub_compared = 0;
  std::set<uint64_t> differed;  // blocks found differing at least once
  std::vector<std::byte> buffer(kResyncBlock);
  for (int pass = 1; pass <= kMaxResyncPasses; ++pass) {
    for (uint64_t b = 0; b < blocks; ++b) {
      if (clean[b]) continue;
      if (!Sleep(std::chrono::milliseconds(0))) return Status::Cancelled("node stopping");
      const uint64_t before = Changes(p.region, b);
      if (before == ~uint64_t{0})
        return Status::Unavailable("a forward to the joining node failed");
      const uint64_t offset = b * kResyncBlock;
      const auto bytes = std::span(buffer).first(std::min<uint64_t>(kResyncBlock, size - offset));
      COSMOS_RETURN_IF_ERROR(source->Read(offset, bytes));
      ++compared;
      Status same = target->Verify(offset, bytes);  // digests only cross the network
      if (same.ok()) {
        // A batch that wrote the block meanwhile may have reached the joiner
        // before the check: the block is checked again next pass.
        if (Changes(p.region, b) == before) {
          clean[b] = true;
          --left;
        }
        continue;
      }
      if (same.code() != StatusCode::kIntegrityViolation) return same;
      if (differed.insert(b).second) coarse_copied += bytes.size();
      for (uint64_t at = 0; at < bytes.size(); at += kResyncSubBlock) {
        const auto sub = bytes.subspan(at, std::min<uint64_t>(kResyncSubBlock, bytes.size() - at));
        ++sub_compared;
        Status sub_same = target->Verify(offset + at, sub);
        if (sub_same.ok()) continue;
        if (sub_same.code() != StatusCode::kIntegrityViolation) return sub_same;
        COSMOS_RETURN_IF_ERROR(target->Write(offset + at, sub));
        COSMOS_RETURN_IF_ERROR(target->Flush(offset + at, sub.size()));
        copied += sub.size();
        metrics_.resync_bytes_copied.Add(sub.size());
      }
    }
    if (left == 0) {
      // Every block's digest matched the primary's, and every later batch
      // reaches the joiner too: add it.
      std::lock_guard region_lock(RegionMutex(p.region));
      if (Changes(p.region, 0) == ~uint64_t{0}) {
        return Status::Unavailable("a forward to the joining node failed");
      }
      COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement vp, placement_->Get(p.region));
      if (vp.placement.epoch != epoch || vp.placement.primary != options_.node_id) {
        return Status::Aborted("region reconfigured during the resync");
      }
      COSMOS_ASSIGN_OR_RETURN(cluster::RegionPlacement next,
                              cluster::WithReplica(vp.placement, joiner));
      COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement done, placement_->Reconfigure(vp, next));
      Install(done);
      metrics_.resyncs_completed.Add();
      const double ratio = size == 0 ? 0.0 : double(copied) / double(size);
      const double coarse = size == 0 ? 0.0 : double(coarse_copied) / double(size);
      COSMOS_LOG_WARN(
          "cluster: region '{}': node {} resynced and added: {} of {} bytes copied "
          "(resync_bytes_ratio {:.4f}; 64 KiB blocks alone would copy {} bytes, ratio {:.4f}), "
          "{} digests of 64 KiB blocks and {} of 4 KiB sub-blocks compared, {} pass(es); "
          "epoch {}",
          p.region, joiner, copied, size, ratio, coarse_copied, coarse, compared, sub_compared,
          pass, done.placement.epoch);
      return Status::Ok();
    }
  }
  return Status::Unavailable("resync of node " + joiner + " into region '" + p.region +
                             "' did not converge in " + std::to_string(kMaxResyncPasses) +
                             " passes (" + std::to_string(left) +
                             " blocks written during every check)");
}

uint64_t ClusterNode::Changes(std::string_view region, uint64_t block) {
  std::lock_guard lock(mu_);
  auto it = resyncs_.find(region);
  if (it == resyncs_.end() || it->second.failed) return ~uint64_t{0};
  auto b = it->second.changes.find(block);
  return b == it->second.changes.end() ? 0 : b->second;
}

void ClusterNode::ResyncLoop() {
  while (Sleep(std::chrono::milliseconds(500))) {
    std::vector<cluster::RegionPlacement> degraded;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, c] : placements_) {
        const auto& p = c.placement;
        if (p.primary == options_.node_id &&
            p.replicas.size() < static_cast<size_t>(p.replication_factor)) {
          degraded.push_back(p);
        }
      }
    }
    if (degraded.empty()) continue;
    auto nodes = membership_->ListNodes();
    if (!nodes.ok()) continue;  // etcd down: nothing can be added now anyway
    {
      // A returning node registers at a new address: forget cached ones.
      std::lock_guard lock(mu_);
      addresses_.clear();
      for (const auto& n : nodes->nodes) addresses_[n.id] = n.address;
    }
    // A node seen failing is still listed until its lease expires: only a
    // node registered at another address since (it came back) is eligible.
    std::vector<cluster::NodeRecord> eligible;
    {
      std::lock_guard lock(mu_);
      for (const auto& n : nodes->nodes) {
        auto it = failed_at_.find(n.id);
        if (it == failed_at_.end() || it->second != n.address) eligible.push_back(n);
      }
    }
    for (const auto& p : degraded) {
      if (IsSecureRegion(p.region)) continue;  // resync through enclaves: not built yet
      Result<std::vector<std::string>> pick = std::vector<std::string>{p.joining};
      if (p.joining.empty()) {
        pick = cluster::ChooseNodes(eligible, 1, p.replicas);
      } else if (std::none_of(eligible.begin(), eligible.end(),
                              [&](const auto& n) { return n.id == p.joining; })) {
        continue;  // the node an operator asked for is not registered (yet)
      }
      if (!pick.ok()) continue;  // no node to add yet
      Status s = Resync(p, pick->front());
      if (!s.ok()) {
        metrics_.resyncs_failed.Add();
        COSMOS_LOG_WARN("cluster: region '{}': resync of node {} failed: {}; retrying later",
                        p.region, pick->front(), s.ToString());
      }
    }
  }
}

void ClusterNode::WatchLoop() {
  const std::string prefix = placement_->keys().RegionsPrefix();
  bool logged = false;
  while (Sleep(std::chrono::milliseconds(0))) {
    auto list = placement_->List();
    if (!list.ok()) {
      if (!logged) {
        COSMOS_LOG_WARN("cluster: cannot read placements (etcd: {}); serving what is known",
                        list.status().ToString());
        logged = true;
      }
      Sleep(std::chrono::milliseconds(500));
      continue;
    }
    logged = false;
    {
      std::lock_guard lock(mu_);
      std::map<std::string, Cached, std::less<>> fresh;
      for (const auto& vp : list->regions)
        fresh[vp.placement.region] = {vp.placement, vp.mod_revision};
      placements_ = std::move(fresh);
    }
    auto stream = etcd_->Watch(cluster::KeyRange::Prefix(prefix), list->revision + 1);
    if (!stream.ok()) {
      Sleep(std::chrono::milliseconds(500));
      continue;
    }
    while (Sleep(std::chrono::milliseconds(0))) {
      auto batch = (*stream)->Next(std::chrono::milliseconds(200));
      if (!batch.ok()) {
        if (batch.status().code() == StatusCode::kTimeout) continue;
        break;  // re-list and watch again
      }
      for (const auto& ev : batch->events) {
        const std::string name = ev.kv.key.substr(prefix.size());
        if (ev.type == cluster::WatchEvent::Type::kPut) {
          auto p = cluster::DecodePlacement(ev.kv.value);
          if (p.ok()) Install({*p, ev.kv.mod_revision});
        } else {
          std::lock_guard lock(mu_);
          auto it = placements_.find(name);
          if (it != placements_.end() && it->second.mod_revision <= ev.kv.mod_revision) {
            placements_.erase(it);
          }
        }
      }
    }
  }
}

void ClusterNode::DetectLoop() {
  rpc::Nexus nexus;
  auto transport = rpc::OpenUdpTransport(rpc::UdpTransportOptions{});
  if (!transport.ok()) {
    COSMOS_LOG_ERROR("cluster: failure detector: {}", transport.status().ToString());
    return;
  }
  rpc::RpcOptions ro;
  ro.poll_mode = rpc::PollMode::kAdaptive;
  ro.adaptive_max_block_ns = 10'000'000;  // idle: ~100 wake-ups a second
  ro.heartbeat_interval_ns = static_cast<uint64_t>(options_.heartbeat_interval.count()) * 1'000'000;
  ro.max_missed_heartbeats = options_.missed_heartbeats;
  auto endpoint = rpc::Rpc::Create(&nexus, std::move(*transport), ro);
  if (!endpoint.ok()) {
    COSMOS_LOG_ERROR("cluster: failure detector: {}", endpoint.status().ToString());
    return;
  }
  std::unique_ptr<rpc::Rpc> rpc = std::move(*endpoint);
  struct Probe {
    rpc::SessionId session = 0;
    std::shared_ptr<bool> dead = std::make_shared<bool>(false);
  };
  std::map<std::string, Probe> probes;  // primary node id -> heartbeat session
  uint64_t next_backstop = 0;
  const auto hello = protocol::EncodeHello(protocol::Hello{});
  uint64_t next_register = 0;
  while (Sleep(std::chrono::milliseconds(0))) {
    // A lease lost while etcd was unreachable: register again once it is
    // back (other nodes may meanwhile have failed this node's regions over).
    if (keeper_ != nullptr && keeper_->lost() && MonotonicNanos() >= next_register) {
      next_register = MonotonicNanos() + 1'000'000'000;
      auto reg = membership_->Register(record_, options_.lease_ttl_seconds);
      if (reg.ok()) {
        registration_ = *reg;
        keeper_ = std::make_unique<cluster::LeaseKeeper>(
            *etcd_, reg->lease_id,
            std::chrono::milliseconds(options_.lease_ttl_seconds * 1000 / 3));
        COSMOS_LOG_WARN("cluster: node {} lost its lease and registered again", record_.id);
      }
    }
    // Primaries of the regions this node backs up, with those regions.
    std::map<std::string, std::vector<std::pair<std::string, uint64_t>>> watched;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, c] : placements_) {
        const auto& p = c.placement;
        if (p.primary != options_.node_id && Contains(p.replicas, options_.node_id)) {
          watched[p.primary].emplace_back(name, p.epoch);
        }
      }
    }
    std::set<std::string> dead;
    for (auto it = probes.begin(); it != probes.end();) {
      if (!watched.contains(it->first)) {
        (void)rpc->DestroySession(it->second.session);
        it = probes.erase(it);
      } else if (*it->second.dead) {
        dead.insert(it->first);
        (void)rpc->DestroySession(it->second.session);
        it = probes.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [primary, regions] : watched) {
      if (probes.contains(primary) || dead.contains(primary)) continue;
      auto address = AddressOf(primary);
      if (!address.ok()) continue;  // the backstop below decides
      auto addr = rpc::NetAddress::Parse(*address);
      if (!addr.ok()) continue;
      Probe probe;
      auto flag = probe.dead;
      auto id = rpc->CreateSession(
          *addr, hello,
          [flag](rpc::SessionId, rpc::SessionEvent ev, const Status&, std::span<const std::byte>) {
            if (ev != rpc::SessionEvent::kConnected) *flag = true;
          });
      if (!id.ok()) continue;
      probe.session = *id;
      probes.emplace(primary, std::move(probe));
    }
    // Backstop: a primary whose lease expired is dead even if nobody talks to it.
    if (MonotonicNanos() >= next_backstop && !watched.empty()) {
      next_backstop = MonotonicNanos() + 1'000'000'000;
      if (auto nodes = membership_->ListNodes(); nodes.ok()) {
        std::lock_guard lock(mu_);
        addresses_.clear();
        for (const auto& n : nodes->nodes) addresses_[n.id] = n.address;
        for (const auto& [primary, regions] : watched) {
          if (!addresses_.contains(primary)) dead.insert(primary);
        }
      }
    }
    for (const std::string& d : dead) {
      COSMOS_LOG_WARN("cluster: primary {} is not answering; failing over its regions", d);
      for (const auto& [region, epoch] : watched[d]) RemoveReplica(region, d, epoch);
      std::lock_guard lock(mu_);
      addresses_.erase(d);
    }
    rpc->RunEventLoopFor(static_cast<uint64_t>(options_.heartbeat_interval.count()) * 1'000'000);
  }
}

}  // namespace cosmos::replication
