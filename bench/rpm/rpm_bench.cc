// rpm benchmark driver: COSMOS remote write+flush and read latency and
// write+flush throughput against baselines measured in the same run: a raw
// UDP busy-poll round trip of the same sizes (own echo thread) plus a local
// persist of the same size on the same kind of pool. Runs A/B alternately in
// rounds and reports medians of the rounds with the per-round values.
//
// Same datagrams on the wire: the raw baseline splits each message into
// datagrams of the COSMOS session MTU (--mtu, capped by the loopback path
// MTU - 28 as a session is), reported as `mtu_bytes` and
// `baseline_datagram_bytes`. GSO on both sides: COSMOS's UDP transport sends
// a run of equal-sized datagrams as one UDP_SEGMENT send (at most 64
// segments, 65000 bytes) and receives with UDP_GRO wherever the kernel has
// them; the raw baseline probes and uses both the same way, with the same
// limits (a kernel without them leaves both sides without). A note in the
// JSON says which was in effect.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.h"
#include "common/check.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"
#include "cosmos/client.h"
#include "pmem/pool.h"
#include "rpc/wire.h"
#include "server/server.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace {

using cosmos::bench::BenchReport;
using cosmos::bench::Median;

constexpr size_t kHeader = 16;  // u64 total request bytes, u64 reply bytes (message start)
// Limits of one GSO send, as in src/rpc/transport_udp.cc.
constexpr size_t kMaxGsoSegments = 64;
constexpr size_t kMaxGsoBytes = 65000;
constexpr size_t kRxBuffer = 65536;  // one GRO-coalesced receive at most

double P50(std::vector<double> v) { return Median(std::move(v)); }

// Enables UDP GSO and GRO on `fd` where the kernel has them, probed as
// OpenUdpTransport probes them. Returns whether both are on.
bool EnableGsoGro(int fd) {
  int seg = 1200;
  bool gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0;
  seg = 0;  // per-send segment sizes come in a cmsg
  if (gso && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) != 0) gso = false;
  int on = 1;
  bool gro = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
  return gso && gro;
}

// Sends `len` bytes as datagrams of `dgram` bytes (the last may be shorter).
// With GSO a run of up to kMaxGsoSegments datagrams and kMaxGsoBytes goes out
// in one sendmsg with UDP_SEGMENT, as COSMOS's transport does; without it,
// one send per datagram. `to` is null on a connected socket.
void SendMessage(int fd, const char* data, size_t len, size_t dgram, bool gso,
                 const sockaddr_in* to) {
  const size_t per_send =
      gso ? std::max<size_t>(1, std::min(kMaxGsoSegments, kMaxGsoBytes / dgram)) * dgram : dgram;
  size_t off = 0;
  do {
    const size_t n = std::min(len - off, per_send);
    iovec iov{const_cast<char*>(data + off), n};
    msghdr m{};
    m.msg_name = const_cast<sockaddr_in*>(to);
    m.msg_namelen = to ? sizeof(sockaddr_in) : 0;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
    if (n > dgram) {
      m.msg_control = control;
      m.msg_controllen = sizeof(control);
      cmsghdr* cm = CMSG_FIRSTHDR(&m);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const uint16_t seg = static_cast<uint16_t>(dgram);
      std::memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
    }
    sendmsg(fd, &m, 0);
    off += n;
  } while (off < len);
}

