// cosmos-kv: Redis-compatible durable key-value server. Parses flags, opens
// the log device (a local pmem pool region by default, a local file, DRAM, or
// a region of a remote cosmosd, plain or secure, or a replicated region of a
// cluster) and the store, serves RESP2
// until SIGTERM/SIGINT. Under systemd it reports READY=1 once listening and
// STOPPING=1 at shutdown.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "app_flags.h"
#include "common/build_info.h"
#include "common/log.h"
#include "common/size.h"
#include "kv/log_device_file.h"
#include "kv/log_device_memory.h"
#include "kv/log_device_pool.h"
#include "kv/log_device_remote.h"
#include "kv/server.h"
#include "kv/store.h"
#include "service_notify.h"

namespace {

cosmos::kv::RespServer* g_server = nullptr;

void OnSignal(int) {
  if (g_server != nullptr) g_server->Stop();
}

// Parses a size flag (common/size.h grammar; the flags' validators already
// checked it, so this cannot fail).
uint64_t SizeOf(const std::string& text) {
  auto size = cosmos::ParseSize(text);
  return size.ok() ? *size : 0;
}

// sd_notify to the service manager, if any; a failure is logged, not fatal.
void Notify(const std::string& state) {
  if (cosmos::Status s = cosmos::app::NotifyServiceManager(state); !s.ok()) {
    COSMOS_LOG_WARN("cosmos-kv: service manager notification failed: {}", s.ToString());
  }
}

// SIGHUP: a thread that waits for it (blocked in every thread) and reopens
// the log file. cosmos-kv takes flags only, so nothing else can change
// without a restart; the log says so.
class HangupHandler {
 public:
  // REQUIRES: called before any other thread starts (they inherit the mask).
  HangupHandler() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] { Loop(); });
  }
  ~HangupHandler() {
    stop_ = true;
    pthread_kill(thread_.native_handle(), SIGHUP);
    thread_.join();
  }

 private:
  void Loop() {
    int sig = 0;
    while (sigwait(&set_, &sig) == 0 && !stop_) {
      const std::string file = cosmos::log::CurrentFile();
      if (cosmos::Status s = cosmos::log::Reopen(); !s.ok()) {
        COSMOS_LOG_ERROR("cosmos-kv: SIGHUP: {}", s.ToString());
        continue;
      }
      COSMOS_LOG_INFO(
          "cosmos-kv: SIGHUP: reopened log {}; reloaded: nothing else (cosmos-kv takes flags "
          "only: changing any flag needs a restart)",
          file.empty() ? "stderr (nothing to reopen)" : file);
    }
  }

  sigset_t set_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

// The opened log device and how to describe it.
struct Backend {
  std::unique_ptr<cosmos::kv::LogDevice> device;
  std::string security_mode;
  std::string location;  // for the startup log line, when the backend name lacks it
};

