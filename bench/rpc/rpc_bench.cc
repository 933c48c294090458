// rpc benchmark driver: COSMOS rpc against raw UDP baselines (busy-poll
// ping-pong, sendmmsg/recvmmsg batched echo, GSO/GRO bulk) and the gRPC C++
// peer, in alternating rounds (A B A B ...) with medians; writes rpc.json.
#include <arpa/inet.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "common/log.h"
#include "rpc/rpc.h"
#include "rpc/transport_memory.h"
#include "rpc/transport_udp.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

extern char** environ;

namespace {

using namespace cosmos;
using namespace cosmos::rpc;

constexpr uint16_t kEcho = 1;
constexpr uint16_t kSink = 2;  // consumes the request, answers with nothing
constexpr uint32_t kLoopback = 0x7f000001;
constexpr size_t kSmall = 32;
constexpr int kInflight = 64;
constexpr int kServerCpu = 0;
constexpr int kClientCpu = 1;
// Packet credits for the bulk test: 2048 x 1472 bytes in flight (this
// x 2 must fit the 8 MB socket receive buffer the bench requests).
constexpr uint16_t kBulkCredits = 2048;
constexpr int kBulkInflight = 8;  // 1 MB transfers in flight in the bandwidth phase

void PinToCpu(int cpu) {
  const int n = static_cast<int>(std::thread::hardware_concurrency());
  if (n < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % n, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
};

int UdpSocket(NetAddress bind) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int buf = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
  sockaddr_in sa = bind.ToSockaddr();
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  return fd;
}

NetAddress LocalOf(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return NetAddress::FromSockaddr(sa);
}

// ------------------------------------------------------------ raw baselines

// Busy-poll UDP ping-pong of `size`-byte datagrams between two pinned threads.
Latency RawPingPong(size_t size, uint64_t iters) {
  int sfd = UdpSocket({kLoopback, 0});
  const NetAddress saddr = LocalOf(sfd);
  std::atomic<bool> stop{false};
  std::thread server([&] {
    PinToCpu(kServerCpu);
    char buf[2048];
    sockaddr_in from{};
    while (!stop.load(std::memory_order_relaxed)) {
      socklen_t fl = sizeof(from);
      ssize_t n = ::recvfrom(sfd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n > 0) ::sendto(sfd, buf, n, 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  });
  PinToCpu(kClientCpu);
  int cfd = UdpSocket({kLoopback, 0});
  sockaddr_in to = saddr.ToSockaddr();
  std::vector<char> msg(size, 'x');
  char buf[2048];
  std::vector<double> rtts;
  rtts.reserve(iters);
  for (uint64_t i = 0; i < iters + 1000; ++i) {
    const uint64_t t0 = MonotonicNanos();
    ::sendto(cfd, msg.data(), size, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    const uint64_t deadline = t0 + 100'000'000;
    while (::recv(cfd, buf, sizeof(buf), 0) < 0 && MonotonicNanos() < deadline) {
    }
    if (i >= 1000) rtts.push_back(static_cast<double>(MonotonicNanos() - t0));
  }
  stop = true;
  server.join();
  ::close(sfd);
  ::close(cfd);
  return {bench::Quantile(rtts, 0.5) / 1000.0, bench::Quantile(rtts, 0.99) / 1000.0};
}

// Batched echo: the client keeps `kInflight` datagrams outstanding; both sides
// move them with recvmmsg/sendmmsg. Returns echoed datagrams per second.
double RawBatchedEcho(size_t size, double seconds) {
  int sfd = UdpSocket({kLoopback, 0});
  const NetAddress saddr = LocalOf(sfd);
  std::atomic<bool> stop{false};
  constexpr int kBatch = 64;
  std::thread server([&] {
    PinToCpu(kServerCpu);
    std::vector<char> bufs(kBatch * 2048);
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_in addrs[kBatch];
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = {bufs.data() + i * 2048, 2048};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
      }
      int n = ::recvmmsg(sfd, msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) continue;
      for (int i = 0; i < n; ++i) iov[i].iov_len = msgs[i].msg_len;
      int sent = 0;
      while (sent < n) {
        int r = ::sendmmsg(sfd, msgs + sent, n - sent, 0);
        if (r <= 0) break;
        sent += r;
      }
    }
  });
  PinToCpu(kClientCpu);
  int cfd = UdpSocket({kLoopback, 0});
  sockaddr_in to = saddr.ToSockaddr();
  std::vector<char> msg(size, 'x');
  std::vector<char> rbufs(kBatch * 2048);
  auto send_n = [&](int n) {
    mmsghdr m[kBatch];
    iovec v[kBatch];
    for (int i = 0; i < n; ++i) {
      v[i] = {msg.data(), size};
      m[i] = {};
      m[i].msg_hdr.msg_iov = &v[i];
      m[i].msg_hdr.msg_iovlen = 1;
      m[i].msg_hdr.msg_name = &to;
      m[i].msg_hdr.msg_namelen = sizeof(to);
    }
    int sent = 0;
    while (sent < n) {
      int r = ::sendmmsg(cfd, m + sent, n - sent, 0);
      if (r <= 0) break;
      sent += r;
    }
  };
  uint64_t done = 0;
  int outstanding = kInflight;
  send_n(kInflight);
  const uint64_t t0 = MonotonicNanos();
  const uint64_t end = t0 + static_cast<uint64_t>(seconds * 1e9);
  uint64_t last_rx = t0;
  while (true) {
    const uint64_t now = MonotonicNanos();
    if (now >= end) break;
    mmsghdr m[kBatch];
    iovec v[kBatch];
    for (int i = 0; i < kBatch; ++i) {
      v[i] = {rbufs.data() + i * 2048, 2048};
      m[i] = {};
      m[i].msg_hdr.msg_iov = &v[i];
      m[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(cfd, m, kBatch, MSG_DONTWAIT, nullptr);
    if (n > 0) {
      done += n;
      outstanding -= n;
      last_rx = now;
      send_n(n);
      outstanding += n;
    } else if (now - last_rx > 20'000'000) {
      // Lost datagrams (no retransmission in the raw echo): refill the window.
      send_n(kInflight);
      last_rx = now;
    }
  }
  const double secs = static_cast<double>(MonotonicNanos() - t0) / 1e9;
  stop = true;
  server.join();
  ::close(sfd);
  ::close(cfd);
  return done / secs;
}

// Bulk send of 1 MB transfers as GSO super-datagrams (1472-byte segments)
// where the kernel supports it; receiver (GRO) counts payload bytes. Gbit/s.
double RawBulk(double seconds, bool* used_gso) {
  int rfd = UdpSocket({kLoopback, 0});
  int on = 1;
  ::setsockopt(rfd, SOL_UDP, UDP_GRO, &on, sizeof(on));
  const NetAddress raddr = LocalOf(rfd);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes{0};
  std::thread receiver([&] {
    PinToCpu(kServerCpu);
    std::vector<char> buf(65536);
    uint64_t local = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      ssize_t n = ::recv(rfd, buf.data(), buf.size(), 0);
      if (n > 0) local += static_cast<uint64_t>(n);
    }
    bytes = local;
  });
  PinToCpu(kClientCpu);
  int sfd = UdpSocket({kLoopback, 0});
  sockaddr_in to = raddr.ToSockaddr();
  constexpr size_t kSeg = 1472;
  constexpr size_t kSegs = 44;  // 64768 bytes per super-datagram
  // Each 1 MB transfer is sent from its own 1 MB message buffer, rotating
  // over as many buffers as COSMOS keeps in flight (kBulkInflight), so both
  // sides stream their messages from the same amount of memory. (Sending one
  // 64 KB buffer over and over keeps it in L2 and measures cache bandwidth.)
  std::vector<std::vector<char>> messages(kBulkInflight, std::vector<char>(1 << 20, 'b'));
  int seg = kSeg;
  *used_gso = ::setsockopt(sfd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0;
  const uint64_t t0 = MonotonicNanos();
  const uint64_t end = t0 + static_cast<uint64_t>(seconds * 1e9);
  size_t next_message = 0;
  while (MonotonicNanos() < end) {
    // One 1 MB transfer.
    const char* msg = messages[next_message++ % messages.size()].data();
    size_t off = 0;
    while (off < (1u << 20)) {
      const size_t left = (1u << 20) - off;
      const size_t chunk = *used_gso ? std::min(left, kSeg * kSegs) : std::min(left, kSeg);
      ssize_t w = ::sendto(sfd, msg + off, chunk, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
      if (w > 0) off += chunk;
    }
  }
  // Let the receiver drain what is queued, then stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double secs = static_cast<double>(MonotonicNanos() - t0) / 1e9;
  stop = true;
  receiver.join();
  ::close(rfd);
  ::close(sfd);
  return static_cast<double>(bytes.load()) * 8 / secs / 1e9;
}

// ------------------------------------------------------------ COSMOS rpc

using TransportFactory = std::function<std::unique_ptr<Transport>(bool server)>;

// A server endpoint (echo + sink handlers) on a pinned thread.
class CosmosServer {
 public:
  CosmosServer(const TransportFactory& make, const RpcOptions& options) {
    nexus_.RegisterHandler(kEcho, [](Rpc& rpc, const IncomingRequest& req) {
      rpc.EnqueueResponse(req.handle, req.payload).IgnoreError();  // handle is live here
    });
    nexus_.RegisterHandler(kSink, [](Rpc& rpc, const IncomingRequest& req) {
      rpc.EnqueueResponse(req.handle, {}).IgnoreError();  // handle is live here
    });
    thread_ = std::thread([this, make, options] {
      PinToCpu(kServerCpu);
      auto rpc = Rpc::Create(&nexus_, make(true), options);
      if (!rpc.ok()) {
        std::fprintf(stderr, "rpc_bench: %s\n", rpc.status().ToString().c_str());
        std::abort();
      }
      address_ = (*rpc)->local_address();
      ready_ = true;
      (*rpc)->RunUntilStopped(stop_);
    });
    while (!ready_.load()) std::this_thread::yield();
  }
  ~CosmosServer() {
    stop_ = true;
    thread_.join();
  }
  NetAddress address() const { return address_; }
  Nexus* nexus() { return &client_nexus_; }

 private:
  Nexus nexus_;
  Nexus client_nexus_;
  std::thread thread_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_{false};
  NetAddress address_;
};

struct CosmosClient {
  std::unique_ptr<Rpc> rpc;
  SessionId session = 0;
};

CosmosClient ConnectClient(CosmosServer& server, const TransportFactory& make,
                           const RpcOptions& options) {
  PinToCpu(kClientCpu);
  CosmosClient c;
  auto rpc = Rpc::Create(server.nexus(), make(false), options);
  if (!rpc.ok()) {
    std::fprintf(stderr, "rpc_bench: %s\n", rpc.status().ToString().c_str());
    std::abort();
  }
  c.rpc = std::move(*rpc);
  auto sid = c.rpc->Connect(server.address(), {}, 10'000'000'000);
  if (!sid.ok()) {
    std::fprintf(stderr, "rpc_bench: connect: %s\n", sid.status().ToString().c_str());
    std::abort();
  }
  c.session = *sid;
  return c;
}

// `offload`: use UDP GSO/GRO where the kernel has them. `cc`: congestion
// control on although the path is loopback (where it is off by default).
TransportFactory UdpFactory(bool offload = true, bool cc = false) {
  return [offload, cc](bool) {
    auto t = OpenUdpTransport({.bind = {kLoopback, 0},
                               .enable_gso = offload,
                               .enable_gro = offload,
                               .congestion_control_local = cc});
    if (!t.ok()) std::abort();
    return std::move(*t);
  };
}

TransportFactory MemoryFactory(double loss, uint64_t seed) {
  auto net = std::make_shared<MemoryNetwork>();
  return [net, loss, seed](bool server) {
    FaultConfig f{.drop = loss, .seed = seed + (server ? 1 : 2)};
    auto t =
        OpenMemoryTransport(net, {.address = {0x0a000000u + (server ? 1u : 2u), 9}, .faults = f});
    if (!t.ok()) std::abort();
    return std::move(*t);
  };
}

// `cc`: with congestion control forced on (its cost on an idle path).
Latency CosmosRtt(size_t size, uint64_t iters, bool cc = false) {
  RpcOptions o;
  CosmosServer server(UdpFactory(true, cc), o);
  CosmosClient c = ConnectClient(server, UdpFactory(true, cc), o);
  std::vector<std::byte> req(size, std::byte{'x'});
  std::vector<double> rtts;
  rtts.reserve(iters);
  bool done = false;
  for (uint64_t i = 0; i < iters + 1000; ++i) {
    done = false;
    const uint64_t t0 = MonotonicNanos();
    if (!c.rpc->EnqueueRequest(c.session, kEcho, req, [&](const Status&, auto) { done = true; })
             .ok()) {
      std::abort();
    }
    while (!done) c.rpc->RunEventLoopOnce();
    if (i >= 1000) rtts.push_back(static_cast<double>(MonotonicNanos() - t0));
  }
  return {bench::Quantile(rtts, 0.5) / 1000.0, bench::Quantile(rtts, 0.99) / 1000.0};
}

// Keeps `inflight` requests of `size` bytes outstanding for `seconds`;
// returns completed requests per second. `owned`: hand each request's
// buffer over (Rpc::EnqueueOwnedRequest, refilling the buffer it returns)
// instead of having EnqueueRequest copy it.
double CosmosThroughput(const TransportFactory& make, uint16_t type, size_t size, int inflight,
                        double seconds, uint64_t* retransmissions = nullptr, uint16_t credits = 64,
                        bool owned = false, uint64_t* timeouts = nullptr) {
  RpcOptions o;
  o.window = static_cast<uint16_t>(std::min(inflight, 64));
  o.session_credits = credits;
  CosmosServer server(make, o);
  CosmosClient c = ConnectClient(server, make, o);
  // The continuation captures one pointer so std::function stores it inline
  // (no allocation per request).
  struct Loop {
    Rpc* rpc;
    SessionId session;
    uint16_t type;
    std::vector<std::byte> req;
    bool owned;
    uint64_t done = 0;
    bool running = true;
    void Next() {
      auto then = [this](const Status& st, auto) {
        if (!st.ok()) {
          std::fprintf(stderr, "rpc_bench: request failed: %s\n", st.ToString().c_str());
          std::abort();
        }
        ++done;
        if (running) Next();
      };
      Status s = Status::Ok();
      if (owned) {
        // The buffer handed back is an earlier request's (same size once
        // every slot has had one; its bytes are as good as any for a sink).
        const size_t size = req.size();
        s = rpc->EnqueueOwnedRequest(session, type, &req, then);
        req.resize(size, std::byte{'x'});
      } else {
        s = rpc->EnqueueRequest(session, type, req, then);
      }
      if (!s.ok()) std::abort();
    }
  };
  Loop loop{c.rpc.get(), c.session, type, std::vector<std::byte>(size, std::byte{'x'}), owned};
  uint64_t& done = loop.done;
  // Warm-up, then measure.
  for (int i = 0; i < inflight; ++i) loop.Next();
  c.rpc->RunEventLoopFor(100'000'000);
  const uint64_t start_done = done;
  const uint64_t t0 = MonotonicNanos();
  c.rpc->RunEventLoopFor(static_cast<uint64_t>(seconds * 1e9));
  const double secs = static_cast<double>(MonotonicNanos() - t0) / 1e9;
  const uint64_t measured = done - start_done;
  loop.running = false;
  c.rpc->RunUntil(
      [&] { return c.rpc->counters().requests_completed == c.rpc->counters().requests_sent; },
      5'000'000'000);
  if (retransmissions != nullptr) *retransmissions += c.rpc->counters().retransmissions;
  if (timeouts != nullptr) *timeouts += c.rpc->counters().timeouts;
  return measured / secs;
}

// ------------------------------------------------------------ gRPC peer

struct GrpcResult {
  double p50_us = 0;
  double p99_us = 0;
  double rps = 0;
  bool ok = false;
};

GrpcResult RunGrpc(const std::string& peer, uint64_t calls, double seconds, int port) {
  GrpcResult r;
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  // Both gRPC processes run under taskset from exec on, so every thread
  // gRPC creates (pollers, executors) inherits the CPU, as COSMOS's server
  // and client threads are pinned before they start work. (Pinning the
  // server's pid after spawning it, as this did before, left the threads it
  // had already created free to run on the client's CPU.)
  std::vector<std::string> args = {"taskset",  "-c", std::to_string(kServerCpu), peer, "server",
                                   "--listen", addr};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t server = -1;
  if (::posix_spawnp(&server, "taskset", nullptr, nullptr, argv.data(), environ) != 0) return r;
  const std::string cmd = "taskset -c " + std::to_string(kClientCpu) + " " + peer +
                          " client --server " + addr + " --size " + std::to_string(kSmall) +
                          " --rtt-calls " + std::to_string(calls) + " --seconds " +
                          std::to_string(seconds) + " --inflight " + std::to_string(kInflight);
  FILE* f = ::popen(cmd.c_str(), "r");
  char line[512] = {};
  if (f != nullptr) {
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      if (std::sscanf(line, "{\"rtt_p50_us\": %lf, \"rtt_p99_us\": %lf, \"throughput_rps\": %lf}",
                      &r.p50_us, &r.p99_us, &r.rps) == 3) {
        r.ok = true;
      }
    }
    ::pclose(f);
  }
  ::kill(server, SIGTERM);
  int status;
  ::waitpid(server, &status, 0);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  cosmos::log::Init("warn");
  CLI::App app{"rpc_bench: COSMOS rpc vs raw UDP and gRPC (see bench/rpc/run.sh)"};
  bool quick = false;
  std::string out_dir = "bench/results";
  std::string grpc_peer;
  app.add_flag("--quick", quick, "fewer rounds and shorter phases (under a minute)");
  app.add_option("--out", out_dir, "directory for rpc.json")->capture_default_str();
  app.add_option("--grpc-peer", grpc_peer, "path of the grpc_echo_peer binary")->required();
  std::string build_note;
  app.add_option("--build-note", build_note, "free text about the build, stored as a note");
  bool bw_copy = false;
  app.add_flag("--bw-copy", bw_copy,
               "bandwidth phase: copy each request (EnqueueRequest) instead of handing its buffer "
               "over (EnqueueOwnedRequest), for A/B");
  std::string only;
  app.add_option("--only", only,
                 "run only these parts (comma list of rtt,tput,grpc,bw,loss; bwcos / bwraw: one "
                 "half of bw alone, for profiling)");
  CLI11_PARSE(app, argc, argv);
  auto want = [&](const char* part) {
    return only.empty() ||
           ("," + only + ",").find("," + std::string(part) + ",") != std::string::npos;
  };

  const int rounds = quick ? 3 : 7;
  const uint64_t rtt_iters = quick ? 20000 : 100000;
  const double phase = quick ? 1.0 : 3.0;
  const uint64_t grpc_calls = quick ? 5000 : 50000;

  std::map<std::string, std::vector<double>> s;
  bool gso = false;
  uint64_t loss_retx = 0;
  uint64_t bw_retx = 0;
  uint64_t bw_timeouts = 0;
  for (int round = 0; round < rounds; ++round) {
    std::fprintf(stderr, "rpc bench: round %d/%d\n", round + 1, rounds);
    if (want("rtt")) {
      Latency raw = RawPingPong(kSmall, rtt_iters);
      // Congestion control on and off alternate which goes first.
      Latency cos, cos_cc;
      if (round % 2 == 0) {
        cos = CosmosRtt(kSmall, rtt_iters);
        cos_cc = CosmosRtt(kSmall, rtt_iters, /*cc=*/true);
      } else {
        cos_cc = CosmosRtt(kSmall, rtt_iters, /*cc=*/true);
        cos = CosmosRtt(kSmall, rtt_iters);
      }
      s["cos_cc_p50"].push_back(cos_cc.p50_us);
      s["cos_cc_p99"].push_back(cos_cc.p99_us);
      s["raw_p50"].push_back(raw.p50_us);
      s["raw_p99"].push_back(raw.p99_us);
      s["cos_p50"].push_back(cos.p50_us);
      s["cos_p99"].push_back(cos.p99_us);
    }
    if (want("tput")) {
      s["raw_echo"].push_back(RawBatchedEcho(kSmall, phase));
      s["cos_tput"].push_back(CosmosThroughput(UdpFactory(true), kEcho, kSmall, kInflight, phase));
      s["cos_tput_nogso"].push_back(
          CosmosThroughput(UdpFactory(false), kEcho, kSmall, kInflight, phase));
    }
    if (want("grpc")) {
      GrpcResult g = RunGrpc(grpc_peer, grpc_calls, phase, 7400 + (getpid() % 500) + round);
      if (!g.ok) {
        std::fprintf(stderr, "rpc bench: gRPC peer failed (%s)\n", grpc_peer.c_str());
        return 1;
      }
      s["grpc_p50"].push_back(g.p50_us);
      s["grpc_rps"].push_back(g.rps);
    }
    if (want("bw") || want("bwcos") || want("bwraw")) {
      if (want("bw") || want("bwraw")) s["raw_bulk"].push_back(RawBulk(phase, &gso));
      if (want("bw") || want("bwcos")) {
        const double bw_rps =
            CosmosThroughput(UdpFactory(true), kSink, 1 << 20, kBulkInflight, phase, &bw_retx,
                             kBulkCredits, /*owned=*/!bw_copy, &bw_timeouts);
        s["cos_bw"].push_back(bw_rps * (1 << 20) * 8 / 1e9);
      }
    }
    if (want("loss")) {
      s["mem_lossless"].push_back(
          CosmosThroughput(MemoryFactory(0, 100 + round), kEcho, kSmall, kInflight, phase));
      s["mem_loss1"].push_back(CosmosThroughput(MemoryFactory(0.01, 200 + round), kEcho, kSmall,
                                                kInflight, phase, &loss_retx));
    }
  }
  using bench::Median;
  bench::BenchReport report("rpc", quick);
  const double cos_p50 = Median(s["cos_p50"]);
  const double cos_tput = Median(s["cos_tput"]);
  report.AddWithBaseline("rtt_32B_p50_us", cos_p50, "us", "lower", "raw_udp_busypoll_rtt_p50_us",
                         Median(s["raw_p50"]), s["cos_p50"], s["raw_p50"]);
  report.AddWithBaseline("rtt_32B_p99_us", Median(s["cos_p99"]), "us", "lower",
                         "raw_udp_busypoll_rtt_p99_us", Median(s["raw_p99"]), s["cos_p99"],
                         s["raw_p99"]);
  report.AddWithBaseline("rtt_32B_cc_p50_us", Median(s["cos_cc_p50"]), "us", "lower",
                         "rtt_32B_p50_us", cos_p50, s["cos_cc_p50"], s["cos_p50"]);
  report.AddWithBaseline("rtt_32B_cc_p99_us", Median(s["cos_cc_p99"]), "us", "lower",
                         "rtt_32B_p99_us", Median(s["cos_p99"]), s["cos_cc_p99"], s["cos_p99"]);
  report.AddWithBaseline("throughput_32B_rps", cos_tput, "req/s", "higher",
                         "raw_udp_sendmmsg_echo_rps", Median(s["raw_echo"]), s["cos_tput"],
                         s["raw_echo"]);
  report.AddWithBaseline("throughput_32B_nogso_rps", Median(s["cos_tput_nogso"]), "req/s", "higher",
                         "raw_udp_sendmmsg_echo_rps", Median(s["raw_echo"]), s["cos_tput_nogso"],
                         s["raw_echo"]);
  report.AddWithBaseline("grpc_rtt_32B_p50_us", Median(s["grpc_p50"]), "us", "lower",
                         "rtt_32B_p50_us", cos_p50, s["grpc_p50"], s["cos_p50"]);
  report.AddWithBaseline("grpc_throughput_32B_rps", Median(s["grpc_rps"]), "req/s", "higher",
                         "throughput_32B_rps", cos_tput, s["grpc_rps"], s["cos_tput"]);
  report.AddWithBaseline("bandwidth_1MB_gbps", Median(s["cos_bw"]), "Gbit/s", "higher",
                         gso ? "raw_udp_gso_bulk_gbps" : "raw_udp_bulk_gbps", Median(s["raw_bulk"]),
                         s["cos_bw"], s["raw_bulk"]);
  report.AddWithBaseline("loss1pct_throughput", Median(s["mem_loss1"]), "req/s", "higher",
                         "lossless_throughput_rps", Median(s["mem_lossless"]), s["mem_loss1"],
                         s["mem_lossless"]);
  report.Note(
      "loopback UDP on one host; server and client threads pinned to CPUs 0 and 1 of a "
      "shared 2-core machine; " +
      std::to_string(rounds) + " alternating rounds, medians");
  report.Note(
      "rtt percentiles are exact nearest-rank values over every sample of a round (not "
      "histogram buckets); the median of the rounds' values is reported");
  report.Note(
      "rtt_32B_cc_*: the same ping-pong with congestion control forced on "
      "(UdpTransportOptions::congestion_control_local; on loopback it is off by default), "
      "against the default run (off) of the same round: the controller's cost on an idle "
      "path. Single-packet requests give the controller no RTT samples, so the rate stays "
      "at the ceiling and nothing is paced: the cost measured is the per-packet bookkeeping");
  report.Note("throughput: " + std::to_string(kInflight) +
              " requests in flight for COSMOS (one session, window 64), the raw echo and gRPC "
              "(callback API)");
  report.Note(
      "throughput_32B_rps lets COSMOS coalesce its packet bursts with UDP GSO/GRO, which "
      "the raw sendmmsg/recvmmsg echo does not; throughput_32B_nogso_rps is COSMOS "
      "without GSO/GRO against the same baseline");
  report.Note(
      "grpc ratios are gRPC / COSMOS (targets: throughput ratio <= 0.2, p50 ratio >= 5); "
      "gRPC server and client processes run under taskset -c " +
      std::to_string(kServerCpu) + " / " + std::to_string(kClientCpu) +
      " from exec (every thread pinned, as COSMOS's); " + std::to_string(grpc_calls) +
      " sequential calls per round for the RTT, one gRPC run per round");
  report.Note(
      "loss1pct_throughput uses the in-memory transport with 1% seeded drop in each "
      "direction (tc netem is not available on this kernel); its baseline is the same "
      "transport without loss; " +
      std::to_string(loss_retx) + " retransmissions");
  report.Note(std::string("bandwidth: 1 MB requests, empty responses, " +
                          std::to_string(kBulkInflight) + " in flight, mtu 1472, session_credits " +
                          std::to_string(kBulkCredits) +
                          "; "
                          "baseline: unidirectional raw UDP with ") +
              (gso ? "GSO 44x1472-byte super-datagrams and GRO" : "1472-byte datagrams") +
              ", each 1 MB transfer sent from its own 1 MB buffer (8 rotating), no flow control or "
              "loss recovery; COSMOS " +
              (bw_copy ? std::string("copies each request (EnqueueRequest)")
                       : std::string("hands each request's buffer over (EnqueueOwnedRequest, "
                                     "refilling the buffer it gets back; no copy)")) +
              "; COSMOS retransmitted " + std::to_string(bw_retx) + " packets (" +
              std::to_string(bw_timeouts) + " retransmission timeouts) over all bandwidth rounds");
  if (!build_note.empty()) report.Note(build_note);
  return report.Write(out_dir) ? 0 : 1;
}
