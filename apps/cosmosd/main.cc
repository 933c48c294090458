// cosmosd: the COSMOS memory node. Parses a TOML config and/or flags, opens
// the pools, serves their regions over UDP until SIGTERM/SIGINT, then shuts
// down cleanly (in-flight flushes finish and are answered first). SIGHUP
// reopens the log file and reloads the settings that can change safely.
// Under systemd it reports READY=1 once serving and STOPPING=1 at shutdown.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <optional>

#include "app_flags.h"
#include "common/build_info.h"
#include "common/log.h"
#include "common/metrics_http.h"
#include "replication/cluster_node.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/daemon_config.h"
#include "server/enclave_region_engine.h"
#include "server/server_metrics.h"
#include "service_notify.h"

namespace {

using cosmos::Result;
using cosmos::Status;
using cosmos::server::DaemonConfig;

// Every flag; an unset optional means "keep the file's value or default".
struct Flags {
  std::string config_path, port_file, listen;
  cosmos::app::LogFlags log;
  std::vector<std::string> pools;
  std::optional<int> port, workers, flushers, mtu;
  bool busy_poll = false;
  std::string platform_keys, enclave_state, freshness;
  std::vector<std::string> allow;
  std::optional<uint32_t> secure_block_size, relaxed_window, counter_delay_ms, secure_flushers;
  bool require_secure = false, accept_counter_reset = false;
  std::string cluster, node_id, zone, advertise;
  std::string peer_platform_keys;
  std::string metrics_listen;
};

void DefineFlags(CLI::App& app, Flags& f) {
  cosmos::app::AddVersionFlag(app, "cosmosd");
  app.add_option("-c,--config", f.config_path, "TOML config file (docs/operations.md)");
  app.add_option("--listen", f.listen,
                 "IPv4 or IPv6 address to bind (default 0.0.0.0; :: listens on IPv6 and IPv4)");
  app.add_option("-p,--port", f.port, "UDP port of worker 0; worker i uses port+i (0 = ephemeral)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--workers", f.workers, "worker threads, one RPC endpoint each (default 2)")
      ->check(CLI::Range(1, 64));
  app.add_option("--flushers", f.flushers,
                 "threads that run batches waiting for a sync (default 2)")
      ->check(CLI::Range(1, 64));
  app.add_flag("--busy-poll", f.busy_poll, "workers spin instead of blocking when idle");
  app.add_option("--mtu", f.mtu,
                 "largest UDP payload per datagram, 256..9000 (default 1472); each session uses "
                 "the smaller of this, the client's and the path MTU - 28, so datagrams are "
                 "never IP-fragmented. 8972 suits jumbo frames and loopback")
      ->check(CLI::Range(256, 9000));
  app.add_option("--pool", f.pools,
                 "pool to serve: [NAME=]PATH[,size=SIZE][,create]"
                 "[,backend=auto|file|pmem2|pmem2-emulated|dram]; SIZE like 64M, 1G or bytes");
  app.add_option("--port-file", f.port_file, "write the bound port of worker 0 here once ready");
  app.add_option("--metrics-listen", f.metrics_listen,
                 "serve Prometheus metrics at http://HOST:PORT/metrics (HOST an IPv4 address or "
                 "[IPv6]; PORT 0 = ephemeral, logged); default off, or server.metrics_listen");
  cosmos::app::AddLogFlags(app, f.log, "info, or server.log_level");
  app.add_option("--platform-keys", f.platform_keys,
                 "enable secure mode: directory of `cosmos keys platform` (platform.key, "
                 "sealing.secret); the enclave is SIMULATED (no hardware isolation)");
  app.add_option("--allow", f.allow,
                 "client public key file (NAME.pub) allowed to connect securely");
  app.add_option("--enclave-state", f.enclave_state,
                 "directory of the enclave's trusted counters (default PLATFORM_KEYS/state)");
  app.add_option("--secure-block-size", f.secure_block_size,
                 "protected-region block size for new secure regions (power of two, 512..65536)")
      ->check(CLI::IsMember({512u, 1024u, 2048u, 4096u, 8192u, 16384u, 32768u, 65536u}));
  app.add_flag("--require-secure", f.require_secure,
               "refuse plain connections (PermissionDenied); needs --platform-keys");
  app.add_option("--freshness", f.freshness,
                 "secure regions: strict (default; a flush is acknowledged once its trusted "
                 "counter value is stable, nothing acknowledged can be rolled back) or relaxed "
                 "(acknowledged at once; a crash plus a host rollback can undo at most the "
                 "last --relaxed-window flushes of a region)")
      ->check(CLI::IsMember({"strict", "relaxed"}));
  app.add_option("--relaxed-window", f.relaxed_window,
                 "relaxed freshness: unstable counter increments (= rollback window in "
                 "flushes) per region (default 8)")
      ->check(CLI::Range(1u, 1'000'000u));
  app.add_option("--counter-delay-ms", f.counter_delay_ms,
                 "stabilisation delay of the SIMULATED trusted counter, modelling a hardware or "
                 "remote trusted counter (default 20)")
      ->check(CLI::Range(0u, 60'000u));
  app.add_option("--secure-flushers", f.secure_flushers,
                 "threads running secure-region commits (they sleep in the counter wait; "
                 "default 16)")
      ->check(CLI::Range(1u, 256u));
  app.add_option("--cluster", f.cluster,
                 "join a cluster: comma-separated etcd endpoints (host:port or http://host:port); "
                 "replicated regions, docs/cluster.md. Without it the node is a single node");
  app.add_option("--node-id", f.node_id,
                 "cluster: this node's unique id (letters, digits . _ : -)");
  app.add_option("--peer-platform-keys", f.peer_platform_keys,
                 "cluster, secure mode: the platform public keys of the cluster's nodes (their "
                 "platform.pub files concatenated); only enclaves whose quotes they sign get an "
                 "attested peer channel for secure replicated regions (docs/cluster.md)");
  app.add_option("--zone", f.zone, "cluster: failure domain label (replicas go to distinct zones)");
  app.add_option("--advertise", f.advertise,
                 "cluster: HOST:PORT other nodes and clients reach this node at (default: the "
                 "--listen address, or 127.0.0.1 when listening on 0.0.0.0, and worker 0's port)");
  app.add_flag("--accept-counter-reset", f.accept_counter_reset,
               "ONE-OFF OVERRIDE: open secure regions whose trusted counter file is missing or "
               "further behind their sealed state than the freshness mode allows; gives up "
               "rollback detection for them (docs/operations.md)");
}

// The configuration: the file's settings (if any) with the flags on top.
// Run at start and again on SIGHUP. InvalidArgument/NotFound name the file
// or the flag at fault.
Result<DaemonConfig> BuildConfig(const Flags& f) {
  DaemonConfig cfg;
  if (!f.config_path.empty()) {
    COSMOS_ASSIGN_OR_RETURN(cosmos::ConfigFile file, cosmos::ConfigFile::Load(f.config_path));
    COSMOS_ASSIGN_OR_RETURN(cfg, cosmos::server::LoadDaemonConfig(file, cfg));
  }
  if (!f.listen.empty()) cfg.server.listen_ip = f.listen;
  if (f.port) cfg.server.port = static_cast<uint16_t>(*f.port);
  if (f.workers) cfg.server.workers = static_cast<uint32_t>(*f.workers);
  if (f.flushers) cfg.server.flushers = static_cast<uint32_t>(*f.flushers);
  if (f.mtu) cfg.server.mtu = static_cast<size_t>(*f.mtu);
  if (f.busy_poll) cfg.server.busy_poll = true;
  if (!f.metrics_listen.empty()) cfg.metrics_listen = f.metrics_listen;
  if (!f.log.level.empty()) cfg.log_level = f.log.level;
  if (!f.log.file.empty()) cfg.log_file = f.log.file;
  if (f.log.format != "text") cfg.log_format = f.log.format;
  COSMOS_RETURN_IF_ERROR(cosmos::log::ValidateLevel(cfg.log_level).WithContext("server.log_level"));
  COSMOS_RETURN_IF_ERROR(
      cosmos::log::ValidateFormat(cfg.log_format).WithContext("server.log_format"));
  for (const auto& text : f.pools) {
    COSMOS_ASSIGN_OR_RETURN(cosmos::server::PoolSpec spec, cosmos::server::ParsePoolFlag(text));
    cfg.pools.push_back(std::move(spec));
  }
  // Secure settings: flags override the file's keys; --allow adds to
  // server.allow.
  cosmos::server::SecureConfig& s = cfg.secure;
  if (!f.platform_keys.empty()) s.platform_keys = f.platform_keys;
  if (!f.enclave_state.empty()) s.enclave_state = f.enclave_state;
  s.allow.insert(s.allow.end(), f.allow.begin(), f.allow.end());
  if (f.secure_block_size) s.block_size = *f.secure_block_size;
  if (f.require_secure) s.require_secure = true;
  if (!f.freshness.empty()) s.freshness = f.freshness;
  if (f.relaxed_window) s.relaxed_window = *f.relaxed_window;
  if (f.counter_delay_ms) s.counter_delay_ms = *f.counter_delay_ms;
  if (f.secure_flushers) cfg.server.secure_flushers = *f.secure_flushers;
  if (f.accept_counter_reset) s.accept_counter_reset = true;
  COSMOS_RETURN_IF_ERROR(cosmos::server::ValidateSecureConfig(s));
  COSMOS_RETURN_IF_ERROR(cosmos::server::ValidateStartConfig(cfg));
  if (f.cluster.empty() && (!f.node_id.empty() || !f.zone.empty() || !f.advertise.empty())) {
    return Status::InvalidArgument("--node-id, --zone and --advertise need --cluster");
  }
  if (!f.peer_platform_keys.empty() && (f.cluster.empty() || s.platform_keys.empty())) {
    return Status::InvalidArgument("--peer-platform-keys needs --cluster and --platform-keys");
  }
  if (!f.cluster.empty() && f.node_id.empty()) {
    return Status::InvalidArgument("--cluster needs --node-id");
  }
  return cfg;
}

Result<std::vector<cosmos::sec::Ed25519PublicKey>> LoadAllowList(
    const std::vector<std::string>& paths) {
  std::vector<cosmos::sec::Ed25519PublicKey> clients;
  for (const auto& path : paths) {
    auto key = cosmos::sec::LoadPublicKey(path, cosmos::sec::KeyKind::kClientPublic);
    if (!key.ok()) return key.status().WithContext("allow " + path);
    clients.push_back(*key);
  }
  return clients;
}

// The settings a SIGHUP cannot apply, compared between the running and the
// reloaded configuration (names as in the config file).
std::vector<std::string> ChangesNeedingRestart(const DaemonConfig& a, const DaemonConfig& b) {
  std::vector<std::string> out;
  auto check = [&](bool differs, const char* name) {
    if (differs) out.emplace_back(name);
  };
  const auto &x = a.server, &y = b.server;
  check(x.listen_ip != y.listen_ip, "server.listen");
  check(x.port != y.port, "server.port");
  check(x.workers != y.workers, "server.workers");
  check(x.flushers != y.flushers, "server.flushers");
  check(x.mtu != y.mtu, "server.mtu");
  check(x.busy_poll != y.busy_poll, "server.busy_poll");
  check(x.idle_spin_us != y.idle_spin_us, "server.idle_spin_us");
  check(x.secure_flushers != y.secure_flushers, "server.secure_flushers");
  check(a.log_format != b.log_format, "server.log_format");
  check(a.log_file != b.log_file, "server.log_file");
  check(a.metrics_listen != b.metrics_listen, "server.metrics_listen");
  bool pools_differ = a.pools.size() != b.pools.size();
  for (size_t i = 0; !pools_differ && i < a.pools.size(); ++i) {
    const auto &p = a.pools[i], &q = b.pools[i];
    pools_differ = p.name != q.name || p.path != q.path || p.size_bytes != q.size_bytes ||
                   p.backend != q.backend || p.create != q.create;
  }
  check(pools_differ, "pool");
  const auto &s = a.secure, &t = b.secure;
  check(s.platform_keys != t.platform_keys, "server.platform_keys");
  check(s.enclave_state != t.enclave_state, "server.enclave_state");
  check(s.block_size != t.block_size, "server.secure_block_size");
  check(s.require_secure != t.require_secure, "server.require_secure");
  check(s.freshness != t.freshness || s.relaxed_window != t.relaxed_window,
        "server.freshness/relaxed_window");
  check(s.counter_delay_ms != t.counter_delay_ms, "server.counter_delay_ms");
  // allow needs a restart only on a plain node (no enclave to hand it to).
  check(s.platform_keys.empty() && s.allow != t.allow, "server.allow");
  return out;
}

bool QosDiffers(const cosmos::server::QosLimits& a, const cosmos::server::QosLimits& b) {
  return a.client_bytes_per_sec != b.client_bytes_per_sec ||
         a.client_ops_per_sec != b.client_ops_per_sec ||
         a.region_bytes_per_sec != b.region_bytes_per_sec ||
         a.region_ops_per_sec != b.region_ops_per_sec || a.burst_seconds != b.burst_seconds;
}

// SIGHUP: reopen the log file, re-read the configuration, apply the log
// level, the QoS limits and (secure mode) the client allow list, and log
// what else changed and needs a restart. A bad new configuration changes
// nothing.
void Reload(const Flags& flags, DaemonConfig& running, cosmos::server::Server& server,
            cosmos::sec::SimulatedEnclave* enclave) {
  if (Status s = cosmos::log::Reopen(); !s.ok()) {
    COSMOS_LOG_ERROR("cosmosd: SIGHUP: {}", s.ToString());
  }
  COSMOS_LOG_INFO("cosmosd: SIGHUP: reloading{}", flags.config_path.empty()
                                                      ? " (no config file: flags only)"
                                                      : " " + flags.config_path);
  auto next = BuildConfig(flags);
  if (!next.ok()) {
    COSMOS_LOG_ERROR("cosmosd: SIGHUP: configuration refused, nothing changed: {}",
                     next.status().ToString());
    return;
  }
  std::vector<std::string> reloaded;
  if (enclave != nullptr && next->secure.allow != running.secure.allow) {
    auto clients = LoadAllowList(next->secure.allow);
    Status s = clients.ok() ? enclave->SetClientAllowList(*clients) : clients.status();
    if (!s.ok()) {
      COSMOS_LOG_ERROR("cosmosd: SIGHUP: allow list kept: {}", s.ToString());
      next->secure.allow = running.secure.allow;
    } else {
      reloaded.push_back("server.allow (" + std::to_string(clients->size()) +
                         " clients; new connections)");
    }
  }
  if (next->log_level != running.log_level) {
    cosmos::log::SetLevel(next->log_level);
    reloaded.push_back("server.log_level = " + next->log_level);
  }
  if (QosDiffers(next->server.qos, running.server.qos)) {
    if (Status s = server.SetQosLimits(next->server.qos); !s.ok()) {
      COSMOS_LOG_ERROR("cosmosd: SIGHUP: QoS limits kept: {}", s.ToString());
      next->server.qos = running.server.qos;
    } else {
      reloaded.push_back("qos (" + cosmos::server::DescribeQos(next->server.qos) + ")");
    }
  }
  std::string list;
  for (const auto& r : reloaded) list += (list.empty() ? "" : ", ") + r;
  COSMOS_LOG_INFO("cosmosd: SIGHUP: reopened log {}; reloaded: {}",
                  cosmos::log::CurrentFile().empty() ? "stderr (nothing to reopen)"
                                                     : cosmos::log::CurrentFile(),
                  list.empty() ? "nothing changed" : list);
  const std::vector<std::string> restart = ChangesNeedingRestart(running, *next);
  if (!restart.empty()) {
    std::string names;
    for (const auto& r : restart) names += (names.empty() ? "" : ", ") + r;
    COSMOS_LOG_WARN("cosmosd: SIGHUP: changed but needs a restart to apply: {}", names);
  }
  // Only what was applied becomes the running configuration.
  running.log_level = next->log_level;
  running.secure.allow = next->secure.allow;
  running.server.qos = next->server.qos;
}

// sd_notify to the service manager, if any; a failure is logged, not fatal.
void Notify(const std::string& state) {
  if (Status s = cosmos::app::NotifyServiceManager(state); !s.ok()) {
    COSMOS_LOG_WARN("cosmosd: service manager notification failed: {}", s.ToString());
  }
}

// Serves `server`'s (and the cluster node's) metrics at cfg.metrics_listen.
// REQUIRES: ValidateStartConfig(cfg) passed; both outlive the result.
Result<std::unique_ptr<cosmos::MetricsHttpServer>> StartMetrics(
    const DaemonConfig& cfg, const cosmos::server::Server& server,
    const cosmos::replication::ClusterNode* cluster_node) {
  COSMOS_ASSIGN_OR_RETURN(cosmos::MetricsAddress address,
                          cosmos::ParseMetricsAddress(cfg.metrics_listen));
  auto collect = [&server, cluster_node](std::vector<cosmos::MetricFamily>* out) {
    cosmos::server::AppendServerMetrics(server, out);
    if (cluster_node != nullptr) cluster_node->AppendMetrics(out);
  };
  COSMOS_ASSIGN_OR_RETURN(auto metrics, cosmos::MetricsHttpServer::Start(address, collect));
  address.port = metrics->port();
  COSMOS_LOG_INFO("cosmosd: Prometheus metrics at http://{}/metrics", address.ToString());
  return metrics;
}

void WritePortFile(const std::string& path, uint16_t port, int* exit_code) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "cosmosd: cannot write %s\n", path.c_str());
    *exit_code = cosmos::app::kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  cosmos::log::Init("info");
  CLI::App app{"cosmosd: COSMOS memory node serving persistent-memory regions over UDP"};
  Flags flags;
  DefineFlags(app, flags);
  if (auto code = cosmos::app::Parse(app, argc, argv)) return *code;

  auto built = BuildConfig(flags);
  if (!built.ok()) {
    std::fprintf(stderr, "cosmosd: %s\n", built.status().ToString().c_str());
    return cosmos::app::kExitUsage;
  }
  DaemonConfig cfg = std::move(*built);
  if (Status s = cosmos::log::Configure({cfg.log_level, cfg.log_file, cfg.log_format}); !s.ok()) {
    std::fprintf(stderr, "cosmosd: %s\n", s.ToString().c_str());
    return cosmos::app::kExitUsage;
  }
  const cosmos::server::SecureConfig& sec_cfg = cfg.secure;

  // Block the stop and reload signals in every thread; the main thread
  // waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Everything that can be checked is checked (BuildConfig, the allow
  // list) before the first pool file is created; a start failing after that
  // removes the pool files it created.
  std::vector<cosmos::sec::Ed25519PublicKey> allowed_clients;
  if (!sec_cfg.platform_keys.empty()) {
    auto clients = LoadAllowList(sec_cfg.allow);
    if (!clients.ok()) {
      std::fprintf(stderr, "cosmosd: %s\n", clients.status().ToString().c_str());
      return cosmos::app::kExitUsage;
    }
    allowed_clients = std::move(*clients);
  }
  std::vector<std::string> created_pools;
  auto pools = cosmos::server::OpenPools(cfg.pools, &created_pools);
  if (!pools.ok()) {
    std::fprintf(stderr, "cosmosd: %s\n", pools.status().ToString().c_str());
    return cosmos::app::kExitFailure;
  }
  auto failed_start = [&](const std::string& what, int code = cosmos::app::kExitFailure) {
    std::fprintf(stderr, "cosmosd: %s\n", what.c_str());
    pools->clear();
    cosmos::server::RemovePoolFiles(created_pools);
    return code;
  };
  std::unique_ptr<cosmos::sec::SimulatedEnclave> enclave;
  std::unique_ptr<cosmos::server::EnclaveRegionEngine> engine;
  if (!sec_cfg.platform_keys.empty()) {
    cosmos::sec::SimulatedEnclaveOptions eo;
    eo.platform_key_path = sec_cfg.platform_keys + "/platform.key";
    eo.sealing_secret_path = sec_cfg.platform_keys + "/sealing.secret";
    eo.state_dir =
        sec_cfg.enclave_state.empty() ? sec_cfg.platform_keys + "/state" : sec_cfg.enclave_state;
    eo.counter_stabilisation_ns = uint64_t{sec_cfg.counter_delay_ms} * 1'000'000;
    eo.region_policy = cosmos::server::RegionPolicyFor(sec_cfg);
    auto created = cosmos::sec::SimulatedEnclave::Create(std::move(eo));
    if (!created.ok()) return failed_start("enclave: " + created.status().ToString());
    enclave = std::move(*created);
    if (auto s = enclave->SetClientAllowList(allowed_clients); !s.ok()) {
      return failed_start(s.ToString());
    }
    if (!flags.peer_platform_keys.empty()) {
      auto peers = cosmos::sec::LoadPublicKeyList(flags.peer_platform_keys,
                                                  cosmos::sec::KeyKind::kPlatformPublic);
      if (!peers.ok()) {
        return failed_start("--peer-platform-keys: " + peers.status().ToString(),
                            cosmos::app::kExitUsage);
      }
      if (auto s = enclave->SetPeerPlatformKeys(*peers); !s.ok()) return failed_start(s.ToString());
      COSMOS_LOG_INFO(
          "cosmosd: {} peer platform keys trusted for attested enclave-to-enclave channels "
          "(secure replicated regions)",
          peers->size());
    }
    engine =
        std::make_unique<cosmos::server::EnclaveRegionEngine>(enclave.get(), sec_cfg.block_size);
    cfg.server.secure_engine = engine.get();
    cfg.server.require_secure = sec_cfg.require_secure;
    COSMOS_LOG_INFO("cosmosd: secure mode, {}; {} allowed clients; block size {}",
                    enclave->Description(), allowed_clients.size(), sec_cfg.block_size);
    COSMOS_LOG_INFO("cosmosd: {}", cosmos::server::DescribeFreshness(sec_cfg));
    if (sec_cfg.accept_counter_reset) {
      COSMOS_LOG_WARN(
          "cosmosd: --accept-counter-reset: secure regions whose trusted counter is missing or "
          "too far behind are opened anyway; rollback detection restarts from their sealed "
          "state. Remove the flag after this start.");
    }
    if (sec_cfg.require_secure) {
      COSMOS_LOG_INFO(
          "cosmosd: --require-secure: plain connections are refused (PermissionDenied)");
    } else {
      COSMOS_LOG_INFO(
          "cosmosd: plain connections are accepted too (plain regions only; "
          "--require-secure refuses them)");
    }
  }
  std::unique_ptr<cosmos::replication::ClusterNode> cluster_node;
  if (!flags.cluster.empty()) {  // flag combinations were checked by BuildConfig
    cosmos::replication::ClusterNodeOptions co;
    co.etcd_endpoints = flags.cluster;
    co.node_id = flags.node_id;
    co.zone = flags.zone;
    for (const auto& p : cfg.pools) co.capacity_bytes += p.size_bytes;
    co.enclave = enclave.get();
    auto created = cosmos::replication::ClusterNode::Create(std::move(co));
    if (!created.ok()) return failed_start(created.status().ToString(), cosmos::app::kExitUsage);
    cluster_node = std::move(*created);
    cfg.server.replication = cluster_node.get();
  }
  auto server = cosmos::server::Server::Start(cfg.server, std::move(*pools));
  if (!server.ok()) {
    cluster_node.reset();
    engine.reset();
    return failed_start(server.status().ToString());
  }
  if (cluster_node != nullptr) {
    std::string address = flags.advertise;
    if (address.empty()) {
      const std::string host =
          cfg.server.listen_ip == "0.0.0.0" ? "127.0.0.1" : cfg.server.listen_ip;
      address = host + ":" + std::to_string((*server)->port());
      if (cfg.server.listen_ip == "0.0.0.0") {
        COSMOS_LOG_WARN(
            "cosmosd: advertising {} to the cluster; pass --advertise HOST:PORT "
            "when other hosts must reach this node",
            address);
      }
    }
    if (Status s = cluster_node->Join(address); !s.ok()) {
      std::fprintf(stderr, "cosmosd: joining the cluster: %s\n", s.ToString().c_str());
      server->reset();
      cluster_node.reset();
      engine.reset();
      cosmos::server::RemovePoolFiles(created_pools);
      return cosmos::app::kExitFailure;
    }
  }
  // After the server and the cluster node: the collector reads both; before
  // the port file and READY, so a bad address fails the start.
  std::unique_ptr<cosmos::MetricsHttpServer> metrics;
  if (!cfg.metrics_listen.empty()) {
    auto started = StartMetrics(cfg, **server, cluster_node.get());
    if (!started.ok()) {
      std::fprintf(stderr, "cosmosd: %s\n", started.status().ToString().c_str());
      server->reset();
      cluster_node.reset();
      engine.reset();
      cosmos::server::RemovePoolFiles(created_pools);
      return cosmos::app::kExitFailure;
    }
    metrics = std::move(*started);
  }
  int exit_code = cosmos::app::kExitOk;
  if (!flags.port_file.empty()) WritePortFile(flags.port_file, (*server)->port(), &exit_code);
  if (exit_code != cosmos::app::kExitOk) return exit_code;
  COSMOS_LOG_INFO("cosmosd: {} ready on port {}", cosmos::VersionLine("cosmosd"),
                  (*server)->port());
  // Under systemd (Type=notify): ready only now, with every socket bound.
  Notify("READY=1\nSTATUS=serving on port " + std::to_string((*server)->port()));
  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    Notify("RELOADING=1");
    Reload(flags, cfg, **server, enclave.get());
    Notify("READY=1");
  }
  Notify("STOPPING=1");
  COSMOS_LOG_INFO("cosmosd: {} received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  metrics.reset();  // its scrapes read the server and the cluster node
  (*server)->Stop();
  cluster_node.reset();  // leaves the cluster (revokes the lease) once nothing is served
  // The region table closes each protected region in the engine before it
  // unmaps the region, so the engine (and enclave) must outlive the server.
  server->reset();
  engine.reset();
  return exit_code;
}