int main(int argc, char** argv) {
  CLI::App app{
      "cosmos-kv: Redis-compatible, log-structured, durable key-value server.\n"
      "Every write is acknowledged only once durable (group commit).\n"
      "Backends: pool (default: a region of a local COSMOS pmem pool file), file,\n"
      "memory (not durable), remote (a region of a cosmosd, plain or secure, or with\n"
      "--cluster a replicated region of a cluster of cosmosd nodes)."};
  std::string bind = "127.0.0.1";
  int port = 6379;
  std::string backend_name = "pool";
  std::string pool_path = "cosmos-kv.pool";
  std::string pool_size_text = "256mb";
  std::string region_name = "kv";
  std::string region_size_text;
  std::string log_path = "cosmos-kv.log";
  std::string log_size_text = "256mb";
  std::string server_addr = "127.0.0.1:7410";
  std::string platform_pub, measurement, client_key;
  bool secure = false;
  uint32_t remote_timeout_ms = 10000;
  std::string cluster;
  int replicas = 0;
  std::string remote_poll;
  std::string max_bulk_text = "512mb";
  std::string query_limit_text = "1gb";
  std::string output_limit_text = "1gb";
  cosmos::app::LogFlags log_flags;
  size_t max_clients = 10000;
  size_t early_commit = 0;
  app.add_option("--bind", bind, "IPv4 address to listen on")->capture_default_str();
  app.add_option("--port", port, "TCP port (0 picks a free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  auto* backend_opt =
      app.add_option("--backend", backend_name,
                     "Storage: pool (local pmem pool region), file (local log file), memory "
                     "(DRAM, NOT durable), remote (cosmosd region)")
          ->check(CLI::IsMember({"pool", "file", "memory", "remote"}))
          ->capture_default_str();
  app.add_option("--pool", pool_path, "pool backend: pool file, created if missing")
      ->capture_default_str();
  app.add_option("--pool-size", pool_size_text, "pool backend: size of a new pool file")
      ->check(cosmos::app::SizeValidator())
      ->capture_default_str();
  app.add_option("--region", region_name, "pool/remote backends: region name")
      ->capture_default_str();
  app.add_option("--region-size", region_size_text,
                 "pool/remote backends: size of a new region (pool default: all free space "
                 "of the pool; remote default: 256mb); half of it holds live data")
      ->check(cosmos::app::SizeValidator());
  auto* log_opt = app.add_option("--log", log_path,
                                 "file backend: log file, created if missing (implies "
                                 "--backend file when --backend is not given)")
                      ->capture_default_str();
  app.add_option("--log-size", log_size_text,
                 "file/memory backends: size of a new log (e.g. 256mb, 2gb); half of it "
                 "holds live data")
      ->check(cosmos::app::SizeValidator())
      ->capture_default_str();
  auto* server_opt = app.add_option("--server", server_addr, "remote backend: cosmosd HOST:PORT")
                         ->capture_default_str();
  app.add_option("--cluster", cluster,
                 "remote backend on a cluster (implies --backend remote): comma-separated etcd "
                 "endpoints; the region is a replicated region (docs/cluster.md), every write "
                 "acknowledged once durable on all its replicas, failovers ridden out");
  auto* replicas_opt =
      app.add_option("--replicas", replicas,
                     "--cluster: copies of the region when it is created (1..5; default 1); an "
                     "existing region keeps its own")
          ->check(CLI::Range(1, 5));
  app.add_option("--remote-poll", remote_poll,
                 "remote backend: how the client waits for the node: busy (spin; default with "
                 "--server) or block (sleep in poll(); default with --cluster, where several "
                 "processes share few cores)")
      ->check(CLI::IsMember({"busy", "block"}));
  app.add_option("--platform-pub", platform_pub,
                 "remote backend, secure: the node's platform.pub (cosmos keys platform)");
  app.add_option("--measurement", measurement,
                 "remote backend, secure: the pinned enclave measurement file");
  app.add_option("--client-key", client_key,
                 "remote backend, secure: this client's NAME.key (cosmos keys client)");
  app.add_flag("--secure", secure,
               "remote backend: require a secure region (implied by the three key flags)");
  app.add_option("--remote-timeout-ms", remote_timeout_ms,
                 "remote backend: per-call timeout; a flush that times out fails the store "
                 "(--cluster: also how long a call waits for a failover)")
      ->capture_default_str();
  app.add_option("--proto-max-bulk-len", max_bulk_text,
                 "Largest accepted bulk string / value (like Redis proto-max-bulk-len)")
      ->check(cosmos::app::SizeValidator())
      ->capture_default_str();
  app.add_option("--client-query-buffer-limit", query_limit_text,
                 "Close a client whose unparsed input exceeds this (0: no limit; like Redis "
                 "client-query-buffer-limit)")
      ->check(cosmos::app::SizeValidator())
      ->capture_default_str();
  app.add_option("--client-output-buffer-limit", output_limit_text,
                 "Close a client whose unsent replies exceed this (0: no limit; reading from "
                 "a client already pauses at 64mb of unsent replies)")
      ->check(cosmos::app::SizeValidator())
      ->capture_default_str();
  app.add_option("--maxclients", max_clients, "Maximum concurrent clients")->capture_default_str();
  app.add_option("--group-commit-early", early_commit,
                 "Start a group commit once this many clients wait within one event-loop "
                 "pass (0: at the end of each pass)")
      ->capture_default_str();
  cosmos::app::AddLogFlags(app, log_flags, "info");
  cosmos::app::AddVersionFlag(app, "cosmos-kv");
  cosmos::log::Init("info");
  HangupHandler hangup;  // before any other thread starts
  if (auto code = cosmos::app::Parse(app, argc, argv)) return *code;
  if (cosmos::Status s = cosmos::log::Configure(log_flags.options()); !s.ok()) {
    std::fprintf(stderr, "cosmos-kv: %s\n", s.ToString().c_str());
    return cosmos::app::kExitUsage;
  }
  // Compatibility: `--log PATH` alone keeps selecting the local-file backend.
  if (backend_opt->count() == 0 && log_opt->count() > 0) backend_name = "file";
  if (backend_opt->count() == 0 && !cluster.empty()) backend_name = "remote";
  // Sizes use the one grammar (64M, 64MiB, 64mb, bytes; all units binary).
  const uint64_t log_size = SizeOf(log_size_text), pool_size = SizeOf(pool_size_text),
                 max_bulk = SizeOf(max_bulk_text),
                 region_size = region_size_text.empty() ? 0 : SizeOf(region_size_text);
  if (log_size < (1u << 20) || log_size % 4096 != 0) {
    std::fprintf(stderr, "cosmos-kv: --log-size must be >= 1M and a multiple of 4096\n");
    return cosmos::app::kExitUsage;
  }
  if (pool_size < (2u << 20)) {
    std::fprintf(stderr, "cosmos-kv: --pool-size must be >= 2M\n");
    return cosmos::app::kExitUsage;
  }
  if (!region_size_text.empty() && (region_size < (1u << 20) || region_size % 4096 != 0)) {
    std::fprintf(stderr, "cosmos-kv: --region-size must be >= 1M and a multiple of 4096\n");
    return cosmos::app::kExitUsage;
  }
  if (max_bulk == 0) {
    std::fprintf(stderr, "cosmos-kv: --proto-max-bulk-len must be at least 1\n");
    return cosmos::app::kExitUsage;
  }
  const bool have_keys = !platform_pub.empty() || !measurement.empty() || !client_key.empty();
  if (!cluster.empty() && backend_name != "remote") {
    std::fprintf(stderr, "cosmos-kv: --cluster needs --backend remote\n");
    return cosmos::app::kExitUsage;
  }
  if (!cluster.empty() && server_opt->count() > 0) {
    std::fprintf(stderr,
                 "cosmos-kv: --server and --cluster exclude each other (with --cluster the "
                 "region's nodes come from etcd)\n");
    return cosmos::app::kExitUsage;
  }
  if (cluster.empty() && replicas_opt->count() > 0) {
    std::fprintf(stderr, "cosmos-kv: --replicas needs --cluster\n");
    return cosmos::app::kExitUsage;
  }
  if (backend_name != "remote" && (have_keys || secure)) {
    std::fprintf(stderr, "cosmos-kv: secure key flags and --secure need --backend remote\n");
    return cosmos::app::kExitUsage;
  }
  if (have_keys && (platform_pub.empty() || measurement.empty() || client_key.empty())) {
    std::fprintf(stderr,
                 "cosmos-kv: a secure connection needs all of --platform-pub, --measurement "
                 "and --client-key\n");
    return cosmos::app::kExitUsage;
  }

  // Listen before touching storage: a start that cannot listen (bad
  // address, port taken) creates no log or pool file.
  auto listener = cosmos::kv::BindListener(bind, port);
  if (!listener.ok()) {
    std::fprintf(stderr, "cosmos-kv: %s\n", listener.status().ToString().c_str());
    return listener.status().code() == cosmos::StatusCode::kInvalidArgument
               ? cosmos::app::kExitUsage
               : cosmos::app::kExitFailure;
  }
  struct ListenerGuard {
    int fd;
    ~ListenerGuard() {
      if (fd >= 0) close(fd);
    }
  } listen_guard{*listener};

  Backend backend;
  if (backend_name == "pool") {
    cosmos::kv::PoolLogDeviceOptions o;
    o.path = pool_path;
    o.pool_size = pool_size;
    o.region = region_name;
    o.region_size = region_size;
    auto dev = cosmos::kv::PoolLogDevice::Open(o);
    if (!dev.ok()) {
      COSMOS_LOG_ERROR("cosmos-kv: pool {}: {}", pool_path, dev.status().ToString());
      return 1;
    }
    backend.security_mode = "none (local pool, data not encrypted)";
    backend.device = std::move(*dev);
  } else if (backend_name == "file") {
    auto dev = cosmos::kv::FileLogDevice::Open(log_path, log_size);
    if (!dev.ok()) {
      COSMOS_LOG_ERROR("cosmos-kv: {}", dev.status().ToString());
      return 1;
    }
    backend.security_mode = "none (local file, data not encrypted)";
    backend.location = log_path;
    backend.device = std::move(*dev);
  } else if (backend_name == "memory") {
    backend.device = std::make_unique<cosmos::kv::MemoryLogDevice>(log_size);
    backend.security_mode = "none (DRAM only)";
    backend.location = "DRAM, NOT durable: every key is lost when the process exits";
    COSMOS_LOG_WARN("cosmos-kv: --backend memory is NOT durable: data lives in DRAM only");
  } else {
    cosmos::kv::RemoteLogDeviceOptions o;
    o.client.server = server_addr;
    o.client.cluster = cluster;
    o.client.timeout_ms = remote_timeout_ms;
    o.client.failover_timeout_ms = remote_timeout_ms;
    // Blocking waits: several nodes, etcd and cosmos-kv typically share a few
    // cores in a cluster, where a spinning client takes the core from the
    // node it waits for (docs/cluster.md, "Latency").
    const bool block = remote_poll.empty() ? !cluster.empty() : remote_poll == "block";
    if (block) {
      o.client.busy_poll = false;
      o.client.idle_spin_us = 0;
    }
    o.replicas = replicas;
    o.client.platform_public_key_file = platform_pub;
    o.client.measurement_file = measurement;
    o.client.client_key_file = client_key;
    o.region = region_name;
    o.region_size = region_size == 0 ? (256ull << 20) : region_size;
    o.secure = secure || have_keys;
    auto dev = cosmos::kv::RemoteLogDevice::Open(o);
    if (!dev.ok()) {
      COSMOS_LOG_ERROR("cosmos-kv: remote region '{}' on {}: {}", region_name,
                       cluster.empty() ? server_addr : "cluster " + cluster,
                       dev.status().ToString());
      return 1;
    }
    if ((*dev)->replicated()) {
      backend.security_mode =
          "none (plain replicated region: data unencrypted on the nodes and on the network)";
      if (replicas_opt->count() > 0 && !(*dev)->created() &&
          (*dev)->copies() != static_cast<uint32_t>(replicas)) {
        COSMOS_LOG_WARN(
            "cosmos-kv: region '{}' exists with {} {} in its current configuration; "
            "--replicas {} applies only when the region is created",
            region_name, (*dev)->copies(), (*dev)->copies() == 1 ? "copy" : "copies", replicas);
      }
    } else if ((*dev)->secure()) {
      backend.security_mode =
          (*dev)->simulated_enclave()
              ? "secure-remote (AES-GCM regions, secure channel, simulated enclave: no "
                "hardware isolation)"
              : "secure-remote (AES-GCM regions, secure channel, pinned enclave measurement)";
    } else {
      backend.security_mode =
          "none (plain remote region: data unencrypted on the node and on the network)";
    }
    backend.device = std::move(*dev);
  }

  auto waker = cosmos::kv::Waker::Create();
  if (!waker.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: {}", waker.status().ToString());
    return 1;
  }
  cosmos::kv::StoreOptions sopts;
  sopts.max_value_size = max_bulk;
  sopts.on_durable = [w = waker->get()](uint64_t) { w->Wake(); };
  auto store = cosmos::kv::Store::Open(backend.device.get(), sopts);
  if (!store.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: cannot open log on {}: {}", backend.device->BackendName(),
                     store.status().ToString());
    return 1;
  }
  cosmos::kv::ServerOptions opts;
  opts.bind = bind;
  opts.port = port;
  opts.limits.max_bulk_len = max_bulk;
  opts.max_clients = max_clients;
  opts.query_buffer_limit_bytes = SizeOf(query_limit_text);
  opts.output_buffer_limit_bytes = SizeOf(output_limit_text);
  opts.early_commit_clients = early_commit;
  opts.security_mode = backend.security_mode;
  opts.listen_fd = std::exchange(listen_guard.fd, -1);  // the server owns it now
  auto server = cosmos::kv::RespServer::Listen(store->get(), waker->get(), opts);
  if (!server.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: {}", server.status().ToString());
    return 1;
  }
  const auto stats = (*store)->Stats();
  if (backend.location.empty()) {
    COSMOS_LOG_INFO("cosmos-kv: storage backend: {}", stats.device_backend);
  } else {
    COSMOS_LOG_INFO("cosmos-kv: storage backend: {} ({})", stats.device_backend, backend.location);
  }
  COSMOS_LOG_INFO("cosmos-kv: durability level: {}{}; security mode: {}", stats.durability,
                  stats.durability == "none" ? " (NOT durable)" : "", backend.security_mode);
  COSMOS_LOG_INFO("cosmos-kv: {} keys, log capacity {} bytes per half, proto-max-bulk-len {}",
                  stats.keys, stats.log_capacity, max_bulk);
  COSMOS_LOG_INFO("cosmos-kv: {} ready to accept connections on {}:{}",
                  cosmos::VersionLine("cosmos-kv"), bind, (*server)->port());

  g_server = server->get();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Under systemd (Type=notify): listening, and SIGTERM handled from here on.
  Notify("READY=1\nSTATUS=accepting connections on port " + std::to_string((*server)->port()));

  cosmos::Status s = (*server)->Run();
  Notify("STOPPING=1");
  g_server = nullptr;
  server->reset();
  // A store that failed (e.g. the remote node was lost) served only errors
  // since; exit non-zero so a supervisor sees it and restarts us.
  if (s.ok()) {
    auto probe = (*store)->Lookup("");
    if (!probe.ok()) s = probe.status();
  }
  store->reset();  // commits applied writes, stops the flusher and compactor
  backend.device.reset();
  if (!s.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: {}", s.ToString());
    return 1;
  }
  COSMOS_LOG_INFO("cosmos-kv: shut down cleanly");
  return 0;
}
