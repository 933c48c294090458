// rpc_echo: example server and client for the COSMOS RPC layer over UDP.
//   rpc_echo server --listen 127.0.0.1:7000
//   rpc_echo client --server 127.0.0.1:7000 --count 1000 --size 32
#include <csignal>
#include <cstdio>
#include <cstring>
#include <vector>

#include "app_flags.h"
#include "common/clock.h"
#include "common/log.h"
#include "rpc/rpc.h"
#include "rpc/transport_udp.h"

namespace {

using namespace cosmos;
using namespace cosmos::rpc;

constexpr uint16_t kEchoType = 1;
std::atomic<bool> g_stop{false};

bool g_gso = true;

int RunServer(const std::string& listen, bool adaptive, double seconds) {
  auto addr = NetAddress::Parse(listen);
  if (!addr.ok()) {
    std::fprintf(stderr, "rpc_echo: %s\n", addr.status().ToString().c_str());
    return 2;
  }
  Nexus nexus;
  nexus.RegisterHandler(kEchoType, [](Rpc& rpc, const IncomingRequest& req) {
    // Echo the payload back; the slot stays valid until this returns.
    rpc.EnqueueResponse(req.handle, req.payload).IgnoreError();  // fails only for a dead session
  });
  auto transport = OpenUdpTransport({.bind = *addr, .enable_gso = g_gso, .enable_gro = g_gso});
  if (!transport.ok()) {
    std::fprintf(stderr, "rpc_echo: %s\n", transport.status().ToString().c_str());
    return 1;
  }
  RpcOptions options;
  options.poll_mode = adaptive ? PollMode::kAdaptive : PollMode::kBusyPoll;
  auto rpc = Rpc::Create(&nexus, std::move(*transport), options);
  if (!rpc.ok()) {
    std::fprintf(stderr, "rpc_echo: %s\n", rpc.status().ToString().c_str());
    return 1;
  }
  std::printf("rpc_echo server on %s (%s, %s)\n", (*rpc)->local_address().ToString().c_str(),
              std::string((*rpc)->transport().name()).c_str(), adaptive ? "adaptive" : "busy-poll");
  std::fflush(stdout);
  const uint64_t end =
      seconds > 0 ? MonotonicNanos() + static_cast<uint64_t>(seconds * 1e9) : UINT64_MAX;
  while (!g_stop.load() && MonotonicNanos() < end) (*rpc)->RunEventLoopFor(10'000'000);
  const EndpointCounters& c = (*rpc)->counters();
  std::printf(
      "served %llu requests; packets rx %llu tx %llu; dropped: %llu bad, %llu wrong session\n",
      static_cast<unsigned long long>(c.handlers_run),
      static_cast<unsigned long long>(c.packets_received),
      static_cast<unsigned long long>(c.packets_sent),
      static_cast<unsigned long long>(c.bad_packets + c.truncated + c.wrong_version),
      static_cast<unsigned long long>(c.wrong_session));
  return 0;
}

int RunClient(const std::string& server, uint64_t count, size_t size, double timeout_s) {
  auto addr = NetAddress::Parse(server);
  if (!addr.ok()) {
    std::fprintf(stderr, "rpc_echo: %s\n", addr.status().ToString().c_str());
    return 2;
  }
  Nexus nexus;
  auto transport = OpenUdpTransport({.bind = {0, 0}, .enable_gso = g_gso, .enable_gro = g_gso});
  if (!transport.ok()) {
    std::fprintf(stderr, "rpc_echo: %s\n", transport.status().ToString().c_str());
    return 1;
  }
  auto rpc = Rpc::Create(&nexus, std::move(*transport), RpcOptions{});
  if (!rpc.ok()) {
    std::fprintf(stderr, "rpc_echo: %s\n", rpc.status().ToString().c_str());
    return 1;
  }
  auto session = (*rpc)->Connect(*addr, {}, static_cast<uint64_t>(timeout_s * 1e9));
  if (!session.ok()) {
    std::fprintf(stderr, "rpc_echo: connect: %s\n", session.status().ToString().c_str());
    return 1;
  }
  std::vector<std::byte> payload(size);
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<std::byte>(i * 7);
  uint64_t done = 0, wrong = 0, failed = 0;
  Status last_error;
  for (uint64_t i = 0; i < count; ++i) {
    Status s = (*rpc)->EnqueueRequest(
        *session, kEchoType, payload, [&](const Status& st, std::span<const std::byte> resp) {
          ++done;
          if (!st.ok()) {
            ++failed;
            last_error = st;
          } else if (resp.size() != payload.size() ||
                     std::memcmp(resp.data(), payload.data(), resp.size()) != 0) {
            ++wrong;
          }
        });
    if (!s.ok()) {
      std::fprintf(stderr, "rpc_echo: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const uint64_t start = MonotonicNanos();
  if (!(*rpc)->RunUntil([&] { return done == count; }, static_cast<uint64_t>(timeout_s * 1e9))) {
    std::fprintf(stderr, "rpc_echo: only %llu of %llu requests completed\n",
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(count));
    return 1;
  }
  const double secs = static_cast<double>(MonotonicNanos() - start) / 1e9;
  const EndpointCounters& c = (*rpc)->counters();
  std::printf("%llu requests of %zu bytes in %.3f s (%.0f req/s), %llu wrong, %llu failed\n",
              static_cast<unsigned long long>(count), size, secs, count / secs,
              static_cast<unsigned long long>(wrong), static_cast<unsigned long long>(failed));
  std::printf("round trip: %s; retransmissions %llu\n", c.rtt_ns.Summary(1000, "us").c_str(),
              static_cast<unsigned long long>(c.retransmissions));
  std::printf(
      "timeouts %llu, duplicates %llu, out of order %llu, stale %llu; transport %s\n",
      static_cast<unsigned long long>(c.timeouts), static_cast<unsigned long long>(c.duplicates),
      static_cast<unsigned long long>(c.out_of_order), static_cast<unsigned long long>(c.stale),
      std::string((*rpc)->transport().name()).c_str());
  if (failed > 0) std::printf("last error: %s\n", last_error.ToString().c_str());
  (*rpc)->DestroySession(*session).IgnoreError();  // the session exists: created above
  return (wrong == 0 && failed == 0) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  cosmos::log::Init("warn");
  CLI::App app{"rpc_echo: COSMOS RPC example (UDP echo server and client)"};
  app.require_subcommand(1);
  std::string listen = "127.0.0.1:7000";
  bool adaptive = false;
  double seconds = 0;
  auto* server = app.add_subcommand("server", "answer echo requests until interrupted");
  server->add_option("--listen", listen, "ip:port to bind")->capture_default_str();
  server->add_flag("--adaptive", adaptive, "block when idle instead of busy-polling");
  server->add_option("--seconds", seconds, "stop after this many seconds (0 = run until SIGINT)");
  std::string target = "127.0.0.1:7000";
  uint64_t count = 1000;
  size_t size = 32;
  double timeout = 10;
  auto* client = app.add_subcommand("client", "send echo requests and verify the replies");
  client->add_option("--server", target, "server ip:port")->capture_default_str();
  client->add_option("--count", count, "number of requests")->capture_default_str();
  client->add_option("--size", size, "request size in bytes")->capture_default_str();
  client->add_option("--timeout", timeout, "seconds to wait for completion")->capture_default_str();
  bool no_gso = false;
  app.add_flag("--no-gso", no_gso, "do not use UDP GSO/GRO even where the kernel has them");
  cosmos::app::AddVersionFlag(app, "rpc_echo");
  if (auto code = cosmos::app::Parse(app, argc, argv)) return *code;
  g_gso = !no_gso;
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  if (server->parsed()) return RunServer(listen, adaptive, seconds);
  return RunClient(target, count, size, timeout);
}
