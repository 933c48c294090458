// `cosmos cluster status|nodes|regions|add-replica|drain --cluster ETCD`:
// the cluster as etcd and the data path see it, and operator moves of
// replicas (docs/cluster.md, "Operator view"): nodes with
// their zone, lease and whether they answer an RPC handshake; regions with
// their epoch, primary, replicas and whether they run degraded.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "cluster/etcd_client_http.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "cosmos/client.h"

namespace cosmos::cli {
namespace {

struct ClusterFlags {
  std::string endpoints;
  uint32_t probe_timeout_ms = 500;
};

struct NodeView {
  cluster::NodeRecord record;
  bool reachable = false;
  double probe_ms = 0;
  std::string probe_error;
};

struct RegionView {
  cluster::RegionPlacement placement;
  std::vector<std::string> down;  // replicas without a node record (lease gone)
  std::string state;              // ok | degraded | replica-down
};

struct ClusterView {
  int64_t revision = 0;
  std::vector<NodeView> nodes;
  std::vector<RegionView> regions;
};

// Liveness on the data path: a plain RPC handshake with the node, bounded.
void Probe(NodeView& n, uint32_t timeout_ms) {
  ClientOptions o;
  o.server = n.record.address;
  o.busy_poll = false;
  o.timeout_ms = timeout_ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto c = Client::Connect(o);
  n.probe_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  n.reachable = c.ok();
  if (!c.ok()) n.probe_error = c.status().ToString();
}

Result<ClusterView> ReadCluster(const ClusterFlags& f, bool probe) {
  COSMOS_ASSIGN_OR_RETURN(auto endpoints, cluster::ParseEtcdEndpoints(f.endpoints));
  cluster::EtcdHttpOptions eo;
  eo.endpoints = std::move(endpoints);
  COSMOS_ASSIGN_OR_RETURN(auto etcd, cluster::OpenEtcdHttpClient(std::move(eo)));
  cluster::Membership membership(*etcd, cluster::ClusterKeys());
  cluster::PlacementStore placement(*etcd, cluster::ClusterKeys());
  COSMOS_ASSIGN_OR_RETURN(cluster::NodeList nodes, membership.ListNodes());
  COSMOS_ASSIGN_OR_RETURN(cluster::RegionList regions, placement.List());
  ClusterView v;
  v.revision = regions.revision;
  std::set<std::string> registered;
  for (const auto& n : nodes.nodes) {
    registered.insert(n.id);
    NodeView nv;
    nv.record = n;
    if (probe) Probe(nv, f.probe_timeout_ms);
    v.nodes.push_back(std::move(nv));
  }
  for (const auto& vp : regions.regions) {
    RegionView rv;
    rv.placement = vp.placement;
    for (const auto& r : vp.placement.replicas) {
      if (!registered.contains(r)) rv.down.push_back(r);
    }
    if (!rv.down.empty()) {
      rv.state = "replica-down";
    } else if (vp.placement.replicas.size() <
               static_cast<size_t>(vp.placement.replication_factor)) {
      rv.state = "degraded";
    } else {
      rv.state = "ok";
    }
    v.regions.push_back(std::move(rv));
  }
  return v;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

nlohmann::ordered_json NodesJson(const ClusterView& v, bool probed) {
  auto arr = nlohmann::ordered_json::array();
  for (const auto& n : v.nodes) {
    nlohmann::ordered_json j = {{"id", n.record.id},
                                {"address", n.record.address},
                                {"zone", n.record.failure_domain},
                                {"capacity_bytes", n.record.capacity_bytes},
                                {"lease", "alive"}};
    if (probed) {
      j["reachable"] = n.reachable;
      j["probe_ms"] = n.probe_ms;
      if (!n.reachable) j["probe_error"] = n.probe_error;
    }
    arr.push_back(std::move(j));
  }
  return arr;
}

nlohmann::ordered_json RegionsJson(const ClusterView& v) {
  auto arr = nlohmann::ordered_json::array();
  for (const auto& r : v.regions) {
    const auto& p = r.placement;
    arr.push_back({{"name", p.region},
                   {"epoch", p.epoch},
                   {"replication_factor", p.replication_factor},
                   {"primary", p.primary},
                   {"replicas", p.replicas},
                   {"down", r.down},
                   {"state", r.state}});
  }
  return arr;
}

std::string NodesText(const ClusterView& v, bool probed) {
  std::string t = "NODE\tADDRESS\tZONE\tCAPACITY\tLIVENESS\n";
  for (const auto& n : v.nodes) {
    std::string live = "lease alive";
    if (probed) {
      char ms[32];
      std::snprintf(ms, sizeof(ms), "%.1f", n.probe_ms);
      live += n.reachable ? std::string(", answers (handshake ") + ms + " ms)"
                          : ", NOT ANSWERING: " + n.probe_error;
    }
    t += n.record.id + "\t" + n.record.address + "\t" +
         (n.record.failure_domain.empty() ? "-" : n.record.failure_domain) + "\t" +
         HumanBytes(n.record.capacity_bytes) + "\t" + live + "\n";
  }
  t += std::to_string(v.nodes.size()) + " node(s) registered\n";
  return t;
}

std::string RegionsText(const ClusterView& v) {
  std::string t = "REGION\tEPOCH\tCOPIES\tPRIMARY\tREPLICAS\tSTATE\n";
  for (const auto& r : v.regions) {
    const auto& p = r.placement;
    std::string state = r.state;
    if (!r.down.empty()) state += " (" + Join(r.down) + " not registered)";
    t += p.region + "\t" + std::to_string(p.epoch) + "\t" + std::to_string(p.replicas.size()) +
         "/" + std::to_string(p.replication_factor) + "\t" + p.primary + "\t" + Join(p.replicas) +
         "\t" + state + "\n";
  }
  t += std::to_string(v.regions.size()) + " region(s)\n";
  return t;
}

// The cluster's etcd, for the commands that change placements.
struct Etcd {
  std::unique_ptr<cluster::EtcdClient> client;
  std::unique_ptr<cluster::Membership> membership;
  std::unique_ptr<cluster::PlacementStore> placement;
};

Result<Etcd> OpenEtcd(const ClusterFlags& f) {
  COSMOS_ASSIGN_OR_RETURN(auto endpoints, cluster::ParseEtcdEndpoints(f.endpoints));
  cluster::EtcdHttpOptions eo;
  eo.endpoints = std::move(endpoints);
  Etcd e;
  COSMOS_ASSIGN_OR_RETURN(e.client, cluster::OpenEtcdHttpClient(std::move(eo)));
  e.membership = std::make_unique<cluster::Membership>(*e.client, cluster::ClusterKeys());
  e.placement = std::make_unique<cluster::PlacementStore>(*e.client, cluster::ClusterKeys());
  return e;
}

bool Has(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Applies `edit` to the region's current configuration and commits it by
// compare-and-swap (epoch + 1), re-reading and deciding again when another
// reconfiguration won meanwhile (a failover, a resync adding a node).
// `edit` returns the next configuration, or std::nullopt when nothing is
// left to do.
template <typename Edit>
Result<cluster::VersionedPlacement> Commit(Etcd& e, const std::string& region, Edit edit) {
  for (int attempt = 0;; ++attempt) {
    COSMOS_ASSIGN_OR_RETURN(cluster::VersionedPlacement vp, e.placement->Get(region));
    COSMOS_ASSIGN_OR_RETURN(std::optional<cluster::RegionPlacement> next, edit(vp.placement));
    if (!next.has_value()) return vp;
    auto done = e.placement->Reconfigure(vp, *next);
    if (done.ok() || done.status().code() != StatusCode::kAborted || attempt == 20) return done;
  }
}

// Waits until `done(placement)` holds for the region (polls etcd).
template <typename Done>
Result<cluster::VersionedPlacement> WaitPlacement(Etcd& e, const std::string& region,
                                                  uint32_t timeout_s, Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    auto vp = e.placement->Get(region);
    if (vp.ok() && done(vp->placement)) return vp;
    if (std::chrono::steady_clock::now() >= until) {
      return Status::Timeout("region " + region + ": not done after " + std::to_string(timeout_s) +
                             " s" + (vp.ok() ? "" : " (etcd: " + vp.status().ToString() + ")"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// add-replica: raises the region's factor by one when it is full and names
// `node` as the node to add (`joining`), one CAS; the primary resyncs the
// node (only what differs is copied) and adds it by CAS once identical.
Result<cluster::VersionedPlacement> AddReplica(Etcd& e, const std::string& region,
                                               const std::string& node, uint32_t timeout_s) {
  COSMOS_ASSIGN_OR_RETURN(cluster::NodeList nodes, e.membership->ListNodes());
  if (std::none_of(nodes.nodes.begin(), nodes.nodes.end(),
                   [&](const auto& n) { return n.id == node; })) {
    return Status::NotFound("node " + node + " is not registered");
  }
  auto requested = Commit(
      e, region,
      [&](const cluster::RegionPlacement& p) -> Result<std::optional<cluster::RegionPlacement>> {
        if (Has(p.replicas, node)) {
          return Status::AlreadyExists("node " + node + " is already a replica of region " +
                                       region);
        }
        if (p.joining == node) return std::optional<cluster::RegionPlacement>();
        cluster::RegionPlacement next = p;
        if (!p.degraded()) {
          if (p.replication_factor >= 5) {
            return Status::FailedPrecondition("region " + region +
                                              " already has 5 replicas (the maximum)");
          }
          ++next.replication_factor;
        }
        next.joining = node;
        return std::optional(next);
      });
  if (!requested.ok()) return requested.status();
  return WaitPlacement(e, region, timeout_s,
                       [&](const cluster::RegionPlacement& p) { return Has(p.replicas, node); });
}

nlohmann::ordered_json PlacementJson(const cluster::RegionPlacement& p) {
  return {{"name", p.region},
          {"epoch", p.epoch},
          {"replication_factor", p.replication_factor},
          {"primary", p.primary},
          {"replicas", p.replicas}};
}

struct ChangeFlags {
  std::string region, node;
  uint32_t timeout_s = 300;
};

}  // namespace

void RegisterClusterCommands(CLI::App& app, Context& ctx) {
  CLI::App* cl = app.add_subcommand(
      "cluster", "The cluster in etcd: nodes, liveness, regions with epoch and replicas");
  cl->require_subcommand(1);
  auto flags = std::make_shared<ClusterFlags>();
  cl->add_option("--cluster", flags->endpoints, "etcd endpoints (host:port,...)")->required();
  cl->add_option("--probe-timeout-ms", flags->probe_timeout_ms,
                 "Bound of the RPC handshake that checks each node answers")
      ->check(CLI::Range(1u, 60'000u))
      ->capture_default_str();

  cl->add_subcommand("status", "Nodes (with an RPC liveness probe) and regions")
      ->callback([&ctx, flags] {
        auto v = ReadCluster(*flags, /*probe=*/true);
        if (!v.ok()) return void(ctx.status = v.status());
        size_t up = 0, unhealthy = 0;
        for (const auto& n : v->nodes) up += n.reachable ? 1 : 0;
        for (const auto& r : v->regions) unhealthy += r.state == "ok" ? 0 : 1;
        std::string summary = std::to_string(up) + " of " + std::to_string(v->nodes.size()) +
                              " node(s) answering; " + std::to_string(v->regions.size()) +
                              " region(s), " + std::to_string(unhealthy) +
                              " not fully replicated\n";
        ctx.Emit(NodesText(*v, true) + "\n" + RegionsText(*v) + "\n" + summary,
                 {{"etcd_revision", v->revision},
                  {"nodes", NodesJson(*v, true)},
                  {"regions", RegionsJson(*v)}});
      });
  cl->add_subcommand("nodes", "Registered nodes (with an RPC liveness probe)")
      ->callback([&ctx, flags] {
        auto v = ReadCluster(*flags, /*probe=*/true);
        if (!v.ok()) return void(ctx.status = v.status());
        ctx.Emit(NodesText(*v, true), {{"nodes", NodesJson(*v, true)}});
      });
  cl->add_subcommand("regions", "Replicated regions: epoch, primary, replicas, state")
      ->callback([&ctx, flags] {
        auto v = ReadCluster(*flags, /*probe=*/false);
        if (!v.ok()) return void(ctx.status = v.status());
        ctx.Emit(RegionsText(*v), {{"etcd_revision", v->revision}, {"regions", RegionsJson(*v)}});
      });

  auto change = std::make_shared<ChangeFlags>();
  CLI::App* add = cl->add_subcommand(
      "add-replica",
      "Adds NODE as a replica of REGION: the primary resyncs it (copies only what differs) and "
      "adds it by an etcd CAS (epoch + 1); raises the replication factor by one when the region "
      "is not degraded");
  add->add_option("region", change->region, "Replicated region")->required();
  add->add_option("node", change->node, "Registered node id")->required();
  add->add_option("--timeout", change->timeout_s, "Seconds to wait for the resync")
      ->capture_default_str();
  add->callback([&ctx, flags, change] {
    auto e = OpenEtcd(*flags);
    if (!e.ok()) return void(ctx.status = e.status());
    const auto t0 = std::chrono::steady_clock::now();
    auto done = AddReplica(*e, change->region, change->node, change->timeout_s);
    if (!done.ok()) return void(ctx.status = done.status());
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char took[32];
    std::snprintf(took, sizeof(took), "%.1f", secs);
    ctx.Emit(
        "node " + change->node + " added to region " + change->region + " after " + took +
            " s: epoch " + std::to_string(done->placement.epoch) + ", replicas " +
            Join(done->placement.replicas) + "\n",
        {{"added", change->node}, {"seconds", secs}, {"region", PlacementJson(done->placement)}});
  });

  CLI::App* drain = cl->add_subcommand(
      "drain",
      "Moves every region off NODE: for each region on it, a replacement replica is added by "
      "resync (one CAS asks for it, the primary's CAS adds it), then NODE is removed (one CAS); "
      "each step bumps the region's epoch");
  drain->add_option("node", change->node, "Node id to drain")->required();
  drain->add_option("--timeout", change->timeout_s, "Seconds to wait for each region's resync")
      ->capture_default_str();
  drain->callback([&ctx, flags, change] {
    auto e = OpenEtcd(*flags);
    if (!e.ok()) return void(ctx.status = e.status());
    auto regions = e->placement->List();
    if (!regions.ok()) return void(ctx.status = regions.status());
    auto moved = nlohmann::ordered_json::array();
    std::string text;
    const std::string& node = change->node;
    for (const auto& vp : regions->regions) {
      if (!Has(vp.placement.replicas, node)) continue;
      const std::string& region = vp.placement.region;
      const int original_factor = vp.placement.replication_factor;
      // The replacement: placement's choice among the other registered nodes.
      auto nodes = e->membership->ListNodes();
      if (!nodes.ok()) return void(ctx.status = nodes.status());
      auto pick = cluster::ChooseNodes(nodes->nodes, 1, vp.placement.replicas);
      if (!pick.ok()) {
        return void(
            ctx.status = Status::ResourceExhausted(
                "region " + region + ": no node to move it to: " + pick.status().message()));
      }
      const std::string target = pick->front();
      auto added = AddReplica(*e, region, target, change->timeout_s);
      if (!added.ok()) return void(ctx.status = added.status());
      // Then NODE leaves, and the factor returns to what it was.
      auto removed = Commit(*e, region,
                            [&](const cluster::RegionPlacement& p)
                                -> Result<std::optional<cluster::RegionPlacement>> {
                              if (!Has(p.replicas, node))
                                return std::optional<cluster::RegionPlacement>();
                              COSMOS_ASSIGN_OR_RETURN(cluster::RegionPlacement next,
                                                      cluster::WithoutReplica(p, node));
                              // Back to the factor it had (a degraded region stays at its factor).
                              next.replication_factor = std::max<int>(
                                  original_factor, static_cast<int>(next.replicas.size()));
                              return std::optional(next);
                            });
      if (!removed.ok()) return void(ctx.status = removed.status());
      text += "region " + region + ": " + target + " added, " + node + " removed; epoch " +
              std::to_string(removed->placement.epoch) + ", primary " + removed->placement.primary +
              ", replicas " + Join(removed->placement.replicas) + "\n";
      moved.push_back(
          {{"added", target}, {"removed", node}, {"region", PlacementJson(removed->placement)}});
    }
    text += std::to_string(moved.size()) + " region(s) moved off " + node + "\n";
    ctx.Emit(text, {{"node", node}, {"moved", moved}});
  });
}

}  // namespace cosmos::cli
