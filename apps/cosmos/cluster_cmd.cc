// `cosmos cluster status|nodes|regions --cluster ETCD`: the cluster as etcd
// and the data path see it (docs/cluster.md, "Operator view"): nodes with
// their zone, lease and whether they answer an RPC handshake; regions with
// their epoch, primary, replicas and whether they run degraded.
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
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
}

}  // namespace cosmos::cli
