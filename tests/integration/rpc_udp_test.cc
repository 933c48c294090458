// Integration tests of the RPC layer over real kernel UDP: loopback echo of
// many sizes with exactly-once checks, garbage sprayed at a live server,
// spoofed-source and replayed connect floods while real clients work, a
// server restart, the rpc_echo example as two processes, dead-peer detection
// under CPU hogs and a stopped server process, and (as root) a
// network-namespace pair joined by veth with tc netem loss.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "rpc/rpc.h"
#include "rpc/transport_udp.h"

extern char** environ;

namespace cosmos::rpc {
namespace {

constexpr uint16_t kEcho = 1;
constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint32_t kLoopback = 0x7f000001;

RpcOptions TestOptions() {
  RpcOptions o;
  // The shared 2-core test machine is oversubscribed: block when idle so the
  // peer thread gets the CPU, and keep timeouts generous.
  o.poll_mode = PollMode::kAdaptive;
  o.adaptive_spin_ns = 20'000;
  o.max_message_size = 4u << 20;
  o.heartbeat_interval_ns = 200'000'000;
  o.max_missed_heartbeats = 25;
  return o;
}

std::vector<std::byte> Pattern(size_t n, uint64_t id) {
  std::vector<std::byte> v(std::max<size_t>(n, 8));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::byte>((i * 31 + id) & 0xff);
  std::memcpy(v.data(), &id, 8);
  v.resize(n);
  return v;
}

// Joins the calling thread to the named network namespace ("" = stay).
bool EnterNetns(const std::string& name) {
  if (name.empty()) return true;
  int fd = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  return ok;
}

// An echo server endpoint on its own thread. Handler executions are counted
// per request id (first 8 bytes) on the server thread.
class EchoServer {
 public:
  explicit EchoServer(NetAddress bind, std::string netns = "") {
    nexus_.RegisterHandler(kEcho, [this](Rpc& rpc, const IncomingRequest& req) {
      uint64_t id = 0;
      if (req.payload.size() >= 8) std::memcpy(&id, req.payload.data(), 8);
      ++runs_[id];
      rpc.EnqueueResponse(req.handle, req.payload).IgnoreError();  // handle is live here
    });
    thread_ = std::thread([this, bind, netns] {
      if (!EnterNetns(netns)) {
        failed_ = true;
        ready_ = true;
        return;
      }
      auto t = OpenUdpTransport({.bind = bind});
      if (!t.ok()) {
        failed_ = true;
        ready_ = true;
        return;
      }
      auto rpc = Rpc::Create(&nexus_, std::move(*t), TestOptions());
      if (!rpc.ok()) {
        failed_ = true;
        ready_ = true;
        return;
      }
      rpc_ = rpc->get();
      address_ = (*rpc)->local_address();
      ready_ = true;
      (*rpc)->RunUntilStopped(stop_);
      final_counters_ = (*rpc)->counters();
      rpc_ = nullptr;
    });
    while (!ready_.load()) std::this_thread::yield();
  }
  ~EchoServer() { Stop(); }

  void Stop() {
    if (!thread_.joinable()) return;
    // Stop from inside the loop (which wakes it, too): once the loop sees
    // stop_ the endpoint is destroyed, so setting stop_ here first and then
    // posting raced with that destruction (ThreadSanitizer).
    if (Rpc* r = rpc_.load()) {
      r->Post([this] { stop_ = true; });
    } else {
      stop_ = true;
    }
    thread_.join();
  }

  bool failed() const { return failed_; }
  NetAddress address() const { return address_; }
  // Valid after Stop().
  const std::map<uint64_t, int>& runs() const { return runs_; }
  const EndpointCounters& counters() const { return final_counters_; }

