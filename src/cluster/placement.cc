// Placement records, replica choice across failure domains, configuration
// edits, and compare-and-swap reconfiguration in etcd.
#include "cluster/placement.h"

#include <algorithm>
#include <limits>
#include <set>

#include "cluster/json_reader.h"
#include "common/check.h"
#include "common/log.h"

namespace cosmos::cluster {
namespace {

constexpr std::string_view kWhat = "placement record";

bool Contains(const std::vector<std::string>& ids, std::string_view id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

Status NotAReplica(const RegionPlacement& p, std::string_view node) {
  return Status::FailedPrecondition("node " + std::string(node) + " is not a replica of region " +
                                    p.region);
}

}  // namespace

Status ValidatePlacement(const RegionPlacement& p) {
  COSMOS_RETURN_IF_ERROR(ValidateName("region name", p.region));
  if (p.replication_factor < kMinReplicationFactor ||
      p.replication_factor > kMaxReplicationFactor) {
    return Status::InvalidArgument("region " + p.region + ": replication factor " +
                                   std::to_string(p.replication_factor) + " is outside 1..5");
  }
  if (p.replicas.empty() || static_cast<int>(p.replicas.size()) > p.replication_factor) {
    return Status::InvalidArgument("region " + p.region + ": " + std::to_string(p.replicas.size()) +
                                   " replicas for replication factor " +
                                   std::to_string(p.replication_factor));
  }
  std::set<std::string_view> seen;
  for (const std::string& id : p.replicas) {
    COSMOS_RETURN_IF_ERROR(ValidateName("replica node id", id));
    if (!seen.insert(id).second) {
      return Status::InvalidArgument("region " + p.region + ": node " + id + " listed twice");
    }
  }
  if (!Contains(p.replicas, p.primary)) {
    return Status::InvalidArgument("region " + p.region + ": the primary is not a replica");
  }
  if (p.epoch < 1) return Status::InvalidArgument("region " + p.region + ": epoch 0");
  if (!p.joining.empty()) {
    COSMOS_RETURN_IF_ERROR(ValidateName("joining node id", p.joining));
    if (Contains(p.replicas, p.joining)) {
      return Status::InvalidArgument("region " + p.region + ": joining node " + p.joining +
                                     " is already a replica");
    }
  }
  return Status::Ok();
}

std::string EncodePlacement(const RegionPlacement& p) {
  COSMOS_CHECK_OK(ValidatePlacement(p));
  nlohmann::ordered_json doc = {{"format", kPlacementFormat},
                                {"region", p.region},
                                {"replication_factor", p.replication_factor},
                                {"epoch", p.epoch},
                                {"primary", p.primary},
                                {"replicas", p.replicas}};
  if (!p.joining.empty()) doc["joining"] = p.joining;  // absent when empty (format 1 readers)
  return doc.dump();
}

Result<RegionPlacement> DecodePlacement(std::string_view text) {
  COSMOS_ASSIGN_OR_RETURN(json::Json doc, json::ParseObject(text, kWhat));
  COSMOS_RETURN_IF_ERROR(json::RecordFormat(doc, kPlacementFormat, kWhat));
  RegionPlacement p;
  COSMOS_ASSIGN_OR_RETURN(p.region, json::String(doc, "region", kWhat, /*required=*/true));
  COSMOS_ASSIGN_OR_RETURN(uint64_t factor, json::Uint64Number(doc, "replication_factor", kWhat));
  p.replication_factor = static_cast<int>(std::min<uint64_t>(factor, 1000));
  COSMOS_ASSIGN_OR_RETURN(p.epoch, json::Uint64Number(doc, "epoch", kWhat));
  COSMOS_ASSIGN_OR_RETURN(p.primary, json::String(doc, "primary", kWhat, /*required=*/true));
  COSMOS_ASSIGN_OR_RETURN(json::Json replicas, json::Array(doc, "replicas", kWhat));
  if (replicas.size() > static_cast<size_t>(kMaxReplicationFactor)) {
    return Status::Corruption(std::string(kWhat) + ": more than 5 replicas");
  }
  for (const json::Json& id : replicas) {
    if (!id.is_string()) return Status::Corruption(std::string(kWhat) + ": replica not a string");
    p.replicas.push_back(id.get<std::string>());
  }
  COSMOS_ASSIGN_OR_RETURN(p.joining, json::String(doc, "joining", kWhat, /*required=*/false));
  const Status valid = ValidatePlacement(p);
  if (!valid.ok()) return Status::Corruption(std::string(kWhat) + ": " + valid.message());
  return p;
}

Result<std::vector<std::string>> ChooseNodes(const std::vector<NodeRecord>& nodes, size_t count,
                                             const std::vector<std::string>& current) {
  std::set<std::string> used_domains;
  std::vector<const NodeRecord*> candidates;
  for (const NodeRecord& n : nodes) {
    if (Contains(current, n.id)) {
      if (!n.failure_domain.empty()) used_domains.insert(n.failure_domain);
    } else {
      candidates.push_back(&n);
    }
  }
  if (candidates.size() < count) {
    return Status::ResourceExhausted("placement needs " + std::to_string(count) +
                                     " more nodes but only " + std::to_string(candidates.size()) +
                                     " are registered and not yet replicas");
  }
  std::vector<std::string> chosen;
  while (chosen.size() < count) {
    // Rank: an unused domain first, then capacity, then id.
    auto better = [&](const NodeRecord* a, const NodeRecord* b) {
      const bool a_new = a->failure_domain.empty() || !used_domains.contains(a->failure_domain);
      const bool b_new = b->failure_domain.empty() || !used_domains.contains(b->failure_domain);
      if (a_new != b_new) return a_new;
      if (a->capacity_bytes != b->capacity_bytes) return a->capacity_bytes > b->capacity_bytes;
      return a->id < b->id;
    };
    auto best = std::min_element(candidates.begin(), candidates.end(), better);
    chosen.push_back((*best)->id);
    if (!(*best)->failure_domain.empty()) used_domains.insert((*best)->failure_domain);
    candidates.erase(best);
  }
  return chosen;
}

Result<RegionPlacement> WithoutReplica(const RegionPlacement& placement, std::string_view node) {
  if (!Contains(placement.replicas, node)) return NotAReplica(placement, node);
  if (placement.replicas.size() == 1) {
    return Status::FailedPrecondition("region " + placement.region + ": node " + std::string(node) +
                                      " is its last replica");
  }
  RegionPlacement next = placement;
  std::erase(next.replicas, node);
  if (next.primary == node) next.primary = next.replicas.front();
  return next;
}

Result<RegionPlacement> WithReplica(const RegionPlacement& placement, std::string_view node) {
  COSMOS_RETURN_IF_ERROR(ValidateName("node id", node));
  if (Contains(placement.replicas, node)) {
    return Status::FailedPrecondition("node " + std::string(node) +
                                      " is already a replica of region " + placement.region);
  }
  if (!placement.degraded()) {
    return Status::FailedPrecondition("region " + placement.region + " already has " +
                                      std::to_string(placement.replication_factor) + " replicas");
  }
  RegionPlacement next = placement;
  next.replicas.emplace_back(node);
  if (next.joining == node) next.joining.clear();
  return next;
}

Result<RegionPlacement> WithPrimary(const RegionPlacement& placement, std::string_view node) {
  if (!Contains(placement.replicas, node)) return NotAReplica(placement, node);
  RegionPlacement next = placement;
  next.primary = std::string(node);
  return next;
}

Result<PlacementChange> PlacementWatch::Next(std::chrono::milliseconds timeout) {
  if (pending_.empty()) {
    COSMOS_ASSIGN_OR_RETURN(WatchBatch batch, stream_->Next(timeout));
    pending_.insert(pending_.end(), batch.events.begin(), batch.events.end());
    if (pending_.empty()) return Status::Timeout("empty watch batch");
  }
  WatchEvent event = std::move(pending_.front());
  pending_.pop_front();
  PlacementChange change;
  change.mod_revision = event.kv.mod_revision;
  if (event.type == WatchEvent::Type::kPut) {
    COSMOS_ASSIGN_OR_RETURN(RegionPlacement p, DecodePlacement(event.kv.value));
    change.placement = std::move(p);
  }
  return change;
}

Result<VersionedPlacement> PlacementStore::Create(std::string_view region, int replication_factor,
                                                  const std::vector<NodeRecord>& nodes) {
  COSMOS_RETURN_IF_ERROR(ValidateName("region name", region));
  if (replication_factor < kMinReplicationFactor || replication_factor > kMaxReplicationFactor) {
    return Status::InvalidArgument("replication factor " + std::to_string(replication_factor) +
                                   " is outside 1..5");
  }
  COSMOS_ASSIGN_OR_RETURN(std::vector<std::string> replicas,
                          ChooseNodes(nodes, static_cast<size_t>(replication_factor), {}));
  RegionPlacement p;
  p.region = std::string(region);
  p.replication_factor = replication_factor;
  p.primary = replicas.front();
  p.replicas = std::move(replicas);
  p.epoch = 1;
  const std::string key = keys_.Region(region);
  TxnRequest txn;
  txn.compares.push_back(Compare::Absent(key));
  txn.success.push_back(TxnOp::Put(key, EncodePlacement(p)));
  COSMOS_ASSIGN_OR_RETURN(TxnResult result, etcd_.Txn(txn));
  if (!result.succeeded) {
    return Status::AlreadyExists("region " + p.region + " is already placed");
  }
  return VersionedPlacement{std::move(p), result.revision};
}

Result<VersionedPlacement> PlacementStore::Get(std::string_view region) {
  COSMOS_RETURN_IF_ERROR(ValidateName("region name", region));
  COSMOS_ASSIGN_OR_RETURN(RangeResult range, etcd_.Range(KeyRange::Single(keys_.Region(region))));
  if (range.kvs.empty())
    return Status::NotFound("region " + std::string(region) + " is not placed");
  COSMOS_ASSIGN_OR_RETURN(RegionPlacement p, DecodePlacement(range.kvs.front().value));
  if (p.region != region) {
    return Status::Corruption(std::string(kWhat) + " at " + range.kvs.front().key +
                              " names another region");
  }
  return VersionedPlacement{std::move(p), range.kvs.front().mod_revision};
}

Result<RegionList> PlacementStore::List() {
  COSMOS_ASSIGN_OR_RETURN(RangeResult range, etcd_.Range(KeyRange::Prefix(keys_.RegionsPrefix())));
  RegionList list;
  list.revision = range.revision;
  for (const KeyValue& kv : range.kvs) {
    Result<RegionPlacement> p = DecodePlacement(kv.value);
    if (p.ok() && keys_.Region(p->region) == kv.key) {
      list.regions.push_back({std::move(*p), kv.mod_revision});
      continue;
    }
    COSMOS_LOG_WARN("cluster: ignoring malformed placement record at {}: {}", kv.key,
                    p.ok() ? "region does not match its key" : p.status().ToString());
    list.malformed_keys.push_back(kv.key);
  }
  std::sort(list.regions.begin(), list.regions.end(),
            [](const VersionedPlacement& a, const VersionedPlacement& b) {
              return a.placement.region < b.placement.region;
            });
  return list;
}

Result<VersionedPlacement> PlacementStore::Reconfigure(const VersionedPlacement& current,
                                                       RegionPlacement next) {
  if (next.region != current.placement.region) {
    return Status::InvalidArgument("reconfiguration of region " + current.placement.region +
                                   " names region " + next.region);
  }
  if (current.placement.epoch == std::numeric_limits<uint64_t>::max()) {
    return Status::OutOfRange("region " + next.region + ": epoch exhausted");
  }
  next.epoch = current.placement.epoch + 1;
  COSMOS_RETURN_IF_ERROR(ValidatePlacement(next));
  const std::string key = keys_.Region(next.region);
  TxnRequest txn;
  txn.compares.push_back(Compare::ModRevisionIs(key, current.mod_revision));
  txn.success.push_back(TxnOp::Put(key, EncodePlacement(next)));
  COSMOS_ASSIGN_OR_RETURN(
      TxnResult result,
      TxnOrAbort(etcd_, txn,
                 "reconfiguring region " + next.region + " from epoch " +
                     std::to_string(current.placement.epoch) + " (record revision " +
                     std::to_string(current.mod_revision) + ")"));
  COSMOS_LOG_INFO("cluster: region {} epoch {} -> {}: primary {}, {} replica(s)", next.region,
                  current.placement.epoch, next.epoch, next.primary, next.replicas.size());
  return VersionedPlacement{std::move(next), result.revision};
}

Status PlacementStore::Remove(const VersionedPlacement& current) {
  const std::string key = keys_.Region(current.placement.region);
  TxnRequest txn;
  txn.compares.push_back(Compare::ModRevisionIs(key, current.mod_revision));
  txn.success.push_back(TxnOp::Delete(KeyRange::Single(key)));
  return TxnOrAbort(etcd_, txn, "removing region " + current.placement.region).status();
}

Result<std::unique_ptr<PlacementWatch>> PlacementStore::Watch(std::string_view region,
                                                              int64_t start_revision) {
  COSMOS_RETURN_IF_ERROR(ValidateName("region name", region));
  COSMOS_ASSIGN_OR_RETURN(std::unique_ptr<WatchStream> stream,
                          etcd_.Watch(KeyRange::Single(keys_.Region(region)), start_revision));
  return std::make_unique<PlacementWatch>(std::move(stream));
}

}  // namespace cosmos::cluster
