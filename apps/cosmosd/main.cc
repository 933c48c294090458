// cosmosd: the COSMOS memory node. Parses a TOML config and/or flags, opens
// the pools, serves their regions over UDP until SIGTERM/SIGINT, then shuts
// down cleanly (in-flight flushes finish and are answered first).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "common/log.h"
#include "server/daemon_config.h"

int main(int argc, char** argv) {
  cosmos::log::Init("info");
  CLI::App app{"cosmosd: COSMOS memory node serving persistent-memory regions over UDP"};
  std::string config_path, port_file, log_level;
  std::vector<std::string> pool_flags;
  cosmos::server::DaemonConfig cfg;
  std::string listen;
  int port = -1, workers = -1, flushers = -1;
  bool busy_poll = false;
  app.add_option("-c,--config", config_path, "TOML config file (docs/operations.md)");
  app.add_option("--listen", listen, "IPv4 address to bind (default 0.0.0.0)");
  app.add_option("-p,--port", port, "UDP port of worker 0; worker i uses port+i (0 = ephemeral)");
  app.add_option("--workers", workers, "worker threads, one RPC endpoint each (default 2)");
  app.add_option("--flushers", flushers, "threads that run batches waiting for a sync (default 2)");
  app.add_flag("--busy-poll", busy_poll, "workers spin instead of blocking when idle");
  app.add_option("--pool", pool_flags,
                 "pool to serve: "
                 "[NAME=]PATH[,size=MiB][,create][,backend=auto|file|pmem2|pmem2-emulated|dram]");
  app.add_option("--port-file", port_file, "write the bound port of worker 0 here once ready");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
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
  server->reset();
  return 0;
}
