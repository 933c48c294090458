// cosmos-kv: Redis-compatible durable key-value server. Parses flags, opens
// the log device (a local pmem pool region by default, a local file, DRAM, or
// a region of a remote cosmosd, plain or secure) and the store, serves RESP2
// until SIGTERM/SIGINT.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "common/log.h"
#include "kv/log_device_file.h"
#include "kv/log_device_memory.h"
#include "kv/log_device_pool.h"
#include "kv/log_device_remote.h"
#include "kv/server.h"
#include "kv/store.h"

namespace {

cosmos::kv::RespServer* g_server = nullptr;

void OnSignal(int) {
  if (g_server != nullptr) g_server->Stop();
}

// Parses sizes such as "512mb", "1gb", "4096" (Redis style units).
bool ParseSize(std::string s, uint64_t* out) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint64_t mult = 1;
  auto strip = [&](const char* suffix, uint64_t m) {
    const std::string suf(suffix);
    if (s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0) {
      s.resize(s.size() - suf.size());
      mult = m;
      return true;
    }
    return false;
  };
  strip("gb", 1ull << 30) || strip("g", 1ull << 30) || strip("mb", 1ull << 20) ||
      strip("m", 1ull << 20) || strip("kb", 1ull << 10) || strip("k", 1ull << 10) || strip("b", 1);
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT64_MAX / mult) return false;
  *out = v * mult;
  return true;
}

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
      "memory (not durable), remote (a region of a cosmosd, plain or secure)."};
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
  std::string max_bulk_text = "512mb";
  std::string query_limit_text = "1gb";
  std::string output_limit_text = "1gb";
  std::string log_level = "info";
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
      ->capture_default_str();
  app.add_option("--region", region_name, "pool/remote backends: region name")
      ->capture_default_str();
  app.add_option("--region-size", region_size_text,
                 "pool/remote backends: size of a new region (pool default: all free space "
                 "of the pool; remote default: 256mb); half of it holds live data");
  auto* log_opt = app.add_option("--log", log_path,
                                 "file backend: log file, created if missing (implies "
                                 "--backend file when --backend is not given)")
                      ->capture_default_str();
  app.add_option("--log-size", log_size_text,
                 "file/memory backends: size of a new log (e.g. 256mb, 2gb); half of it "
                 "holds live data")
      ->capture_default_str();
  app.add_option("--server", server_addr, "remote backend: cosmosd HOST:PORT")
      ->capture_default_str();
  app.add_option("--platform-pub", platform_pub,
                 "remote backend, secure: the node's platform.pub (cosmos keys platform)");
  app.add_option("--measurement", measurement,
                 "remote backend, secure: the pinned enclave measurement file");
  app.add_option("--client-key", client_key,
                 "remote backend, secure: this client's NAME.key (cosmos keys client)");
  app.add_flag("--secure", secure,
               "remote backend: require a secure region (implied by the three key flags)");
  app.add_option("--remote-timeout-ms", remote_timeout_ms,
                 "remote backend: per-call timeout; a flush that times out fails the store")
      ->capture_default_str();
  app.add_option("--proto-max-bulk-len", max_bulk_text,
                 "Largest accepted bulk string / value (like Redis proto-max-bulk-len)")
      ->capture_default_str();
  app.add_option("--client-query-buffer-limit", query_limit_text,
                 "Close a client whose unparsed input exceeds this (0: no limit; like Redis "
                 "client-query-buffer-limit)")
      ->capture_default_str();
  app.add_option("--client-output-buffer-limit", output_limit_text,
                 "Close a client whose unsent replies exceed this (0: no limit; reading from "
                 "a client already pauses at 64mb of unsent replies)")
      ->capture_default_str();
  app.add_option("--maxclients", max_clients, "Maximum concurrent clients")->capture_default_str();
  app.add_option("--group-commit-early", early_commit,
                 "Start a group commit once this many clients wait within one event-loop "
                 "pass (0: at the end of each pass)")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  cosmos::log::Init(log_level);
  // Compatibility: `--log PATH` alone keeps selecting the local-file backend.
  if (backend_opt->count() == 0 && log_opt->count() > 0) backend_name = "file";
  uint64_t log_size = 0, max_bulk = 0, pool_size = 0, region_size = 0;
  if (!ParseSize(log_size_text, &log_size) || log_size < (1u << 20) || log_size % 4096 != 0) {
    std::fprintf(stderr, "cosmos-kv: --log-size must be >= 1mb and a multiple of 4096\n");
    return 2;
  }
  if (!ParseSize(pool_size_text, &pool_size) || pool_size < (2u << 20)) {
    std::fprintf(stderr, "cosmos-kv: --pool-size must be >= 2mb\n");
    return 2;
  }
  if (!region_size_text.empty() && (!ParseSize(region_size_text, &region_size) ||
                                    region_size < (1u << 20) || region_size % 4096 != 0)) {
    std::fprintf(stderr, "cosmos-kv: --region-size must be >= 1mb and a multiple of 4096\n");
    return 2;
  }
  if (!ParseSize(max_bulk_text, &max_bulk) || max_bulk == 0) {
    std::fprintf(stderr, "cosmos-kv: bad --proto-max-bulk-len '%s'\n", max_bulk_text.c_str());
    return 2;
  }
  uint64_t query_limit = 0, output_limit = 0;
  if (!ParseSize(query_limit_text, &query_limit)) {
    std::fprintf(stderr, "cosmos-kv: bad --client-query-buffer-limit '%s'\n",
                 query_limit_text.c_str());
    return 2;
  }
  if (!ParseSize(output_limit_text, &output_limit)) {
    std::fprintf(stderr, "cosmos-kv: bad --client-output-buffer-limit '%s'\n",
                 output_limit_text.c_str());
    return 2;
  }
  const bool have_keys = !platform_pub.empty() || !measurement.empty() || !client_key.empty();
  if (backend_name != "remote" && (have_keys || secure)) {
    std::fprintf(stderr, "cosmos-kv: secure key flags and --secure need --backend remote\n");
    return 2;
  }
  if (have_keys && (platform_pub.empty() || measurement.empty() || client_key.empty())) {
    std::fprintf(stderr,
                 "cosmos-kv: a secure connection needs all of --platform-pub, --measurement "
                 "and --client-key\n");
    return 2;
  }

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
    o.client.timeout_ms = remote_timeout_ms;
    o.client.platform_public_key_file = platform_pub;
    o.client.measurement_file = measurement;
    o.client.client_key_file = client_key;
    o.region = region_name;
    o.region_size = region_size == 0 ? (256ull << 20) : region_size;
    o.secure = secure || have_keys;
    auto dev = cosmos::kv::RemoteLogDevice::Open(o);
    if (!dev.ok()) {
      COSMOS_LOG_ERROR("cosmos-kv: remote region '{}' on {}: {}", region_name, server_addr,
                       dev.status().ToString());
      return 1;
    }
    if ((*dev)->secure()) {
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
  opts.query_buffer_limit_bytes = query_limit;
  opts.output_buffer_limit_bytes = output_limit;
  opts.early_commit_clients = early_commit;
  opts.security_mode = backend.security_mode;
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
  COSMOS_LOG_INFO("cosmos-kv: ready to accept connections on {}:{}", bind, (*server)->port());

  g_server = server->get();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  cosmos::Status s = (*server)->Run();
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
