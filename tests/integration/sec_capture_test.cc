// Packet capture and man-in-the-middle test of the secure channel with a real
// cosmosd: a UDP relay between client and node records every datagram. A
// written plaintext marker never appears in any captured packet of a secure
// connection (and does appear for a plain one, so the check can fail). The
// relay modifying bytes, replaying recorded packets or reordering packets
// leads to rejection and retransmission, never to wrong data: client ops
// succeed or fail with an error, and reads return what was acknowledged.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cosmos/client.h"
#include "rpm_harness.h"
#include "sec/key_files.h"

namespace {

using cosmos::Status;

constexpr size_t kRpcHeader = 40;     // docs/wire_format.md
constexpr uint8_t kTypeRequest = 3;   // client -> server data packet
constexpr uint8_t kTypeResponse = 5;  // server -> client data packet

const std::string kMarker = "COSMOS-CAPTURE-MARKER-7f3a";

std::vector<std::byte> Bytes(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

// 4 KiB of repeated marker (so every packet of a split message carries some).
std::vector<std::byte> MarkerBlock() {
  std::string s;
  while (s.size() < 4096) s += kMarker;
  s.resize(4096);
  return Bytes(s);
}

std::vector<std::byte> Content(uint64_t block, uint64_t version) {
  std::vector<std::byte> v(4096);
  std::mt19937_64 rng(block * 7919 + version);
  for (auto& b : v) b = std::byte(static_cast<uint8_t>(rng()));
  return v;
}

// In-test man in the middle: the client talks to the relay's downstream
// socket, the relay talks to cosmosd from its upstream socket. Every
// datagram is recorded; data packets (RPC Request / Response) can be
// modified, replayed or reordered.
class Relay {
 public:
  enum class Mode { kForward, kModify, kReplay, kReorder };
  struct Packet {
    bool to_server;
    std::string bytes;
  };

  explicit Relay(int server_port) {
    down_ = Bind();
    up_ = Bind();
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s.sin_port = htons(static_cast<uint16_t>(server_port));
    EXPECT_EQ(connect(up_, reinterpret_cast<sockaddr*>(&s), sizeof(s)), 0);
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getsockname(down_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
    close(down_);
    close(up_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void SetMode(Mode m) { mode_ = m; }
  // Client -> server data packets seen while recording become the replay
  // source (old, already answered requests).
  void RecordReplaySource(bool on) { recording_ = on; }
  size_t tampered() const { return tampered_; }
  std::vector<Packet> Captured() {
    std::lock_guard<std::mutex> l(mu_);
    return captured_;
  }
  // Whether `needle` occurs in any captured datagram.
  bool CaptureContains(const std::string& needle) {
    for (const Packet& p : Captured()) {
      if (p.bytes.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  static int Bind() {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }
  static bool IsData(const std::string& b, bool to_server) {
    if (b.size() <= kRpcHeader) return false;
    const uint8_t type = static_cast<uint8_t>(b[1]);
    return type == (to_server ? kTypeRequest : kTypeResponse);
  }
  void Send(bool to_server, const std::string& b) {
    if (to_server) {
      (void)send(up_, b.data(), b.size(), 0);
    } else if (have_client_) {
      (void)sendto(down_, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&client_),
                   sizeof(client_));
    }
  }
  void Handle(bool to_server, std::string b) {
    {
      std::lock_guard<std::mutex> l(mu_);
      captured_.push_back({to_server, b});
    }
    const bool data = IsData(b, to_server);
    if (data && to_server && recording_) replay_source_.push_back(b);
    const Mode mode = mode_.load();
    if (!data || mode == Mode::kForward) {
      Send(to_server, b);
      return;
    }
    ++data_packets_;
    switch (mode) {
      case Mode::kModify: {
        if (data_packets_ % 5 == 0) {
          // Flip one byte: in the plaintext marker when visible (plain
          // sessions), else in the middle of the payload; on protected
          // sessions every third change hits the header (authenticated as
          // associated data).
          size_t at = b.find(kMarker.substr(0, 8));
          if (at == std::string::npos) at = kRpcHeader + (b.size() - kRpcHeader) / 2;
          const bool protected_session = b[2] != 0;                   // tag_len
          if (protected_session && data_packets_ % 15 == 0) at = 16;  // req_num
          b[at] = static_cast<char>(b[at] ^ 0x20);
          ++tampered_;
        }
        Send(to_server, b);
        break;
      }
      case Mode::kReplay: {
        Send(to_server, b);
        // Duplicate the previous packet of this direction, and (to the
        // server) one old, already answered request.
        std::string& prev = to_server ? prev_up_ : prev_down_;
        if (!prev.empty()) {
          Send(to_server, prev);
          ++tampered_;
        }
        prev = b;
        if (to_server && !replay_source_.empty()) {
          Send(true, replay_source_[replay_next_++ % replay_source_.size()]);
          ++tampered_;
        }
        break;
      }
      case Mode::kReorder: {
        // Hold one packet per direction and send it after the next one.
        std::string& held = to_server ? held_up_ : held_down_;
        if (held.empty()) {
          held = std::move(b);
          held_since_ns_ = Now();
        } else {
          Send(to_server, b);
          Send(to_server, held);
          held.clear();
          ++tampered_;
        }
        break;
      }
      case Mode::kForward:
        break;
    }
  }
  static uint64_t Now() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
  void Run() {
    std::vector<char> buf(65536);
    while (!stop_.load()) {
      pollfd fds[2] = {{down_, POLLIN, 0}, {up_, POLLIN, 0}};
      int n = poll(fds, 2, 5);
      // A held packet without a successor is released after 20 ms, so
      // reordering never turns into loss of the last packet.
      if ((!held_up_.empty() || !held_down_.empty()) && Now() - held_since_ns_ > 20'000'000) {
        if (!held_up_.empty()) Send(true, held_up_);
        if (!held_down_.empty()) Send(false, held_down_);
        held_up_.clear();
        held_down_.clear();
      }
      if (n <= 0) continue;
      if (fds[0].revents & POLLIN) {
        sockaddr_in from{};
        socklen_t fl = sizeof(from);
        ssize_t got =
            recvfrom(down_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (got > 0) {
          client_ = from;
          have_client_ = true;
          Handle(true, std::string(buf.data(), static_cast<size_t>(got)));
        }
      }
      if (fds[1].revents & POLLIN) {
        ssize_t got = recv(up_, buf.data(), buf.size(), 0);
        if (got > 0) Handle(false, std::string(buf.data(), static_cast<size_t>(got)));
      }
    }
  }

  int down_ = -1, up_ = -1;
  int port_ = 0;
  sockaddr_in client_{};
  bool have_client_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{Mode::kForward};
  std::atomic<bool> recording_{false};
  std::atomic<size_t> tampered_{0};
  size_t data_packets_ = 0;
  std::vector<std::string> replay_source_;
  size_t replay_next_ = 0;
  std::string prev_up_, prev_down_, held_up_, held_down_;
  uint64_t held_since_ns_ = 0;
  std::mutex mu_;
  std::vector<Packet> captured_;
  std::thread thread_;
};

class SecCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir_.path + "/node").ok());
    ASSERT_TRUE(cosmos::sec::GenerateClientCredentials(dir_.path + "/clients", "alice").ok());
    // One worker: the node never moves the client to another port (which
    // would bypass the relay).
    ASSERT_TRUE(daemon_.Start(dir_.path,
                              {"--listen", "127.0.0.1", "--workers", "1", "--pool",
                               "main=" + dir_.path + "/cap.pool,size=16,create", "--platform-keys",
                               dir_.path + "/node", "--allow", dir_.path + "/clients/alice.pub"}));
  }

  std::unique_ptr<cosmos::Client> Connect(const std::string& address, bool secure) {
    cosmos::ClientOptions o;
    o.server = address;
    o.timeout_ms = 5000;
    if (secure) {
      o.platform_public_key_file = dir_.path + "/node/platform.pub";
      o.measurement_file = dir_.path + "/node/measurement";
      o.client_key_file = dir_.path + "/clients/alice.key";
    }
    auto c = cosmos::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Writes and flushes blocks [0, blocks) with version `version` through
  // `r`, then reads each back. Every op either succeeds or fails with an
  // error; returns the number of reads that returned data different from
  // what the (acknowledged) write put there; `acked[i]` = last acknowledged
  // version of block i (0 = none).
  static int WriteReadRound(cosmos::Region& r, int blocks, uint64_t version,
                            std::vector<uint64_t>& acked, int* failed_ops) {
    int wrong = 0;
    for (int i = 0; i < blocks; ++i) {
      const uint64_t off = static_cast<uint64_t>(i) * 4096;
      Status s = r.Write(off, Content(static_cast<uint64_t>(i), version));
      if (s.ok()) s = r.Flush(off, 4096);
      if (s.ok()) {
        acked[static_cast<size_t>(i)] = version;
      } else {
        ++*failed_ops;
        acked[static_cast<size_t>(i)] = UINT64_MAX;  // indeterminate from now on
      }
    }
    for (int i = 0; i < blocks; ++i) {
      const uint64_t v = acked[static_cast<size_t>(i)];
      if (v == UINT64_MAX) continue;
      std::vector<std::byte> out(4096);
      Status s = r.Read(static_cast<uint64_t>(i) * 4096, out);
      if (!s.ok()) {
        ++*failed_ops;
        continue;
      }
      if (out != Content(static_cast<uint64_t>(i), v)) ++wrong;
    }
    return wrong;
  }

  rpm_test::TempDir dir_;
  rpm_test::Daemon daemon_;
};

TEST_F(SecCapture, WrittenPlaintextNeverAppearsOnTheWireOfASecureConnection) {
  const auto block = MarkerBlock();
  // Control: a plain connection carries the marker in clear (both in the
  // write request and the read response), so the search below can fail.
  {
    Relay relay(daemon_.port());
    auto c = Connect(relay.address(), false);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->CreateRegion("plain", 64 * 1024).ok());
    auto r = c->OpenRegion("plain");
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE((*r)->Write(0, block).ok());
    ASSERT_TRUE((*r)->Flush(0, block.size()).ok());
    std::vector<std::byte> out(block.size());
    ASSERT_TRUE((*r)->Read(0, out).ok());
    EXPECT_EQ(out, block);
    int to_server = 0, to_client = 0;
    for (const auto& p : relay.Captured()) {
      if (p.bytes.find(kMarker) != std::string::npos) ++(p.to_server ? to_server : to_client);
    }
    EXPECT_GT(to_server, 0) << "the plain write should carry the marker in clear";
    EXPECT_GT(to_client, 0) << "the plain read response should carry the marker in clear";
  }
  // Secure: same writes, reads and a Verify; no captured datagram (handshake
  // included) holds the marker or any 12-byte piece of it.
  Relay relay(daemon_.port());
  auto c = Connect(relay.address(), true);
  ASSERT_TRUE(c);
  auto info = c->CreateRegion("vault", 64 * 1024, {.secure = true});
  ASSERT_TRUE(info.ok()) << info.status();
  auto r = c->OpenRegion("vault");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*r)->Write(0, block).ok());
  ASSERT_TRUE((*r)->Write(8192, Bytes(kMarker)).ok());  // a small write too
  ASSERT_TRUE((*r)->Flush(0, 64 * 1024).ok());
  std::vector<std::byte> out(block.size());
  ASSERT_TRUE((*r)->Read(0, out).ok());
  EXPECT_EQ(out, block);
  std::vector<std::byte> small(kMarker.size());
  ASSERT_TRUE((*r)->Read(8192, small).ok());
  EXPECT_EQ(small, Bytes(kMarker));
  EXPECT_TRUE((*r)->Verify(0, block).ok());
  const auto captured = relay.Captured();
  ASSERT_GT(captured.size(), 6u);
  size_t bytes = 0;
  for (const auto& p : captured) {
    bytes += p.bytes.size();
    for (size_t i = 0; i + 12 <= kMarker.size(); ++i) {
      ASSERT_EQ(p.bytes.find(kMarker.substr(i, 12)), std::string::npos)
          << "plaintext piece '" << kMarker.substr(i, 12) << "' in a "
          << (p.to_server ? "client->node" : "node->client") << " packet of " << p.bytes.size()
          << " bytes";
    }
  }
  EXPECT_GT(bytes, 2 * block.size()) << "the data went through the relay";
}

TEST_F(SecCapture, ModifiedPacketsAreRejectedNeverWrongData) {
  constexpr int kBlocks = 12;
  // Control: on a plain connection the same modifications corrupt data.
  {
    Relay relay(daemon_.port());
    auto c = Connect(relay.address(), false);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->CreateRegion("plain", kBlocks * 4096).ok());
    auto r = c->OpenRegion("plain");
    ASSERT_TRUE(r.ok());
    std::vector<uint64_t> acked(kBlocks, 0);
    int failed = 0;
    relay.SetMode(Relay::Mode::kModify);
    // Marker data, so the relay flips bytes of the written plaintext.
    int wrong = 0;
    for (int i = 0; i < kBlocks; ++i) {
      const uint64_t off = static_cast<uint64_t>(i) * 4096;
      if (!(*r)->Write(off, MarkerBlock()).ok() || !(*r)->Flush(off, 4096).ok()) {
        ++failed;
        continue;
      }
      std::vector<std::byte> out(4096);
      relay.SetMode(Relay::Mode::kForward);
      if ((*r)->Read(off, out).ok() && out != MarkerBlock()) ++wrong;
      relay.SetMode(Relay::Mode::kModify);
    }
    EXPECT_GT(relay.tampered(), 0u);
    EXPECT_GT(wrong, 0) << "a plain connection should let the relay corrupt data (" << failed
                        << " failed ops)";
  }
  Relay relay(daemon_.port());
  auto c = Connect(relay.address(), true);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->CreateRegion("vault", kBlocks * 4096, {.secure = true}).ok());
  auto r = c->OpenRegion("vault");
  ASSERT_TRUE(r.ok());
  std::vector<uint64_t> acked(kBlocks, 0);
  int failed = 0;
  relay.SetMode(Relay::Mode::kModify);
  int wrong = 0;
  for (uint64_t v = 1; v <= 3; ++v) wrong += WriteReadRound(**r, kBlocks, v, acked, &failed);
  relay.SetMode(Relay::Mode::kForward);
  EXPECT_GT(relay.tampered(), 10u);
  EXPECT_EQ(wrong, 0) << "a modified packet was accepted";
  // With the relay honest again, everything acknowledged reads back.
  int wrong_after = 0;
  for (int i = 0; i < kBlocks; ++i) {
    if (acked[static_cast<size_t>(i)] == UINT64_MAX || acked[static_cast<size_t>(i)] == 0) continue;
    std::vector<std::byte> out(4096);
    ASSERT_TRUE((*r)->Read(static_cast<uint64_t>(i) * 4096, out).ok());
    if (out != Content(static_cast<uint64_t>(i), acked[static_cast<size_t>(i)])) ++wrong_after;
  }
  EXPECT_EQ(wrong_after, 0);
  std::printf("modify: %zu packets modified, %d ops failed with an error, 0 wrong reads\n",
              relay.tampered(), failed);
}