// Raw UDP echo peer: receives messages as a stream of datagrams (each message
// starts a datagram and carries its length and the reply length in its first
// 16 bytes; several may be in flight) and answers each with the requested
// number of bytes, in datagrams of the same size. Blocks in recv when idle,
// like a COSMOS worker in its default adaptive mode (2 cores: no spinning
// peers).
class RawEcho {
 public:
  explicit RawEcho(size_t dgram) : dgram_(dgram) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    COSMOS_CHECK(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    int buf = 8 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    int pmtu = IP_PMTUDISC_DO;  // DF, never IP fragments (as COSMOS)
    setsockopt(fd_, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    gso_ = EnableGsoGro(fd_);
    timeval tv{0, 100000};  // wake up to check the stop flag
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    thread_ = std::thread([this] { Run(); });
  }
  ~RawEcho() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  bool gso() const { return gso_; }
  // While active the peer busy-polls (as the COSMOS worker does under load);
  // otherwise it blocks, so it never competes with the COSMOS phase for CPU.
  void SetActive(bool on) { active_ = on; }

 private:
  void Run() {
    std::vector<char> buf(kRxBuffer), reply(65536 + kHeader, 'r');
    uint64_t left = 0, reply_len = 0;  // of the message being received
    while (!stop_.load(std::memory_order_relaxed)) {
      sockaddr_in from{};
      socklen_t fl = sizeof(from);
      ssize_t n = recvfrom(fd_, buf.data(), buf.size(),
                           active_.load(std::memory_order_relaxed) ? MSG_DONTWAIT : 0,
                           reinterpret_cast<sockaddr*>(&from), &fl);
      if (n <= 0) continue;
      // A GRO receive may hold several datagrams: walk the messages in it.
      size_t off = 0;
      while (off < static_cast<size_t>(n)) {
        if (left == 0) {
          if (static_cast<size_t>(n) - off < kHeader) break;  // not a message start
          std::memcpy(&left, buf.data() + off, 8);
          std::memcpy(&reply_len, buf.data() + off + 8, 8);
          left = std::max<uint64_t>(left, kHeader);
        }
        const uint64_t take = std::min<uint64_t>(left, static_cast<size_t>(n) - off);
        left -= take;
        off += take;
        if (left == 0) {
          SendMessage(fd_, reply.data(), std::min<uint64_t>(reply_len, reply.size()), dgram_, gso_,
                      &from);
        }
      }
    }
  }
  size_t dgram_;
  int fd_;
  uint16_t port_;
  bool gso_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> active_{false};
  std::thread thread_;
};

// Client side of the raw baseline.
class RawClient {
 public:
  RawClient(uint16_t port, size_t dgram) : dgram_(dgram) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    peer_.sin_family = AF_INET;
    peer_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    peer_.sin_port = htons(port);
    int buf = 8 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    int pmtu = IP_PMTUDISC_DO;
    setsockopt(fd_, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    gso_ = EnableGsoGro(fd_);
    connect(fd_, reinterpret_cast<sockaddr*>(&peer_), sizeof(peer_));
    msg_.assign(65536 + kHeader, 'q');
    rx_.resize(kRxBuffer);
  }
  ~RawClient() { close(fd_); }
  bool gso() const { return gso_; }
  // The path MTU the kernel reports for the (connected) loopback peer.
  size_t PathMtu() const {
    int mtu = 0;
    socklen_t len = sizeof(mtu);
    if (getsockopt(fd_, IPPROTO_IP, IP_MTU, &mtu, &len) != 0 || mtu <= 0) return 0;
    return static_cast<size_t>(mtu);
  }
  // One round trip: `req` bytes out (at least the header), `reply` bytes back.
  void RoundTrip(uint64_t req, uint64_t reply) {
    Send(req, reply);
    Receive(reply);
  }
  void Send(uint64_t req, uint64_t reply) {
    req = std::max<uint64_t>(req, kHeader);
    std::memcpy(msg_.data(), &req, 8);
    std::memcpy(msg_.data() + 8, &reply, 8);
    SendMessage(fd_, msg_.data(), req, dgram_, gso_, nullptr);
  }
  void Receive(uint64_t reply) {
    uint64_t got = 0;
    const uint64_t deadline = cosmos::MonotonicNanos() + 1'000'000'000;
    while (got < std::max<uint64_t>(reply, 1)) {
      got += Poll();
      if (cosmos::MonotonicNanos() > deadline) return;  // lost datagram: counted as 1 s
    }
  }
  // Bytes received by one non-blocking receive (0 if none).
  uint64_t Poll() {
    ssize_t n = recv(fd_, rx_.data(), rx_.size(), MSG_DONTWAIT);
    return n > 0 ? static_cast<uint64_t>(n) : 0;
  }

 private:
  size_t dgram_;
  int fd_;
  bool gso_ = false;
  sockaddr_in peer_{};
  std::vector<char> msg_, rx_;
};

struct Options {
  bool quick = false;
  std::string results = "bench/results";
  std::string shm_dir = "/dev/shm";
  std::string disk_dir = "/tmp";
  size_t mtu = 1472;  // server.mtu and ClientOptions::mtu (run.sh passes --mtu 8972)
};

// The loopback path MTU as the kernel reports it for a connected socket.
size_t LoopbackPathMtu() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(9);
  int mtu = 0;
  socklen_t len = sizeof(mtu);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len) != 0)
    mtu = 0;
  close(fd);
  return mtu > 0 ? static_cast<size_t>(mtu) : 0;
}