 private:
  Nexus nexus_;
  std::thread thread_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_{false};
  std::atomic<Rpc*> rpc_{nullptr};
  NetAddress address_;
  std::map<uint64_t, int> runs_;
  EndpointCounters final_counters_;
};

struct ClientResult {
  size_t ok = 0;
  size_t done = 0;
  uint64_t retransmissions = 0;
  size_t session_mtu = 0;
  Status connect_status;
};

// Runs a client on the calling thread: connects to `server`, sends `count`
// echo requests cycling through `sizes`, verifies every reply.
ClientResult RunClient(NetAddress server, size_t count, const std::vector<size_t>& sizes,
                       uint64_t first_id = 1, NetAddress bind = {kLoopback, 0}) {
  ClientResult r;
  Nexus nexus;
  auto t = OpenUdpTransport({.bind = bind});
  if (!t.ok()) {
    r.connect_status = t.status();
    return r;
  }
  auto rpc = Rpc::Create(&nexus, std::move(*t), TestOptions());
  if (!rpc.ok()) {
    r.connect_status = rpc.status();
    return r;
  }
  auto sid = (*rpc)->Connect(server, {}, 10 * kSecond);
  if (!sid.ok()) {
    r.connect_status = sid.status();
    return r;
  }
  r.session_mtu = (*rpc)->session_mtu(*sid).value_or(0);
  for (size_t i = 0; i < count; ++i) {
    auto req = Pattern(std::max<size_t>(8, sizes[i % sizes.size()]), first_id + i);
    Status s = (*rpc)->EnqueueRequest(*sid, kEcho, req,
                                      [&r, req](const Status& st, std::span<const std::byte> resp) {
                                        ++r.done;
                                        if (st.ok() && resp.size() == req.size() &&
                                            std::memcmp(resp.data(), req.data(), req.size()) == 0) {
                                          ++r.ok;
                                        }
                                      });
    if (!s.ok()) break;
  }
  (*rpc)->RunUntil([&] { return r.done == count; }, 120 * kSecond);
  r.retransmissions = (*rpc)->counters().retransmissions;
  (*rpc)->DestroySession(*sid).IgnoreError();  // exists: connected above
  return r;
}

TEST(RpcUdp, LoopbackEchoesMessagesOfManySizesExactlyOnce) {
  EchoServer server({kLoopback, 0});
  ASSERT_FALSE(server.failed());
  const std::vector<size_t> sizes = {8, 32, 1399, 1400, 1401, 9000, 65536, 300000, 4u << 20};
  const size_t n = 90;
  ClientResult r = RunClient(server.address(), n, sizes);
  ASSERT_TRUE(r.connect_status.ok()) << r.connect_status;
  EXPECT_EQ(r.ok, n);
  server.Stop();
  EXPECT_EQ(server.runs().size(), n);
  for (auto& [id, runs] : server.runs()) EXPECT_EQ(runs, 1) << "request " << id;
}

TEST(RpcUdp, TwoClientsShareOneServer) {
  EchoServer server({kLoopback, 0});
  ClientResult a, b;
  std::thread ta([&] { a = RunClient(server.address(), 500, {32, 5000}, 1); });
  std::thread tb([&] { b = RunClient(server.address(), 500, {64, 20000}, 100000); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.ok, 500u);
  EXPECT_EQ(b.ok, 500u);
  server.Stop();
  for (auto& [id, runs] : server.runs()) EXPECT_EQ(runs, 1);
}

// Sends random and half-plausible datagrams at `target` until `stop`. As root
// it uses a raw socket (crafted UDP headers, several source ports);
// otherwise an ordinary UDP socket.
void Spray(NetAddress target, const std::atomic<bool>& stop, uint64_t* sent) {
  std::mt19937_64 rng(77);
  const bool raw = ::geteuid() == 0;
  int fd = raw ? ::socket(AF_INET, SOCK_RAW, IPPROTO_UDP) : ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to = target.ToSockaddr();
  std::vector<std::byte> buf(2000);
  while (!stop.load()) {
    size_t len = rng() % 1500;
    for (size_t i = 0; i < len; ++i) buf[8 + i] = static_cast<std::byte>(rng());
    std::byte* pkt = buf.data() + 8;
    if (len >= kHeaderSize && rng() % 2) {
      pkt[kOffVersion] = std::byte{kWireVersion};
      pkt[kOffType] = static_cast<std::byte>(1 + rng() % kMaxPacketType);
      pkt[kOffTagLen] = std::byte{0};
      uint32_t session = (1u << 20) | static_cast<uint32_t>(rng() % 4);
      std::memcpy(pkt + kOffDestSession, &session, 4);
      uint16_t plen = static_cast<uint16_t>(len - kHeaderSize);
      std::memcpy(pkt + kOffPayloadLen, &plen, 2);
    }
    ssize_t w;
    if (raw) {
      udphdr h{};
      h.source = htons(static_cast<uint16_t>(1024 + rng() % 60000));
      h.dest = htons(target.port);
      h.len = htons(static_cast<uint16_t>(8 + len));
      h.check = 0;  // optional for IPv4
      std::memcpy(buf.data(), &h, 8);
      w = ::sendto(fd, buf.data(), 8 + len, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    } else {
      w = ::sendto(fd, pkt, len, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    }
    if (w > 0) ++*sent;
    if (*sent % 64 == 0) std::this_thread::yield();
  }
  ::close(fd);
}

TEST(RpcUdp, SprayedGarbageAtALiveServerDoesNotDisturbClients) {
  EchoServer server({kLoopback, 0});
  std::atomic<bool> stop{false};
  uint64_t sprayed = 0;
  std::thread sprayer([&] { Spray(server.address(), stop, &sprayed); });
  ClientResult r = RunClient(server.address(), 3000, {32, 3000});
  stop = true;
  sprayer.join();
  ASSERT_TRUE(r.connect_status.ok()) << r.connect_status;
  EXPECT_EQ(r.ok, 3000u);
  server.Stop();
  const EndpointCounters& c = server.counters();
  const uint64_t dropped = c.truncated + c.wrong_version + c.bad_packets + c.wrong_session +
                           c.out_of_window + c.oversized;
  EXPECT_GT(sprayed, 0u);
  EXPECT_GT(dropped, 0u) << "sprayed " << sprayed;
  EXPECT_EQ(c.handlers_run, 3000u);
  for (auto& [id, runs] : server.runs()) EXPECT_EQ(runs, 1);
}

TEST(RpcUdp, ClientDetectsServerRestartAndReconnects) {
  auto server = std::make_unique<EchoServer>(NetAddress{kLoopback, 0});
  const NetAddress addr = server->address();
  Nexus nexus;
  auto t = OpenUdpTransport({.bind = {kLoopback, 0}});
  ASSERT_TRUE(t.ok());
  auto rpc = Rpc::Create(&nexus, std::move(*t), TestOptions());
  ASSERT_TRUE(rpc.ok());
  auto sid = (*rpc)->Connect(addr, {}, 10 * kSecond);
  ASSERT_TRUE(sid.ok()) << sid.status();
  auto echo_once = [&](SessionId s) {
    Status result = Status::Internal("no reply");
    bool done = false;
    auto req = Pattern(64, 5);
    if (!(*rpc)
             ->EnqueueRequest(s, kEcho, req,
                              [&](const Status& st, auto) {
                                result = st;
                                done = true;
                              })
             .ok()) {
      return Status::Internal("enqueue failed");
    }
    (*rpc)->RunUntil([&] { return done; }, 30 * kSecond);
    return result;
  };
  ASSERT_TRUE(echo_once(*sid).ok());
  server.reset();                               // server process "crashes"
  server = std::make_unique<EchoServer>(addr);  // and comes back on the same port
  ASSERT_FALSE(server->failed());
  Status st = echo_once(*sid);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st;
  ASSERT_TRUE((*rpc)->DestroySession(*sid).ok());
  auto again = (*rpc)->Connect(addr, {}, 10 * kSecond);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(echo_once(*again).ok());
}

// IPv6 (issue 15): a server listening on "::" (dual stack) serves a client
// on ::1 and a client on 127.0.0.1; connect cookies are bound to each
// client's own address. Skipped where the host has no IPv6 loopback.
TEST(RpcUdp, DualStackServerServesIpv6AndIpv4Clients) {
  auto any6 = NetAddress::Parse("[::]:0");
  auto loop6 = NetAddress::Parse("[::1]:0");
  ASSERT_TRUE(any6.ok() && loop6.ok());
  {
    auto probe = OpenUdpTransport({.bind = *loop6});
    if (!probe.ok()) GTEST_SKIP() << "no IPv6 loopback: " << probe.status();
  }
  EchoServer server(*any6);
  ASSERT_FALSE(server.failed());
  NetAddress to6 = *loop6;
  to6.port = server.address().port;
  const NetAddress to4{kLoopback, to6.port};
  ClientResult r6 = RunClient(to6, 200, {32, 3000, 20000}, 1, *loop6);
  ClientResult r4 = RunClient(to4, 200, {32, 3000, 20000}, 1'000'000);
  ASSERT_TRUE(r6.connect_status.ok()) << r6.connect_status;
  ASSERT_TRUE(r4.connect_status.ok()) << r4.connect_status;
  EXPECT_EQ(r6.ok, 200u);
  EXPECT_EQ(r4.ok, 200u);
  // The IPv6 path MTU: the loopback's, less 48 header bytes, capped by the
  // client's mtu option (1472 by default).
  EXPECT_GT(r6.session_mtu, 0u);
  server.Stop();
  const EndpointCounters& c = server.counters();
  EXPECT_EQ(c.cookies_sent, 2u) << "one cookie round trip per client";
  EXPECT_EQ(c.sessions_confirmed, 2u);
  EXPECT_EQ(c.handlers_run, 400u);
}

// ---------------------------------------------------------------- connect floods

// One connect request datagram (header + body + `extra` payload bytes).
std::vector<std::byte> ConnectDatagram(const ConnectRequestBody& b,
                                       std::span<const std::byte> extra = {}) {
  std::vector<std::byte> pkt(kHeaderSize + kConnectRequestBodySize + extra.size());
  PacketHeader h;
  h.type = PacketType::kConnectRequest;
  h.payload_len = static_cast<uint16_t>(kConnectRequestBodySize + extra.size());
  EncodeHeader(h, pkt);
  EncodeConnectRequest(b, std::span<std::byte>(pkt).subspan(kHeaderSize));
  if (!extra.empty()) {
    std::memcpy(pkt.data() + kHeaderSize + kConnectRequestBodySize, extra.data(), extra.size());
  }
  return pkt;
}

ConnectRequestBody RandomConnectBody(std::mt19937_64& rng) {
  ConnectRequestBody b;
  b.client_session = static_cast<uint32_t>(rng());
  b.client_epoch = static_cast<uint32_t>(rng());
  b.mtu = 1472;
  b.max_msg_size = 1 << 20;
  b.credits = 32;
  b.window = 8;
  for (auto& c : b.cookie) c = static_cast<std::byte>(rng());
  return b;
}

// Sends connect requests from source addresses spread over 127.0.0.0/8 with
// random ports, session fields and cookies (a raw IPv4 socket writing its own
// IP and UDP headers), in bursts of 32 per millisecond, until `stop`.
void SpoofedConnectFlood(NetAddress target, const std::atomic<bool>& stop,
                         std::atomic<uint64_t>* sent) {
  int fd = ::socket(AF_INET, SOCK_RAW, IPPROTO_RAW);  // implies IP_HDRINCL
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::mt19937_64 rng(99);
  sockaddr_in to = target.ToSockaddr();
  while (!stop.load()) {
    for (int i = 0; i < 32; ++i) {
      const std::vector<std::byte> rpc = ConnectDatagram(RandomConnectBody(rng));
      std::vector<std::byte> pkt(sizeof(iphdr) + sizeof(udphdr) + rpc.size());
      iphdr ip{};
      ip.ihl = 5;
      ip.version = 4;
      ip.ttl = 64;
      ip.protocol = IPPROTO_UDP;
      ip.tot_len = htons(static_cast<uint16_t>(pkt.size()));
      // 127.1.0.0 - 127.254.255.255: never the real clients' 127.0.0.1.
      ip.saddr = htonl(0x7f000000u | static_cast<uint32_t>(0x10000 + rng() % 0xfd0000));
      ip.daddr = htonl(target.ip);
      udphdr udp{};
      udp.source = htons(static_cast<uint16_t>(1024 + rng() % 60000));
      udp.dest = htons(target.port);
      udp.len = htons(static_cast<uint16_t>(sizeof(udphdr) + rpc.size()));
      std::memcpy(pkt.data(), &ip, sizeof(ip));
      std::memcpy(pkt.data() + sizeof(ip), &udp, sizeof(udp));
      std::memcpy(pkt.data() + sizeof(ip) + sizeof(udp), rpc.data(), rpc.size());
      if (::sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) >
          0) {
        sent->fetch_add(1);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::close(fd);
}

// Real clients, each on its own thread and port, connect while a flood runs
// and complete `count` verified requests each.
std::vector<ClientResult> RunRealClients(NetAddress server, size_t clients, size_t count) {
  std::vector<ClientResult> results(clients);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      results[i] = RunClient(server, count, {32, 3000}, 1 + i * 1'000'000);
    });
  }
  for (auto& t : threads) t.join();
  return results;
}

void ExpectEveryClientServed(const std::vector<ClientResult>& results, size_t count) {
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].connect_status.ok())
        << "client " << i << ": " << results[i].connect_status;
    EXPECT_EQ(results[i].ok, count) << "client " << i;
  }
}

// Connects from random spoofed sources never get past the cookie: without
// it they fill the unconfirmed-session limit and real clients are refused.
TEST(RpcUdpFlood, SpoofedSourceConnectFloodDoesNotKeepRealClientsOut) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a raw IP socket; skipped";
  EchoServer server({kLoopback, 0});
  ASSERT_FALSE(server.failed());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread flood([&] { SpoofedConnectFlood(server.address(), stop, &sent); });
  // Let the flood run first, so the clients connect into it.
  while (sent.load() < 3000) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const size_t kClients = 8, kCount = 300;
  std::vector<ClientResult> results = RunRealClients(server.address(), kClients, kCount);
  stop = true;
  flood.join();
  server.Stop();
  ExpectEveryClientServed(results, kCount);
  const EndpointCounters& c = server.counters();
  EXPECT_GE(c.cookies_sent, sent.load() / 2) << "precondition: the flood reached the server";
  EXPECT_EQ(c.sessions_connected, kClients) << "a spoofed connect opened a session";
  EXPECT_EQ(c.connects_limited, 0u);
  EXPECT_EQ(c.handlers_run, kClients * kCount);
}

