// cosmos-kv: Redis-compatible durable key-value server. Parses flags, opens
// the log device and store, serves RESP2 until SIGTERM/SIGINT.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "common/log.h"
#include "kv/log_device_file.h"
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

int main(int argc, char** argv) {
  CLI::App app{
      "cosmos-kv: Redis-compatible, log-structured, durable key-value server.\n"
      "Every write is acknowledged only once durable (group commit)."};
  std::string bind = "127.0.0.1";
  int port = 6379;
  std::string log_path = "cosmos-kv.log";
  std::string log_size_text = "256mb";
  std::string max_bulk_text = "512mb";
  std::string log_level = "info";
  size_t max_clients = 10000;
  size_t early_commit = 0;
  app.add_option("--bind", bind, "IPv4 address to listen on")->capture_default_str();
  app.add_option("--port", port, "TCP port (0 picks a free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--log", log_path,
                 "Log file (local-file backend, temporary embedded backend until the pmem "
                 "pool layer lands); created if missing")
      ->capture_default_str();
  app.add_option("--log-size", log_size_text,
                 "Size of a new log file (e.g. 256mb, 2gb); half of it holds live data")
      ->capture_default_str();
  app.add_option("--proto-max-bulk-len", max_bulk_text,
                 "Largest accepted bulk string / value (like Redis proto-max-bulk-len)")
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
  uint64_t log_size = 0, max_bulk = 0;
  if (!ParseSize(log_size_text, &log_size) || log_size < (1u << 20) || log_size % 4096 != 0) {
    std::fprintf(stderr, "cosmos-kv: --log-size must be >= 1mb and a multiple of 4096\n");
    return 2;
  }
  if (!ParseSize(max_bulk_text, &max_bulk) || max_bulk == 0) {
    std::fprintf(stderr, "cosmos-kv: bad --proto-max-bulk-len '%s'\n", max_bulk_text.c_str());
    return 2;
  }

  auto device = cosmos::kv::FileLogDevice::Open(log_path, log_size);
  if (!device.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: {}", device.status().ToString());
    return 1;
  }
  auto waker = cosmos::kv::Waker::Create();
  if (!waker.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: {}", waker.status().ToString());
    return 1;
  }
  cosmos::kv::StoreOptions sopts;
  sopts.max_value_size = max_bulk;
  sopts.on_durable = [w = waker->get()](uint64_t) { w->Wake(); };
  auto store = cosmos::kv::Store::Open(device->get(), sopts);
  if (!store.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: cannot open log {}: {}", log_path, store.status().ToString());
    return 1;
  }
  cosmos::kv::ServerOptions opts;
  opts.bind = bind;
  opts.port = port;
  opts.limits.max_bulk_len = max_bulk;
  opts.max_clients = max_clients;
  opts.early_commit_clients = early_commit;
  opts.security_mode = "none (plain local file; secure remote regions come with the client layer)";
  auto server = cosmos::kv::RespServer::Listen(store->get(), waker->get(), opts);
  if (!server.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: {}", server.status().ToString());
    return 1;
  }
  const auto stats = (*store)->Stats();
  COSMOS_LOG_INFO("cosmos-kv: storage backend: {} ({})", stats.device_backend, log_path);
  COSMOS_LOG_INFO("cosmos-kv: durability level: {}; security mode: none", stats.durability);
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
  store->reset();  // commits applied writes, stops the flusher and compactor
  if (!s.ok()) {
    COSMOS_LOG_ERROR("cosmos-kv: {}", s.ToString());
    return 1;
  }
  COSMOS_LOG_INFO("cosmos-kv: shut down cleanly");
  return 0;
}