std::vector<std::byte> Data(size_t n) { return std::vector<std::byte>(n, std::byte{0x5c}); }

template <typename F>
double TimeUs(F&& f) {
  uint64_t t0 = cosmos::MonotonicNanos();
  f();
  return static_cast<double>(cosmos::MonotonicNanos() - t0) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      o.quick = true;
    else if (a == "--results" && i + 1 < argc)
      o.results = argv[++i];
    else if (a == "--shm-dir" && i + 1 < argc)
      o.shm_dir = argv[++i];
    else if (a == "--disk-dir" && i + 1 < argc)
      o.disk_dir = argv[++i];
    else if (a == "--mtu" && i + 1 < argc) {
      // The one byte-count grammar (common/size.h) and the rpc layer's
      // range, checked here so a typo is a usage error, not an abort.
      auto mtu = cosmos::ParseSize(argv[++i]);
      if (!mtu.ok() || *mtu < cosmos::rpc::kMinMtu || *mtu > cosmos::rpc::kMaxMtu) {
        std::fprintf(stderr, "rpm_bench: --mtu %s: a byte count in [%zu, %zu] expected\n", argv[i],
                     cosmos::rpc::kMinMtu, cosmos::rpc::kMaxMtu);
        return 2;
      }
      o.mtu = static_cast<size_t>(*mtu);
    } else {
      std::fprintf(stderr,
                   "usage: rpm_bench [--quick] [--results DIR] [--shm-dir DIR] [--disk-dir DIR] "
                   "[--mtu N]\n");
      return 2;
    }
  }
  cosmos::log::Init("warn");
  const int rounds = o.quick ? 4 : 10;
  const int iters = o.quick ? 300 : 2000;

  // Remote pool (served by an in-process cosmosd) and a local pool of the
  // same kind for the persist baseline, both on tmpfs (durability none: this
  // measures the service overhead, not a device), plus a page pool on disk.
  std::string shm = o.shm_dir + "/cosmos_rpm_bench_" + std::to_string(getpid());
  std::string disk = o.disk_dir + "/cosmos_rpm_bench_" + std::to_string(getpid());
  std::filesystem::create_directories(shm);
  std::filesystem::create_directories(disk);
  cosmos::pmem::PoolOptions fo;
  fo.backend = cosmos::pmem::BackendKind::kFile;
  auto remote_pool = cosmos::pmem::Pool::Create(shm + "/remote.pool", 64 << 20, fo);
  auto local_pool = cosmos::pmem::Pool::Create(shm + "/local.pool", 16 << 20, fo);
  auto remote_disk = cosmos::pmem::Pool::Create(disk + "/remote.pool", 16 << 20, fo);
  auto local_disk = cosmos::pmem::Pool::Create(disk + "/local.pool", 16 << 20, fo);
  COSMOS_CHECK(remote_pool.ok() && local_pool.ok() && remote_disk.ok() && local_disk.ok());
  auto local = (*local_pool)->CreateRegion("l", 1 << 20);
  auto local_d = (*local_disk)->CreateRegion("l", 1 << 20);
  COSMOS_CHECK(local.ok() && local_d.ok());
  std::vector<cosmos::server::ServedPool> pools;
  pools.push_back({"shm", std::move(*remote_pool)});
  pools.push_back({"disk", std::move(*remote_disk)});
  cosmos::server::ServerOptions so;
  so.listen_ip = "127.0.0.1";
  so.port = 0;
  so.workers = 1;
  so.idle_spin_us = 20000;  // spins while a phase sends to it, blocks between phases
  so.mtu = o.mtu;
  auto server = cosmos::server::Server::Start(so, std::move(pools));
  COSMOS_CHECK(server.ok());
  cosmos::ClientOptions co;
  co.server = "127.0.0.1:" + std::to_string((*server)->port());
  co.max_inflight = 64;
  co.mtu = o.mtu;
  auto client = cosmos::Client::Connect(co);
  COSMOS_CHECK(client.ok());
  cosmos::RegionOptions disk_opts;
  disk_opts.pool = "disk";
  COSMOS_CHECK((*client)->CreateRegion("r", 4 << 20).ok());
  COSMOS_CHECK((*client)->CreateRegion("d", 1 << 20, disk_opts).ok());
  auto region = std::move(*(*client)->OpenRegion("r"));
  auto region_d = std::move(*(*client)->OpenRegion("d"));
  // The session MTU: the smaller of node and client --mtu and the path MTU
  // - 28 (IP + UDP headers), as Rpc negotiates it. The raw baseline sends
  // datagrams of exactly this size.
  const size_t path_mtu = LoopbackPathMtu();
  const size_t session_mtu = path_mtu > 28 ? std::min(o.mtu, path_mtu - 28) : o.mtu;
  RawEcho echo(session_mtu);
  RawClient raw(echo.port(), session_mtu);

  // Baseline phases run on a quiet node: the client is polled, the COSMOS
  // worker is left 25 ms to stop spinning (it blocks after idle_spin_us =
  // 20 ms), and during the phase the client is not polled again unless the
  // phase runs so long that the node would end the session (silence of 10
  // heartbeat intervals = 1 s): polling it sooner would send a heartbeat,
  // wake the worker and make it spin 20 ms on the cores the baseline uses.
  // `baseline_wakeups` counts the polls that had to happen anyway (each may
  // send a heartbeat; 0 on a quiet run; a note in the JSON says how many).
  constexpr uint64_t kKeepAliveNs = 500'000'000;
  uint64_t phase_start = 0, last_poll = 0, baseline_wakeups = 0, baseline_phases = 0;
  uint64_t woken_phases = 0;
  bool phase_woken = false;
  auto keepalive = [&] {
    const uint64_t now = cosmos::MonotonicNanos();
    if (now - std::max(phase_start, last_poll) > kKeepAliveNs) {
      (*client)->Poll(0);
      last_poll = now;
      ++baseline_wakeups;
      phase_woken = true;
    }
  };
  auto quiet_phase = [&](auto&& body) {
    (*client)->Poll(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    phase_start = cosmos::MonotonicNanos();
    phase_woken = false;
    ++baseline_phases;
    body();
    if (phase_woken) ++woken_phases;
  };
  auto raw_phase = [&](auto&& body) {
    quiet_phase([&] {
      echo.SetActive(true);
      body();
      echo.SetActive(false);
    });
  };
  BenchReport report("rpm", o.quick);
  report.Note(
      "remote and local pools on tmpfs (file backend, durability none): the figures measure "
      "the remote service against raw UDP + a local persist, not a durable device");
  report.Note(
      "loopback UDP on one host, 2 shared cores; clients busy-poll; the cosmosd worker and the raw "
      "echo peer each spin during their own phase and block otherwise");
  report.Note("COSMOS datagrams: mtu " + std::to_string(o.mtu) + " on node and client, path MTU " +
              std::to_string(path_mtu) + ", session MTU " + std::to_string(session_mtu) +
              " bytes; the raw baseline sends datagrams of " + std::to_string(session_mtu) +
              " bytes (each message split into datagrams of that size, the last shorter)");
  report.Note(echo.gso() && raw.gso()
                  ? "GSO on both sides: COSMOS and the raw baseline send runs of datagrams with "
                    "UDP_SEGMENT (<= 64 segments, <= 65000 bytes per send) and receive with UDP_GRO"
                  : "GSO/GRO unavailable on this kernel: neither COSMOS nor the raw baseline uses "
                    "them");
  report.Add("mtu_bytes", static_cast<double>(session_mtu), "bytes", "none");
  report.Add("baseline_datagram_bytes", static_cast<double>(session_mtu), "bytes", "none");

  // Warm-up (first-touch page faults, socket buffers, RTT estimates) of
  // every path measured below; not recorded.
  {
    auto warm = Data(65536);
    std::vector<std::byte> out(4096);
    for (int i = 0; i < 300; ++i) {
      size_t n = i % 3 == 0 ? 64 : (i % 3 == 1 ? 4096 : 65536);
      COSMOS_CHECK_OK(region->Write(0, std::span<const std::byte>(warm.data(), n)));
      COSMOS_CHECK_OK(region->Flush(0, n));
      COSMOS_CHECK_OK(region->Read(0, out));
      COSMOS_CHECK_OK(local->MemcpyPersist(0, warm.data(), n));
    }
    raw_phase([&] {
      for (int i = 0; i < 300; ++i) {
        raw.RoundTrip(4096, 4096);
        keepalive();
      }
    });
  }
  struct Sizes {
    const char* name;
    size_t n;
  };
  for (Sizes s : {Sizes{"64B", 64}, Sizes{"4KB", 4096}, Sizes{"64KB", 65536}}) {
    auto data = Data(s.n);
    std::vector<double> cosmos_p50, raw_p50, persist_p50;
    for (int r = 0; r < rounds; ++r) {
      std::vector<double> a, b, c;
      for (int i = 0; i < iters; ++i) {
        a.push_back(TimeUs([&] {
          COSMOS_CHECK_OK(region->Write(0, data));
          COSMOS_CHECK_OK(region->Flush(0, s.n));
        }));
      }
      raw_phase([&] {
        for (int i = 0; i < iters; ++i) {
          b.push_back(TimeUs([&] { raw.RoundTrip(s.n + 56, 24); }));
          keepalive();
        }
      });
      quiet_phase([&] {
        for (int i = 0; i < iters; ++i) {
          c.push_back(TimeUs([&] { COSMOS_CHECK_OK(local->MemcpyPersist(0, data.data(), s.n)); }));
          keepalive();
        }
      });
      cosmos_p50.push_back(P50(a));
      raw_p50.push_back(P50(b));
      persist_p50.push_back(P50(c));
    }
    // Baseline per round: that round's raw RTT p50 + local persist p50.
    std::vector<double> base_rounds;
    for (int r = 0; r < rounds; ++r) base_rounds.push_back(raw_p50[r] + persist_p50[r]);
    report.AddWithBaseline(std::string("write_flush_") + s.name + "_p50_us", Median(cosmos_p50),
                           "us", "lower",
                           std::string("raw_udp_rtt_plus_local_persist_") + s.name + "_p50_us",
                           Median(base_rounds), cosmos_p50, base_rounds);
    std::fprintf(stderr, "rpm bench: write_flush %s done\n", s.name);
  }
  {
    std::vector<std::byte> out(4096);
    std::vector<double> cosmos_p50, raw_p50;
    for (int r = 0; r < rounds; ++r) {
      std::vector<double> a, b;
      for (int i = 0; i < iters; ++i)
        a.push_back(TimeUs([&] { COSMOS_CHECK_OK(region->Read(0, out)); }));
      raw_phase([&] {
        for (int i = 0; i < iters; ++i) {
          b.push_back(TimeUs([&] { raw.RoundTrip(40, 4096 + 16); }));
          keepalive();
        }
      });
      cosmos_p50.push_back(P50(a));
      raw_p50.push_back(P50(b));
    }
    report.AddWithBaseline("read_4KB_p50_us", Median(cosmos_p50), "us", "lower",
                           "raw_udp_rtt_4KB_reply_p50_us", Median(raw_p50), cosmos_p50, raw_p50);
  }
  {
    // Throughput: 8 regions' worth of write+flush in flight (one per region,
    // flush batches are barriers per Region) vs raw UDP with 8 requests in
    // flight continuously: each reply that arrives sends the next request,
    // as each completed flush issues the next write+flush on COSMOS.
    constexpr int kDepth = 8;
    std::vector<std::unique_ptr<cosmos::Region>> regions;
    for (int i = 0; i < kDepth; ++i) {
      std::string name = "t" + std::to_string(i);
      COSMOS_CHECK((*client)->CreateRegion(name, 65536).ok());
      regions.push_back(std::move(*(*client)->OpenRegion(name)));
    }
    auto data = Data(4096);
    const int ops = o.quick ? 4000 : 40000;
    std::vector<double> cosmos_ops, raw_ops;
    for (int r = 0; r < rounds; ++r) {
      int done = 0, issued = 0;
      uint64_t t0 = cosmos::MonotonicNanos();
      std::vector<bool> busy(kDepth, false);
      while (done < ops) {
        for (int i = 0; i < kDepth && issued < ops; ++i) {
          if (busy[i]) continue;
          busy[i] = true;
          ++issued;
          COSMOS_CHECK_OK(regions[i]->Write(0, data));
          cosmos::Range rg{0, 4096};
          regions[i]->FlushAsync(std::span<const cosmos::Range>(&rg, 1), [&, i](cosmos::Status s) {
            COSMOS_CHECK_OK(s);
            busy[i] = false;
            ++done;
          });
        }
        (*client)->Poll(0);
      }
      cosmos_ops.push_back(ops / (static_cast<double>(cosmos::MonotonicNanos() - t0) / 1e9));
      raw_phase([&] {
        constexpr uint64_t kReply = 24;
        t0 = cosmos::MonotonicNanos();
        int issued = 0, done = 0;
        uint64_t rx_bytes = 0, last_progress = t0;
        for (; issued < kDepth && issued < ops; ++issued) raw.Send(4096 + 56, kReply);
        while (done < ops) {
          uint64_t n = raw.Poll();
          uint64_t now = cosmos::MonotonicNanos();
          if (n > 0) {
            rx_bytes += n;
            const int completed = static_cast<int>(rx_bytes / kReply) - done;
            done += completed;
            for (int k = 0; k < completed && issued < ops; ++k, ++issued)
              raw.Send(4096 + 56, kReply);
            last_progress = now;
          } else if (now - last_progress > 1'000'000'000) {
            // Lost datagrams (1 s without a reply): count the window as
            // done after its 1 s and refill it.
            std::fprintf(stderr, "rpm bench: raw pipeline stalled 1 s, refilling\n");
            const int lost = issued - done;
            done += lost;
            rx_bytes = static_cast<uint64_t>(done) * kReply;
            for (int k = 0; k < lost && issued < ops; ++k, ++issued) raw.Send(4096 + 56, kReply);
            last_progress = now;
          }
          keepalive();
        }
        raw_ops.push_back(ops / (static_cast<double>(cosmos::MonotonicNanos() - t0) / 1e9));
      });
    }
    report.AddWithBaseline("write_flush_4KB_ops", Median(cosmos_ops), "ops/s", "higher",
                           "raw_udp_4KB_round_trips_per_s", Median(raw_ops), cosmos_ops, raw_ops);
  }
  {
    // Page-level pool on the build disk: write+flush includes a real msync.
    auto data = Data(4096);
    std::vector<double> cosmos_p50, base_p50;
    const int n = o.quick ? 100 : 500;
    for (int r = 0; r < rounds; ++r) {
      std::vector<double> a, b, c;
      for (int i = 0; i < n; ++i) {
        a.push_back(TimeUs([&] {
          COSMOS_CHECK_OK(region_d->Write(0, data));
          COSMOS_CHECK_OK(region_d->Flush(0, 4096));
        }));
      }
      raw_phase([&] {
        for (int i = 0; i < n; ++i) {
          b.push_back(TimeUs([&] { raw.RoundTrip(4096 + 56, 24); }));
          keepalive();
        }
      });
      quiet_phase([&] {
        for (int i = 0; i < n; ++i) {
          c.push_back(
              TimeUs([&] { COSMOS_CHECK_OK(local_d->MemcpyPersist(0, data.data(), 4096)); }));
          keepalive();
        }
      });
      cosmos_p50.push_back(P50(a));
      base_p50.push_back(P50(b) + P50(c));
    }
    report.AddWithBaseline("write_flush_4KB_page_p50_us", Median(cosmos_p50), "us", "lower",
                           "raw_udp_rtt_plus_local_msync_4KB_p50_us", Median(base_p50), cosmos_p50,
                           base_p50);
  }
  report.Note(
      "baseline phases (raw UDP and local persist) run after the COSMOS worker went "
      "idle, with the client not polled: " +
      std::to_string(woken_phases) + " of " + std::to_string(baseline_phases) +
      " phases lasted over 0.5 s and polled the client to keep the session (" +
      std::to_string(baseline_wakeups) + " polls, each a heartbeat that may wake the node)");
  region.reset();
  region_d.reset();
  client->reset();
  (*server)->Stop();
  std::filesystem::remove_all(shm);
  std::filesystem::remove_all(disk);
  return report.Write(o.results) ? 0 : 1;
}