// One real connect is captured with its valid cookie and replayed from its
// source address, verbatim and with fresh session fields and payload (no key
// needed). The cookie binds the session fields, so only the verbatim copy is
// accepted, as a duplicate; without the cookie check the replays open
// sessions until the per-source limit refuses the real clients on 127.0.0.1.
TEST(RpcUdpFlood, ReplayedConnectFloodDoesNotKeepRealClientsOut) {
  EchoServer server({kLoopback, 0});
  ASSERT_FALSE(server.failed());
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in local = NetAddress{kLoopback, 0}.ToSockaddr();
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in to = server.address().ToSockaddr();
  auto send = [&](const std::vector<std::byte>& pkt) {
    return ::sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  };
  // The victim's connect: a cookie round trip, then the connect with it.
  std::mt19937_64 rng(7);
  ConnectRequestBody victim = RandomConnectBody(rng);
  victim.cookie = {};
  const std::vector<std::byte> hello(160, std::byte{0x5a});  // stands for a secure ClientHello
  ASSERT_GT(send(ConnectDatagram(victim, hello)), 0);
  std::byte buf[2048];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  ParsedPacket p;
  ASSERT_GT(n, 0) << "no cookie from the server";
  ASSERT_EQ(ParsePacket(std::span<std::byte>(buf, n), 65535, &p), ParseError::kNone);
  // (A server without the cookie check answers the first connect at once:
  // then that connect is the one captured, and the flood below must fail.)
  if (p.header.type == PacketType::kConnectCookie) {
    ASSERT_EQ(p.payload.size(), kCookieSize);
    std::memcpy(victim.cookie.data(), p.payload.data(), kCookieSize);
    ASSERT_GT(send(ConnectDatagram(victim, hello)), 0);
    n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    ASSERT_EQ(ParsePacket(std::span<std::byte>(buf, n), 65535, &p), ParseError::kNone);
  }
  ASSERT_EQ(p.header.type, PacketType::kConnectReply);
  ASSERT_EQ(p.header.status, 0);
  const std::vector<std::byte> captured = ConnectDatagram(victim, hello);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread replayer([&] {
    std::mt19937_64 r(8);
    uint64_t i = 0;
    while (!stop.load()) {
      for (int k = 0; k < 32; ++k, ++i) {
        ConnectRequestBody b = victim;  // the captured cookie throughout
        if (i % 4 != 0) {
          b.client_session = static_cast<uint32_t>(r());
          if (i % 2) b.client_epoch = static_cast<uint32_t>(r());
        }
        std::vector<std::byte> extra = hello;
        if (i % 3 == 0) extra[static_cast<size_t>(r() % extra.size())] = std::byte{0x01};
        if (send(i % 4 == 0 ? captured : ConnectDatagram(b, extra)) > 0) sent.fetch_add(1);
      }
      char drain[2048];
      while (::recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  while (sent.load() < 3000) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const size_t kClients = 8, kCount = 300;
  std::vector<ClientResult> results = RunRealClients(server.address(), kClients, kCount);
  stop = true;
  replayer.join();
  ::close(fd);
  server.Stop();
  ExpectEveryClientServed(results, kCount);
  const EndpointCounters& c = server.counters();
  EXPECT_EQ(c.sessions_confirmed, kClients);
  // The victim's session, and (a verbatim replay within the cookie lifetime,
  // after the unconfirmed session expired) at most two re-creations of it.
  EXPECT_LE(c.sessions_connected, kClients + 3) << "a replayed connect opened sessions";
  EXPECT_GT(c.duplicates, 0u) << "verbatim replays are answered as duplicates";
  EXPECT_GE(c.cookies_sent, sent.load() / 2);
  EXPECT_EQ(c.connects_limited, 0u);
}

uint16_t FreeUdpPort() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa = NetAddress{kLoopback, 0}.ToSockaddr();
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(RpcUdp, ExampleServerAndClientProcessesExchangeRequests) {
  const std::string bin = std::string(COSMOS_BINARY_DIR) + "/examples/rpc_echo/rpc_echo";
  if (::access(bin.c_str(), X_OK) != 0) GTEST_SKIP() << "rpc_echo example not built: " << bin;
  const std::string addr = "127.0.0.1:" + std::to_string(FreeUdpPort());
  pid_t server = Spawn({bin, "server", "--listen", addr, "--adaptive", "--seconds", "60"});
  ASSERT_GT(server, 0);
  pid_t client = Spawn(
      {bin, "client", "--server", addr, "--count", "2000", "--size", "100", "--timeout", "30"});
  ASSERT_GT(client, 0);
  EXPECT_EQ(WaitExit(client), 0);
  ::kill(server, SIGTERM);
  EXPECT_EQ(WaitExit(server), 0);
}

// Dead-peer detection against a real stopped process: a SIGSTOP shorter
// than the limit (200 ms against 100 ms x 5 heartbeats) leaves the session
// working; a stop without end is detected (Unavailable for the pending
// request), and after SIGCONT a new session works. The limit adapts to the
// delays seen (rpc_test's RpcDeadPeer covers that); this checks the
// mechanism end to end with a real stalled peer.
TEST(RpcUdp, StoppedServerProcessIsSurvivedBrieflyAndDetectedWhenItStaysStopped) {
  const std::string bin = std::string(COSMOS_BINARY_DIR) + "/examples/rpc_echo/rpc_echo";
  if (::access(bin.c_str(), X_OK) != 0) GTEST_SKIP() << "rpc_echo example not built: " << bin;
  const uint16_t port = FreeUdpPort();
  pid_t server = Spawn({bin, "server", "--listen", "127.0.0.1:" + std::to_string(port),
                        "--adaptive", "--seconds", "120"});
  ASSERT_GT(server, 0);
  Nexus nexus;
  auto t = OpenUdpTransport({.bind = {kLoopback, 0}});
  ASSERT_TRUE(t.ok());
  RpcOptions o = TestOptions();
  o.heartbeat_interval_ns = 100'000'000;
  o.max_missed_heartbeats = 5;
  auto rpc = Rpc::Create(&nexus, std::move(*t), o);
  ASSERT_TRUE(rpc.ok());
  const NetAddress addr{kLoopback, port};
  Result<SessionId> sid = Status::Unavailable("not tried");
  for (int i = 0; i < 50 && !sid.ok(); ++i) sid = (*rpc)->Connect(addr, {}, kSecond);
  ASSERT_TRUE(sid.ok()) << sid.status();
  auto echo = [&](SessionId s) {
    Status result = Status::Internal("no reply");
    bool done = false;
    const std::vector<std::byte> req = Pattern(100, 9);
    if (!(*rpc)
             ->EnqueueRequest(s, 1, req,
                              [&](const Status& st, auto) {
                                result = st;
                                done = true;
                              })
             .ok()) {
      return Status::Internal("enqueue failed");
    }
    (*rpc)->RunUntil([&] { return done; }, 60 * kSecond);
    return result;
  };
  ASSERT_TRUE(echo(*sid).ok());
  ::kill(server, SIGSTOP);
  (*rpc)->RunEventLoopFor(200'000'000);
  ::kill(server, SIGCONT);
  EXPECT_TRUE((*rpc)->IsConnected(*sid)) << "a 200 ms stop ended the session";
  EXPECT_TRUE(echo(*sid).ok());
  ::kill(server, SIGSTOP);
  const Status while_stopped = echo(*sid);
  EXPECT_EQ(while_stopped.code(), StatusCode::kUnavailable) << while_stopped;
  EXPECT_FALSE((*rpc)->IsConnected(*sid));
  ::kill(server, SIGCONT);
  ASSERT_TRUE((*rpc)->DestroySession(*sid).ok());
  auto again = (*rpc)->Connect(addr, {}, 10 * kSecond);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(echo(*again).ok());
  ::kill(server, SIGTERM);
  EXPECT_EQ(WaitExit(server), 0);
}

// ---- Dead-peer detection under CPU hogs (issue 15)

// The first two CPUs this process may run on (the same one twice on a
// one-CPU machine).
std::pair<int, int> TwoCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return {cpus.front(), cpus.back()};
}

bool PinTo(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(pid, sizeof(set), &set) == 0;
}

// Busy-looping child processes, one per entry of `cpus`, pinned there;
// killed and reaped in the destructor (also when the test fails).
class CpuHogs {
 public:
  explicit CpuHogs(const std::vector<int>& cpus) {
    for (int cpu : cpus) {
      const pid_t pid = ::fork();
      if (pid == 0) {  // child: only system calls and a loop after fork
        PinTo(0, cpu);
        for (;;) asm volatile("" ::: "memory");
      }
      if (pid > 0) pids_.push_back(pid);
    }
  }
  ~CpuHogs() {
    for (pid_t p : pids_) ::kill(p, SIGKILL);
    for (pid_t p : pids_) ::waitpid(p, nullptr, 0);
  }
  size_t count() const { return pids_.size(); }

 private:
  std::vector<pid_t> pids_;
};

// Pins the calling thread to `cpu` until destroyed (then restores its mask).
class PinnedThread {
 public:
  explicit PinnedThread(int cpu) {
    saved_ok_ = ::sched_getaffinity(0, sizeof(saved_), &saved_) == 0;
    PinTo(0, cpu);
  }
  ~PinnedThread() {
    if (saved_ok_) ::sched_setaffinity(0, sizeof(saved_), &saved_);
  }

 private:
  cpu_set_t saved_;
  bool saved_ok_ = false;
};

// An rpc_echo server process (adaptive polling) pinned to one CPU; a
// client endpoint on the calling thread with `sessions` sessions to it,
// each keeping one verified echo request in flight.
class HoggedEchoHarness {
 public:
  HoggedEchoHarness(const std::string& bin, int server_cpu, const RpcOptions& client_options,
                    int sessions) {
    port_ = FreeUdpPort();
    server_ = Spawn({bin, "server", "--listen", "127.0.0.1:" + std::to_string(port_), "--adaptive",
                     "--seconds", "300"});
    if (server_ <= 0) return;
    PinTo(server_, server_cpu);
    auto t = OpenUdpTransport({.bind = {kLoopback, 0}});
    if (!t.ok()) return;
    auto rpc = Rpc::Create(&nexus_, std::move(*t), client_options);
    if (!rpc.ok()) return;
    rpc_ = std::move(*rpc);
    flows_.resize(sessions);
    for (auto& f : flows_) {
      Result<SessionId> sid = Status::Unavailable("not tried");
      for (int i = 0; i < 50 && !sid.ok(); ++i)
        sid = rpc_->Connect({kLoopback, port_}, {}, kSecond);
      if (!sid.ok()) return;
      f.session = *sid;
    }
    ready_ = true;
  }
  ~HoggedEchoHarness() {
    rpc_.reset();
    if (server_ > 0) {
      ::kill(server_, SIGCONT);
      ::kill(server_, SIGKILL);
      ::waitpid(server_, nullptr, 0);
    }
  }
  bool ready() const { return ready_; }
  pid_t server() const { return server_; }
  Rpc& rpc() { return *rpc_; }

  struct Flow {
    SessionId session = 0;
    uint64_t next_id = 1;
    size_t ok = 0;   // verified replies
    size_t bad = 0;  // replies that did not match the request
    Status error;    // first failure (the session ended)
    bool ended = false;
  };
  std::vector<Flow>& flows() { return flows_; }

  // Starts one request per session (each reissues itself on success).
  void Start() {
    for (size_t k = 0; k < flows_.size(); ++k) Issue(k);
  }
  size_t ended() const {
    size_t n = 0;
    for (const auto& f : flows_) n += f.ended ? 1 : 0;
    return n;
  }
  uint64_t max_dead_peer_limit_ns() {
    uint64_t m = 0;
    for (const auto& f : flows_) {
      if (auto c = rpc_->session_counters(f.session); c.ok())
        m = std::max(m, c->dead_peer_limit_ns);
    }
    return m;
  }

 private:
  void Issue(size_t k) {
    Flow& f = flows_[k];
    if (f.ended) return;
    const uint64_t id = (static_cast<uint64_t>(k) << 40) | f.next_id++;
    auto req = Pattern(1000, id);
    Status s = rpc_->EnqueueRequest(
        f.session, kEcho, req, [this, k, req](const Status& st, std::span<const std::byte> resp) {
          Flow& fl = flows_[k];
          if (!st.ok()) {
            if (!fl.ended) fl.error = st;
            fl.ended = true;
            return;
          }
          if (resp.size() == req.size() && std::memcmp(resp.data(), req.data(), req.size()) == 0) {
            ++fl.ok;
          } else {
            ++fl.bad;
          }
          Issue(k);
        });
    if (!s.ok()) {
      f.error = s;
      f.ended = true;
    }
  }

  Nexus nexus_;
  uint16_t port_ = 0;
  pid_t server_ = -1;
  std::unique_ptr<Rpc> rpc_;
  std::vector<Flow> flows_;
  bool ready_ = false;
};

// The server stopped for good (CPU hogs still running) must still be found
// dead: every session ends with Unavailable. The limit is capped
// (max_dead_peer_ns, 10 s by default), so 60 s of loop is generous.
void ExpectStoppedServerDetected(HoggedEchoHarness& h) {
  ::kill(h.server(), SIGSTOP);
  h.rpc().RunUntil([&] { return h.ended() == h.flows().size(); }, 60 * kSecond);
  for (const auto& f : h.flows()) {
    EXPECT_TRUE(f.ended) << "session " << f.session << " not declared dead";
    EXPECT_EQ(f.error.code(), StatusCode::kUnavailable) << f.error;
    EXPECT_FALSE(h.rpc().IsConnected(f.session));
  }
}

// Issue 15, dead-peer detection on a loaded machine: 4 busy-looping
// processes on the 2 CPUs, the echo server process sharing its CPU with two
// of them and made ever less important (nice 0, 5, 10, one second each),
// while 4 sessions with default heartbeat settings (100 ms x 10) keep
// requests in flight: no session is declared dead and every reply is right.
// Then the server is stopped (SIGSTOP) with the hogs still running: every
// session is declared dead. Behaviour only: how many requests complete is
// not checked.
TEST(RpcUdp, CpuHogsDoNotEndSessionsAndAStoppedServerIsStillDetected) {
  const std::string bin = std::string(COSMOS_BINARY_DIR) + "/examples/rpc_echo/rpc_echo";
  if (::access(bin.c_str(), X_OK) != 0) GTEST_SKIP() << "rpc_echo example not built: " << bin;
  const auto [cpu_a, cpu_b] = TwoCpus();
  PinnedThread pin(cpu_b);
  RpcOptions o;  // default heartbeats: the behaviour users get
  o.poll_mode = PollMode::kAdaptive;
  HoggedEchoHarness h(bin, cpu_a, o, 4);
  ASSERT_TRUE(h.ready());
  CpuHogs hogs({cpu_a, cpu_b, cpu_a, cpu_b});
  ASSERT_EQ(hogs.count(), 4u);
  h.Start();
  for (int nice : {0, 5, 10}) {
    ::setpriority(PRIO_PROCESS, h.server(), nice);
    h.rpc().RunEventLoopFor(kSecond);
  }
  for (const auto& f : h.flows()) {
    EXPECT_FALSE(f.ended) << "session " << f.session << " ended under CPU hogs: " << f.error;
    EXPECT_TRUE(h.rpc().IsConnected(f.session));
    EXPECT_EQ(f.bad, 0u);
    EXPECT_GT(f.ok, 0u) << "no request completed on session " << f.session;
  }
  std::printf("hogs: dead-peer limit %.0f ms\n", h.max_dead_peer_limit_ns() / 1e6);
  ExpectStoppedServerDetected(h);
}

// The same under CPU hogs with a small silence floor (10 ms x 10 = 100 ms)
// and server stalls the test controls (SIGSTOP for 40 ms, growing by half
// each time to 454 ms, 300 ms of running between them): each stall is at
// most 1.5x the one before, so the adaptive limit (8x the largest delay
// seen) covers it, while a fixed limit would end the sessions at the first
// stall past 100 ms (checked: with DeadPeerLimit returning the floor, every
// session ends in the 135 ms stall). The hogs only lengthen what the client
// observes. A lasting stop is then still detected.
TEST(RpcUdp, GrowingServerStallsUnderCpuHogsAreSurvivedWithAnAdaptiveLimit) {
  const std::string bin = std::string(COSMOS_BINARY_DIR) + "/examples/rpc_echo/rpc_echo";
  if (::access(bin.c_str(), X_OK) != 0) GTEST_SKIP() << "rpc_echo example not built: " << bin;
  const auto [cpu_a, cpu_b] = TwoCpus();
  PinnedThread pin(cpu_b);
  RpcOptions o;
  o.poll_mode = PollMode::kAdaptive;
  o.heartbeat_interval_ns = 10'000'000;
  o.max_missed_heartbeats = 10;
  HoggedEchoHarness h(bin, cpu_a, o, 4);
  ASSERT_TRUE(h.ready());
  CpuHogs hogs({cpu_a, cpu_b, cpu_a, cpu_b});
  ASSERT_EQ(hogs.count(), 4u);
  h.Start();
  h.rpc().RunEventLoopFor(300'000'000);
  for (uint64_t stall_ms = 40; stall_ms <= 460 && h.ended() == 0; stall_ms = stall_ms * 3 / 2) {
    ::kill(h.server(), SIGSTOP);
    h.rpc().RunEventLoopFor(stall_ms * 1'000'000);
    ::kill(h.server(), SIGCONT);
    h.rpc().RunEventLoopFor(300'000'000);
  }
  for (const auto& f : h.flows()) {
    EXPECT_FALSE(f.ended) << "session " << f.session << " ended: " << f.error;
    EXPECT_EQ(f.bad, 0u);
    EXPECT_GT(f.ok, 0u);
  }
  std::printf("stalls: dead-peer limit %.0f ms\n", h.max_dead_peer_limit_ns() / 1e6);
  ExpectStoppedServerDetected(h);
}

// Creates two namespaces joined by a veth pair, optionally with netem loss on
// both ends; deletes them in the destructor (also when the test fails).
// Names carry the pid so concurrent runs do not collide.
class NetnsPair {
 public:
  // `mtu` (optional): the veth pair's link MTU.
  explicit NetnsPair(double loss_percent, int mtu = 0) {
    const std::string tag = std::to_string(::getpid() % 100000);
    a_ = "cosrpcA" + tag;
    b_ = "cosrpcB" + tag;
    va_ = "vrpa" + tag;
    vb_ = "vrpb" + tag;
    const std::string& va = va_;
    const std::string& vb = vb_;
    Cleanup();
    created_ = Sh("ip netns add " + a_) && Sh("ip netns add " + b_) &&
               Sh("ip link add " + va + " type veth peer name " + vb) &&
               Sh("ip link set " + va + " netns " + a_) &&
               Sh("ip link set " + vb + " netns " + b_) &&
               Sh("ip -n " + a_ + " addr add 10.77.0.1/24 dev " + va) &&
               Sh("ip -n " + b_ + " addr add 10.77.0.2/24 dev " + vb) &&
               Sh("ip -n " + a_ + " link set " + va + " up") &&
               Sh("ip -n " + b_ + " link set " + vb + " up") &&
               Sh("ip -n " + a_ + " link set lo up") && Sh("ip -n " + b_ + " link set lo up");
    if (created_ && mtu > 0) {
      const std::string m = std::to_string(mtu);
      created_ = Sh("ip -n " + a_ + " link set " + va + " mtu " + m) &&
                 Sh("ip -n " + b_ + " link set " + vb + " mtu " + m);
    }
    if (created_ && loss_percent > 0) {
      const std::string loss = std::to_string(loss_percent) + "%";
      netem_ = Sh("tc -n " + a_ + " qdisc add dev " + va + " root netem loss " + loss) &&
               Sh("tc -n " + b_ + " qdisc add dev " + vb + " root netem loss " + loss);
    }
  }
  ~NetnsPair() { Cleanup(); }
  bool created() const { return created_; }
  bool netem() const { return netem_; }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }
  // The veth ends in a() and in b().
  const std::string& veth_a() const { return va_; }
  const std::string& veth_b() const { return vb_; }
  // Runs `cmd` (a shell command); true on success.
  static bool Sh(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
  }

 private:
  void Cleanup() {
    Sh("ip netns del " + a_);  // deleting a namespace also removes its veth end
    Sh("ip netns del " + b_);
  }
  std::string a_, b_, va_, vb_;
  bool created_ = false;
  bool netem_ = false;
};

// Runs `n` echo requests from namespace b to a server in namespace a (bound
// to `bind` there, named `target` from b; the client bound to
// `client_bind`); returns the client's result and the server's handler
// runs per request.
ClientResult RunAcrossNamespaces(const NetnsPair& ns, size_t n, std::map<uint64_t, int>* runs,
                                 NetAddress bind = {0x0a4d0001, 9100},  // 10.77.0.1:9100
                                 NetAddress target = {0x0a4d0001, 9100},
                                 NetAddress client_bind = {0x0a4d0002, 0}) {
  EchoServer server(bind, ns.a());
  EXPECT_FALSE(server.failed());
  ClientResult r;
  std::thread client([&] {
    if (!EnterNetns(ns.b())) return;
    r = RunClient(target, n, {32, 1000, 6000, 100000}, 1, client_bind);
  });
  client.join();
  server.Stop();
  *runs = server.runs();
  return r;
}

TEST(RpcUdp, NetnsVethPairCarriesRequestsExactlyOnce) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns; skipped";
  NetnsPair ns(0);
  if (!ns.created()) GTEST_SKIP() << "could not create network namespaces + veth (no permission?)";
  std::map<uint64_t, int> runs;
  ClientResult r = RunAcrossNamespaces(ns, 400, &runs);
  ASSERT_TRUE(r.connect_status.ok()) << r.connect_status;
  EXPECT_EQ(r.ok, 400u);
  EXPECT_EQ(runs.size(), 400u);
  for (auto& [id, count] : runs) EXPECT_EQ(count, 1) << "request " << id;
}

// Parses `text` inside network namespace `netns` (a zone names an interface
// there).
Result<NetAddress> ParseInNetns(const std::string& netns, const std::string& text) {
  Result<NetAddress> r = Status::Internal("not parsed");
  std::thread t([&] {
    if (!EnterNetns(netns)) {
      r = Status::Internal("cannot enter " + netns);
      return;
    }
    r = NetAddress::Parse(text);
  });
  t.join();
  return r;
}

// IPv6 link-local addresses need their zone: a server bound to
// [fe80::a%veth]:port in one namespace serves a client in the other that
// names the server as [fe80::a%its-veth]:port; every request exactly once.
TEST(RpcUdp, LinkLocalIpv6WithAZoneCarriesRequestsAcrossNamespaces) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns; skipped";
  NetnsPair ns(0);
  if (!ns.created()) GTEST_SKIP() << "could not create network namespaces + veth (no permission?)";
  if (!NetnsPair::Sh("ip -n " + ns.a() + " addr add fe80::a/64 dev " + ns.veth_a() + " nodad") ||
      !NetnsPair::Sh("ip -n " + ns.b() + " addr add fe80::b/64 dev " + ns.veth_b() + " nodad")) {
    GTEST_SKIP() << "no IPv6 link-local addresses in the namespaces (IPv6 disabled?)";
  }
  auto bind = ParseInNetns(ns.a(), "[fe80::a%" + ns.veth_a() + "]:9102");
  auto target = ParseInNetns(ns.b(), "[fe80::a%" + ns.veth_b() + "]:9102");
  auto any6 = NetAddress::Parse("[::]:0");
  ASSERT_TRUE(bind.ok()) << bind.status();
  ASSERT_TRUE(target.ok()) << target.status();
  ASSERT_TRUE(any6.ok());
  EXPECT_NE(target->scope_id, 0u);
  std::map<uint64_t, int> runs;
  ClientResult r = RunAcrossNamespaces(ns, 300, &runs, *bind, *target, *any6);
  ASSERT_TRUE(r.connect_status.ok()) << r.connect_status;
  EXPECT_EQ(r.ok, 300u);
  EXPECT_EQ(runs.size(), 300u);
  for (auto& [id, count] : runs) EXPECT_EQ(count, 1) << "request " << id;
}