TEST_F(SecCapture, ReplayedAndReorderedPacketsNeverYieldWrongData) {
  constexpr int kBlocks = 8;
  for (Relay::Mode mode : {Relay::Mode::kReplay, Relay::Mode::kReorder}) {
    const char* name = mode == Relay::Mode::kReplay ? "replay" : "reorder";
    SCOPED_TRACE(name);
    Relay relay(daemon_.port());
    auto c = Connect(relay.address(), true);
    ASSERT_TRUE(c);
    const std::string region = std::string("vault_") + name;
    ASSERT_TRUE(c->CreateRegion(region, kBlocks * 4096, {.secure = true}).ok());
    auto r = c->OpenRegion(region);
    ASSERT_TRUE(r.ok());
    std::vector<uint64_t> acked(kBlocks, 0);
    int failed = 0;
    // Version 1 is written while the relay records the requests it will
    // replay later: old writes of old data, already answered.
    relay.RecordReplaySource(true);
    ASSERT_EQ(WriteReadRound(**r, kBlocks, 1, acked, &failed), 0);
    relay.RecordReplaySource(false);
    ASSERT_EQ(failed, 0);
    relay.SetMode(mode);
    int wrong = 0;
    for (uint64_t v = 2; v <= 4; ++v) wrong += WriteReadRound(**r, kBlocks, v, acked, &failed);
    relay.SetMode(Relay::Mode::kForward);
    EXPECT_GT(relay.tampered(), 10u);
    EXPECT_EQ(wrong, 0) << name << ": wrong data returned";
    // Honest relay again: every block holds its last acknowledged version,
    // not a replayed old one.
    for (int i = 0; i < kBlocks; ++i) {
      const uint64_t v = acked[static_cast<size_t>(i)];
      if (v == UINT64_MAX) continue;
      std::vector<std::byte> out(4096);
      ASSERT_TRUE((*r)->Read(static_cast<uint64_t>(i) * 4096, out).ok());
      EXPECT_EQ(out, Content(static_cast<uint64_t>(i), v)) << name << ": block " << i;
    }
    std::printf("%s: %zu packets replayed/reordered, %d ops failed with an error\n", name,
                relay.tampered(), failed);
  }
}

}  // namespace

namespace {

TEST_F(SecCapture, IdleSecureSessionStaysAliveOnHeartbeats) {
  for (bool secure : {false, true}) {
    SCOPED_TRACE(secure ? "secure" : "plain");
    auto c = Connect(daemon_.address(), secure);
    ASSERT_TRUE(c);
    const std::string name = secure ? "idle_s" : "idle_p";
    ASSERT_TRUE(c->CreateRegion(name, 64 * 1024, {.secure = secure}).ok());
    auto r = c->OpenRegion(name);
    ASSERT_TRUE(r.ok());
    // Idle (but polled) for longer than the RPC layer's dead-peer silence
    // (10 heartbeats of 100 ms): heartbeats must keep the session alive.
    for (int i = 0; i < 100; ++i) {
      c->Poll(0);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::vector<std::byte> out(16);
    Status s = (*r)->Read(0, out);
    EXPECT_TRUE(s.ok()) << s;
  }
}

}  // namespace
