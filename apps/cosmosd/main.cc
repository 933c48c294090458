// cosmosd: the COSMOS memory node. Parses a TOML config and/or flags, opens
// the pools, serves their regions over UDP until SIGTERM/SIGINT, then shuts
// down cleanly (in-flight flushes finish and are answered first).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "common/log.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/daemon_config.h"
#include "server/enclave_region_engine.h"

int main(int argc, char** argv) {
  cosmos::log::Init("info");
  CLI::App app{"cosmosd: COSMOS memory node serving persistent-memory regions over UDP"};
  std::string config_path, port_file, log_level;
  std::vector<std::string> pool_flags;
  cosmos::server::DaemonConfig cfg;
  std::string listen;
  int port = -1, workers = -1, flushers = -1, mtu = -1;
  bool busy_poll = false;
  app.add_option("-c,--config", config_path, "TOML config file (docs/operations.md)");
  app.add_option("--listen", listen, "IPv4 address to bind (default 0.0.0.0)");
  app.add_option("-p,--port", port, "UDP port of worker 0; worker i uses port+i (0 = ephemeral)");
  app.add_option("--workers", workers, "worker threads, one RPC endpoint each (default 2)");
  app.add_option("--flushers", flushers, "threads that run batches waiting for a sync (default 2)");
  app.add_flag("--busy-poll", busy_poll, "workers spin instead of blocking when idle");
  app.add_option("--mtu", mtu,
                 "largest UDP payload per datagram, 256..9000 (default 1472); each session uses "
                 "the smaller of this, the client's and the path MTU - 28, so datagrams are "
                 "never IP-fragmented. 8972 suits jumbo frames and loopback");
  app.add_option("--pool", pool_flags,
                 "pool to serve: "
                 "[NAME=]PATH[,size=MiB][,create][,backend=auto|file|pmem2|pmem2-emulated|dram]");
  app.add_option("--port-file", port_file, "write the bound port of worker 0 here once ready");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
  std::string platform_keys, enclave_state;
  std::vector<std::string> allow;
  uint32_t secure_block_size = cosmos::sec::kDefaultBlockSize;
  bool require_secure = false;
  std::string freshness;
  uint32_t relaxed_window = 0, counter_delay_ms = 0, secure_flushers = 0;
  bool accept_counter_reset = false;
  app.add_option("--platform-keys", platform_keys,
                 "enable secure mode: directory of `cosmos keys platform` (platform.key, "
                 "sealing.secret); the enclave is SIMULATED (no hardware isolation)");
  app.add_option("--allow", allow, "client public key file (NAME.pub) allowed to connect securely");
  app.add_option("--enclave-state", enclave_state,
                 "directory of the enclave's trusted counters (default PLATFORM_KEYS/state)");
  app.add_option("--secure-block-size", secure_block_size,
                 "protected-region block size for new secure regions (power of two, 512..65536)")
      ->check(CLI::IsMember({512u, 1024u, 2048u, 4096u, 8192u, 16384u, 32768u, 65536u}));
  app.add_flag("--require-secure", require_secure,
               "refuse plain connections (PermissionDenied); needs --platform-keys");
  app.add_option("--freshness", freshness,
                 "secure regions: strict (default; a flush is acknowledged once its trusted "
                 "counter value is stable, nothing acknowledged can be rolled back) or relaxed "
                 "(acknowledged at once; a crash plus a host rollback can undo at most the "
                 "last --relaxed-window flushes of a region)")
      ->check(CLI::IsMember({"strict", "relaxed"}));
  app.add_option("--relaxed-window", relaxed_window,
                 "relaxed freshness: unstable counter increments (= rollback window in "
                 "flushes) per region (default 8)")
      ->check(CLI::Range(1u, 1'000'000u));
  app.add_option("--counter-delay-ms", counter_delay_ms,
                 "stabilisation delay of the SIMULATED trusted counter, modelling a hardware or "
                 "remote trusted counter (default 20)")
      ->check(CLI::Range(0u, 60'000u));
  app.add_option("--secure-flushers", secure_flushers,
                 "threads running secure-region commits (they sleep in the counter wait; "
                 "default 16)")
      ->check(CLI::Range(1u, 256u));
  app.add_flag("--accept-counter-reset", accept_counter_reset,
               "ONE-OFF OVERRIDE: open secure regions whose trusted counter file is missing or "
               "further behind their sealed state than the freshness mode allows; gives up "
               "rollback detection for them (docs/operations.md)");
  CLI11_PARSE(app, argc, argv);

  if (!config_path.empty()) {
    auto file = cosmos::ConfigFile::Load(config_path);
    if (!file.ok()) {
      std::fprintf(stderr, "cosmosd: %s\n", file.status().ToString().c_str());
      return 2;
    }
    auto loaded = cosmos::server::LoadDaemonConfig(*file, cfg);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cosmosd: %s\n", loaded.status().ToString().c_str());
      return 2;
    }
    cfg = std::move(*loaded);
  }
  if (!listen.empty()) cfg.server.listen_ip = listen;
  if (port >= 0) {
    if (port > 65535) {
      std::fprintf(stderr, "cosmosd: --port must be 0..65535\n");
      return 2;
    }
    cfg.server.port = static_cast<uint16_t>(port);
  }
  if (workers != -1) {
    if (workers < 1 || workers > 64) {
      std::fprintf(stderr, "cosmosd: --workers must be 1..64\n");
      return 2;
    }
    cfg.server.workers = static_cast<uint32_t>(workers);
  }
  if (flushers != -1) {
    if (flushers < 1 || flushers > 64) {
      std::fprintf(stderr, "cosmosd: --flushers must be 1..64\n");
      return 2;
    }
    cfg.server.flushers = static_cast<uint32_t>(flushers);
  }
  if (mtu != -1) {
    if (mtu < 256 || mtu > 9000) {
      std::fprintf(stderr, "cosmosd: --mtu must be 256..9000\n");
      return 2;
    }
    cfg.server.mtu = static_cast<size_t>(mtu);
  }
  if (busy_poll) cfg.server.busy_poll = true;
  if (!log_level.empty()) cfg.log_level = log_level;
  for (const auto& f : pool_flags) {
    auto spec = cosmos::server::ParsePoolFlag(f);
    if (!spec.ok()) {
      std::fprintf(stderr, "cosmosd: %s\n", spec.status().ToString().c_str());
      return 2;
    }
    cfg.pools.push_back(*spec);
  }
  // Secure settings: flags override the file's keys; --allow adds to
  // server.allow.
  cosmos::server::SecureConfig& sec_cfg = cfg.secure;
  if (!platform_keys.empty()) sec_cfg.platform_keys = platform_keys;
  if (!enclave_state.empty()) sec_cfg.enclave_state = enclave_state;
  sec_cfg.allow.insert(sec_cfg.allow.end(), allow.begin(), allow.end());
  if (app.count("--secure-block-size") > 0) sec_cfg.block_size = secure_block_size;
  if (require_secure) sec_cfg.require_secure = true;
  if (!freshness.empty()) sec_cfg.freshness = freshness;
  if (app.count("--relaxed-window") > 0) sec_cfg.relaxed_window = relaxed_window;
  if (app.count("--counter-delay-ms") > 0) sec_cfg.counter_delay_ms = counter_delay_ms;
  if (app.count("--secure-flushers") > 0) cfg.server.secure_flushers = secure_flushers;
  if (accept_counter_reset) sec_cfg.accept_counter_reset = true;
  if (auto s = cosmos::server::ValidateSecureConfig(sec_cfg); !s.ok()) {
    std::fprintf(stderr, "cosmosd: %s\n", s.message().c_str());
    return 2;
  }
  if (!cosmos::log::SetLevel(cfg.log_level)) {
    std::fprintf(stderr, "cosmosd: unknown log level '%s'\n", cfg.log_level.c_str());
    return 2;
  }

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto pools = cosmos::server::OpenPools(cfg.pools);
  if (!pools.ok()) {
    std::fprintf(stderr, "cosmosd: %s\n", pools.status().ToString().c_str());
    return 1;
  }
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
    if (!created.ok()) {
      std::fprintf(stderr, "cosmosd: enclave: %s\n", created.status().ToString().c_str());
      return 1;
    }
    enclave = std::move(*created);
    std::vector<cosmos::sec::Ed25519PublicKey> clients;
    for (const auto& path : sec_cfg.allow) {
      auto key = cosmos::sec::LoadPublicKey(path, cosmos::sec::KeyKind::kClientPublic);
      if (!key.ok()) {
        std::fprintf(stderr, "cosmosd: allow %s: %s\n", path.c_str(),
                     key.status().ToString().c_str());
        return 2;
      }
      clients.push_back(*key);
    }
    if (auto s = enclave->SetClientAllowList(clients); !s.ok()) {
      std::fprintf(stderr, "cosmosd: %s\n", s.ToString().c_str());
      return 1;
    }
    engine =
        std::make_unique<cosmos::server::EnclaveRegionEngine>(enclave.get(), sec_cfg.block_size);
    cfg.server.secure_engine = engine.get();
    cfg.server.require_secure = sec_cfg.require_secure;
    COSMOS_LOG_INFO("cosmosd: secure mode, {}; {} allowed clients; block size {}",
                    enclave->Description(), clients.size(), sec_cfg.block_size);
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
  auto server = cosmos::server::Server::Start(cfg.server, std::move(*pools));
  if (!server.ok()) {
    std::fprintf(stderr, "cosmosd: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << (*server)->port() << "\n";
    }
    if (std::rename(tmp.c_str(), port_file.c_str()) != 0) {
      std::fprintf(stderr, "cosmosd: cannot write %s\n", port_file.c_str());
      return 1;
    }
  }
  COSMOS_LOG_INFO("cosmosd: ready on port {}", (*server)->port());
  int sig = 0;
  sigwait(&stop_signals, &sig);
  COSMOS_LOG_INFO("cosmosd: {} received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Stop();
  engine.reset();  // close protected regions while their pmem regions are still mapped
  server->reset();
  return 0;
}