// IP fragments this namespace has created (Ip: FragCreates of /proc/net/snmp);
// -1 if it cannot be read.
long FragmentsCreated(const std::string& netns) {
  FILE* f = ::popen(("ip netns exec " + netns + " cat /proc/net/snmp 2>/dev/null").c_str(), "r");
  if (f == nullptr) return -1;
  char line[4096];
  std::vector<std::string> names, values;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "Ip: ", 4) != 0) continue;
    (names.empty() ? names : values).push_back(line);
  }
  ::pclose(f);
  if (names.empty() || values.empty()) return -1;
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
      size_t j = s.find_first_of(" \n", i);
      if (j == std::string::npos) j = s.size();
      if (j > i) out.push_back(s.substr(i, j - i));
      i = j + 1;
    }
    return out;
  };
  const auto n = split(names[0]), v = split(values[0]);
  for (size_t i = 0; i < n.size() && i < v.size(); ++i) {
    if (n[i] == "FragCreates") return std::stol(v[i]);
  }
  return -1;
}

// A link MTU of 1200 on the veth pair: both endpoints keep their default
// 1472-byte option, but the session must use the path's 1172 bytes, so that
// multi-packet messages cross without a single IP fragment.
TEST(RpcUdp, SessionsUseThePathMtuAndNeverFragment) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns; skipped";
  NetnsPair ns(0, 1200);
  if (!ns.created()) GTEST_SKIP() << "could not create network namespaces + veth (no permission?)";
  const long frags_before =
      FragmentsCreated(ns.a()) + FragmentsCreated(ns.b());  // 0: new namespaces
  std::map<uint64_t, int> runs;
  ClientResult r = RunAcrossNamespaces(ns, 200, &runs);
  ASSERT_TRUE(r.connect_status.ok()) << r.connect_status;
  EXPECT_EQ(r.session_mtu, 1200u - 28u);
  EXPECT_EQ(r.ok, 200u);
  EXPECT_EQ(runs.size(), 200u);
  for (auto& [id, count] : runs) EXPECT_EQ(count, 1) << "request " << id;
  const long frags_a = FragmentsCreated(ns.a());
  const long frags_b = FragmentsCreated(ns.b());
  ASSERT_TRUE(frags_a >= 0 && frags_b >= 0) << "cannot read Ip: FragCreates in the namespaces";
  EXPECT_EQ(frags_a + frags_b, frags_before) << "IP fragments were created";
}

TEST(RpcUdp, NetnsPairWithNetemLossRunsEveryHandlerExactlyOnce) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns and tc netem; skipped";
  NetnsPair ns(5.0);
  if (!ns.created()) GTEST_SKIP() << "could not create network namespaces + veth (no permission?)";
  if (!ns.netem()) {
    GTEST_SKIP() << "tc netem is not available in this kernel (sch_netem missing); the "
                    "loss-free veth test and the in-memory loss tests still ran";
  }
  std::map<uint64_t, int> runs;
  ClientResult r = RunAcrossNamespaces(ns, 400, &runs);
  ASSERT_TRUE(r.connect_status.ok()) << r.connect_status;
  EXPECT_EQ(r.ok, 400u);
  EXPECT_GT(r.retransmissions, 0u) << "5% netem loss should force retransmissions";
  EXPECT_EQ(runs.size(), 400u);
  for (auto& [id, count] : runs) EXPECT_EQ(count, 1) << "request " << id;
}

}  // namespace
}  // namespace cosmos::rpc
