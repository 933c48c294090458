// gRPC C++ echo peer for the rpc benchmark: a callback-API server and a client
// measuring unary round-trip latency (one call at a time) and throughput
// (a fixed number of calls in flight), printing JSON on stdout.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/histogram.h"
#include "echo.grpc.pb.h"

namespace {

class EchoService final : public cosmosbench::Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx,
                                 const cosmosbench::EchoMessage* request,
                                 cosmosbench::EchoMessage* reply) override {
    reply->set_payload(request->payload());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

int Serve(const std::string& address) {
  EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "grpc_echo_peer: cannot listen on %s\n", address.c_str());
    return 1;
  }
  std::printf("listening %s\n", address.c_str());
  std::fflush(stdout);
  server->Wait();
  return 0;
}

int Client(const std::string& address, size_t size, uint64_t rtt_calls, double tput_seconds,
           int inflight) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "grpc_echo_peer: cannot connect to %s\n", address.c_str());
    return 1;
  }
  auto stub = cosmosbench::Echo::NewStub(channel);
  cosmosbench::EchoMessage req;
  req.set_payload(std::string(size, 'x'));
  // Latency: synchronous unary calls, one at a time (after a warm-up).
  cosmos::LatencyHistogram h;
  for (uint64_t i = 0; i < rtt_calls + 200; ++i) {
    grpc::ClientContext ctx;
    cosmosbench::EchoMessage resp;
    const uint64_t t0 = cosmos::MonotonicNanos();
    grpc::Status st = stub->Echo(&ctx, req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "grpc_echo_peer: %s\n", st.error_message().c_str());
      return 1;
    }
    if (i >= 200) h.Record(cosmos::MonotonicNanos() - t0);
  }
  // Throughput: callback API with `inflight` calls outstanding.
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<uint64_t> completed{0};
  std::atomic<bool> stop{false};
  std::atomic<int> live{0};
  struct Call {
    grpc::ClientContext ctx;
    cosmosbench::EchoMessage resp;
  };
  std::function<void()> launch = [&] {
    auto* call = new Call();
    live.fetch_add(1);
    stub->async()->Echo(&call->ctx, &req, &call->resp, [&, call](grpc::Status) {
      delete call;
      completed.fetch_add(1, std::memory_order_relaxed);
      if (!stop.load()) {
        launch();
      }
      if (live.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> l(mu);
        cv.notify_all();
      }
    });
  };
  const uint64_t t0 = cosmos::MonotonicNanos();
  for (int i = 0; i < inflight; ++i) launch();
  std::this_thread::sleep_for(std::chrono::duration<double>(tput_seconds));
  const uint64_t done = completed.load();
  const double secs = static_cast<double>(cosmos::MonotonicNanos() - t0) / 1e9;
  stop = true;
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return live.load() == 0; });
  }
  std::printf("{\"rtt_p50_us\": %.3f, \"rtt_p99_us\": %.3f, \"throughput_rps\": %.1f}\n",
              h.Percentile(0.5) / 1000.0, h.Percentile(0.99) / 1000.0, done / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpc_echo_peer: gRPC C++ echo server/client used as the rpc benchmark's peer"};
  app.require_subcommand(1);
  std::string address = "127.0.0.1:7400";
  auto* server = app.add_subcommand("server", "serve Echo until killed");
  server->add_option("--listen", address, "ip:port")->capture_default_str();
  size_t size = 32;
  uint64_t calls = 20000;
  double seconds = 2;
  int inflight = 64;
  auto* client = app.add_subcommand("client", "measure latency and throughput, print JSON");
  client->add_option("--server", address, "ip:port")->capture_default_str();
  client->add_option("--size", size, "payload bytes")->capture_default_str();
  client->add_option("--rtt-calls", calls, "sequential calls for latency")->capture_default_str();
  client->add_option("--seconds", seconds, "throughput phase length")->capture_default_str();
  client->add_option("--inflight", inflight, "outstanding calls in the throughput phase")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (server->parsed()) return Serve(address);
  return Client(address, size, calls, seconds, inflight);
}
