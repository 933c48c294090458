// Replicated regions under faults (issue 12), with a real etcd and three
// cosmosd processes: a node restarted with an empty pool is rebuilt by
// resync; etcd SIGKILLed and restarted during write+flush load; a soak of
// many SIGKILLs of random replicas under load from several clients; an old
// primary cut off by a real network partition (its own network namespace,
// the veth link taken down) cannot acknowledge a flush.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "client/replica_region.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "cosmos/client.h"
#include "etcd_harness.h"
#include "rpm_harness.h"

namespace {

using cluster_test::EtcdProcess;
using cluster_test::WaitFor;
using cosmos::Client;
using cosmos::ClientOptions;
using cosmos::Region;
using cosmos::StatusCode;

constexpr size_t kBlock = 4096;

std::vector<std::byte> Pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  if (seed == 0) return v;  // seed 0: never written (zeros)
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = std::byte{static_cast<uint8_t>(x >> 16)};
  }
  return v;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One cosmosd child process whose output goes to a log file, optionally
// started inside a network namespace (/var/run/netns/NAME).
class Node {
 public:
  bool Start(const std::string& port_file, const std::string& log,
             const std::vector<std::string>& args, const std::string& host,
             const std::string& netns) {
    host_ = host;
    std::filesystem::remove(port_file);
    std::vector<std::string> argv = {
        rpm_test::CosmosdPath(), "--port", "0", "--port-file", port_file, "--log-level", "warn"};
    argv.insert(argv.end(), args.begin(), args.end());
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      if (!netns.empty()) {
        const int ns = open(("/var/run/netns/" + netns).c_str(), O_RDONLY);
        if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(126);
        close(ns);
      }
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    for (int i = 0; i < 2000; ++i) {  // 20 s: bounds a hang on a loaded host
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        port_ = port;
        return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void Stop(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  ~Node() { Stop(SIGKILL); }
  std::string address() const { return host_ + ":" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string host_;
};

// What each 4 KB block of the test region should hold: the seed of the last
// acknowledged write, and the seed of a later write whose flush failed (it
// may or may not have landed; the issue allows a clear error, not a loss).
struct Expect {
  uint32_t acked = 0;
  uint32_t maybe = 0;
};

// Several clients (one Client each, its own thread) writing and flushing
// 4 KB blocks of one replicated region, each owning the blocks b with
// b % writers == its index, and recording every acknowledgement.
class Writers {
 public:
  Writers(ClientOptions options, std::string region, size_t blocks, int writers)
      : options_(std::move(options)), region_(std::move(region)), expect_(blocks) {
    for (int w = 0; w < writers; ++w)
      threads_.emplace_back([this, w, writers] { Run(w, writers); });
  }
  ~Writers() { Stop(); }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Waits until no writer is inside a call (bounded: a call may wait out a
  // failover), then holds them until Resume.
  bool Pause() {
    std::unique_lock lock(mu_);
    paused_ = true;
    return cv_.wait_for(lock, std::chrono::seconds(120),
                        [&] { return idle_ == threads_.size() - finished_; });
  }
  void Resume() {
    {
      std::lock_guard lock(mu_);
      paused_ = false;
    }
    cv_.notify_all();
  }
  uint64_t acks() const { return acks_.load(); }
  uint64_t errors() const { return errors_.load(); }
  std::string last_error() {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  std::vector<Expect> expect() {
    std::lock_guard lock(mu_);
    return expect_;
  }
  // Empty when `image` (the whole region) holds every acknowledged block.
  std::string Check(std::span<const std::byte> image) {
    std::lock_guard lock(mu_);
    for (size_t b = 0; b < expect_.size(); ++b) {
      const auto got = image.subspan(b * kBlock, kBlock);
      const auto acked = Pattern(kBlock, expect_[b].acked);
      if (std::equal(got.begin(), got.end(), acked.begin())) continue;
      if (expect_[b].maybe != 0) {
        const auto maybe = Pattern(kBlock, expect_[b].maybe);
        if (std::equal(got.begin(), got.end(), maybe.begin())) continue;
      }
      return "block " + std::to_string(b) + " lost its acknowledged write (seed " +
             std::to_string(expect_[b].acked) + ")";
    }
    return "";
  }

 private:
  void Run(int w, int writers) {
    std::mt19937 rng(1234 + w);
    std::unique_ptr<Client> client;
    std::unique_ptr<Region> region;
    uint32_t n = 0;
    while (true) {
      {
        std::unique_lock lock(mu_);
        if (paused_) {
          ++idle_;
          cv_.notify_all();
          cv_.wait(lock, [&] { return !paused_ || stop_; });
          --idle_;
        }
        if (stop_) break;
      }
      if (region == nullptr) {
        region.reset();
        client.reset();
        auto c = Client::Connect(options_);
        if (c.ok()) {
          auto r = (*c)->OpenRegion(region_);
          if (r.ok()) {
            client = std::move(*c);
            region = std::move(*r);
          } else {
            Failed(r.status());
          }
        } else {
          Failed(c.status());
        }
        if (region == nullptr) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
      }
      const size_t per = (expect_.size() - w + writers - 1) / writers;
      const size_t b = w + writers * (rng() % per);
      const uint32_t seed = (static_cast<uint32_t>(w + 1) << 24) | ++n;
      const auto data = Pattern(kBlock, seed);
      cosmos::Status s = region->Write(b * kBlock, data);
      if (s.ok()) s = region->Flush(b * kBlock, kBlock);
      {
        std::lock_guard lock(mu_);
        if (s.ok()) {
          expect_[b] = {seed, 0};
        } else {
          expect_[b].maybe = seed;
        }
      }
      if (s.ok()) {
        ++acks_;
      } else {
        Failed(s);
        region.reset();  // start over with a fresh view of the placement
      }
      // Load, not saturation: three nodes, etcd and these clients share the
      // host's cores.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::lock_guard lock(mu_);
    ++finished_;
    cv_.notify_all();
  }
  void Failed(const cosmos::Status& s) {
    ++errors_;
    std::lock_guard lock(mu_);
    last_error_ = s.ToString();
  }

  ClientOptions options_;
  std::string region_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, paused_ = false;
  size_t idle_ = 0, finished_ = 0;
  std::vector<Expect> expect_;
  std::string last_error_;
  std::atomic<uint64_t> acks_{0}, errors_{0};
  std::vector<std::thread> threads_;
};

// Runs the cosmos CLI with `args` (single-quoted for the shell); stdout only.
std::pair<int, std::string> Cosmos(const std::vector<std::string>& args) {
  std::string cmd = std::string(COSMOS_BINARY_DIR) + "/apps/cosmos/cosmos";
  for (const auto& a : args) cmd += " '" + a + "'";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, out};
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

class ClusterFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cluster_test::EtcdBinary().empty()) {
      GTEST_SKIP() << "etcd is not installed (scripts/setup.sh installs etcd-server)";
    }
    std::filesystem::create_directories(tmp_.path + "/logs");
  }
  void TearDown() override {
    nodes_.clear();
    if (::testing::Test::HasFailure() || std::getenv("COSMOS_TEST_LOGS") != nullptr) {
      for (const auto& e : std::filesystem::directory_iterator(tmp_.path + "/logs")) {
        std::fprintf(stderr, "---- %s\n%s", e.path().filename().c_str(),
                     ReadFile(e.path().string()).c_str());
      }
    }
  }

  // etcd, then nodes `ids` on loopback (or as set up by the caller).
  void StartCluster(const std::vector<std::string>& ids) {
    ASSERT_TRUE(etcd_.Start()) << "etcd did not start; see " << etcd_.log();
    etcd_client_ = etcd_.Client();
    ASSERT_NE(etcd_client_, nullptr);
    for (const auto& id : ids) ASSERT_NO_FATAL_FAILURE(StartNode(id, id));
    ASSERT_TRUE(WaitRegistered(ids.size())) << "the nodes did not register";
  }

  // Starts node `id` on the pool of `slot` (a directory kept across
  // restarts: a node restarted on the same slot keeps its copies).
  void StartNode(const std::string& id, const std::string& slot,
                 const std::string& host = "127.0.0.1", const std::string& netns = "",
                 const std::string& etcd_endpoint = "") {
    const std::string dir = tmp_.path + "/" + slot;
    std::filesystem::create_directories(dir);
    auto n = std::make_unique<Node>();
    std::vector<std::string> args = {
        "--pool",     dir + "/pool,size=16M,create",
        "--workers",  "1",
        "--flushers", "1",
        "--cluster",  etcd_endpoint.empty() ? etcd_.endpoint() : etcd_endpoint,
        "--node-id",  id};
    if (host != "127.0.0.1") args.insert(args.end(), {"--listen", host});
    ASSERT_TRUE(n->Start(dir + "/port", Log(id), args, host, netns))
        << "cosmosd " << id << " did not start; " << ReadFile(Log(id));
    nodes_[id] = std::move(n);
    slots_[id] = slot;
  }
  std::string Log(const std::string& id) const { return tmp_.path + "/logs/" + id + ".log"; }

  bool WaitRegistered(size_t count, std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
    cosmos::cluster::Membership membership(*etcd_client_, cosmos::cluster::ClusterKeys());
    return WaitFor(
        [&] {
          auto list = membership.ListNodes();
          return list.ok() && list->nodes.size() == count;
        },
        deadline);
  }

  ClientOptions ClusterOptions() const {
    ClientOptions o;
    o.cluster = etcd_.endpoint();
    o.busy_poll = false;
    o.idle_spin_us = 0;  // three nodes, etcd and the clients share two cores
    o.timeout_ms = 5000;
    o.failover_timeout_ms = 30000;  // bounds a hang; not a speed judgement
    return o;
  }

  std::unique_ptr<Client> NodeClient(const std::string& id) const {
    ClientOptions o;
    o.server = nodes_.at(id)->address();
    o.busy_poll = false;
    o.timeout_ms = 5000;
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  cosmos::cluster::RegionPlacement Placement(const std::string& region) const {
    cosmos::cluster::PlacementStore store(*etcd_client_, cosmos::cluster::ClusterKeys());
    auto vp = store.Get(region);
    return vp.ok() ? vp->placement : cosmos::cluster::RegionPlacement{};
  }
  static bool Has(const cosmos::cluster::RegionPlacement& p, const std::string& id) {
    return std::count(p.replicas.begin(), p.replicas.end(), id) > 0;
  }

  // The primary's copy of `region` (through the cluster client).
  std::vector<std::byte> ReadAll(const std::string& region, size_t size) {
    std::vector<std::byte> image(size);
    auto c = Client::Connect(ClusterOptions());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return {};
    auto r = (*c)->OpenRegion(region);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    auto s = (*r)->Read(0, image);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return s.ok() ? image : std::vector<std::byte>{};
  }

  // Every replica of the current epoch holds exactly `image`: each one's
  // Verify digest of the whole region matches (the primary through the
  // client path, the backups through the replica path).
  void ExpectReplicasEqual(const std::string& region, std::span<const std::byte> image) {
    const auto p = Placement(region);
    ASSERT_FALSE(p.replicas.empty());
    for (const auto& id : p.replicas) {
      auto c = NodeClient(id);
      ASSERT_NE(c, nullptr);
      auto r = cosmos::client::OpenRegionAtEpoch(*c, region, p.epoch, id != p.primary);
      ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
      auto s = (*r)->Verify(0, image);
      EXPECT_TRUE(s.ok()) << "replica " << id << " (epoch " << p.epoch << "): " << s.ToString();
    }
  }

  rpm_test::TempDir tmp_;
  EtcdProcess etcd_;
  std::unique_ptr<cosmos::cluster::EtcdClient> etcd_client_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::map<std::string, std::string> slots_;  // node id -> pool directory
};

// A backup is SIGKILLed, its pool file deleted while it is down, and it is
// started again on an empty pool: the primary creates the region there and
// copies everything (the region stays writable), then adds it by CAS; every
// replica's Verify digest then equals the acknowledged image.
TEST_F(ClusterFaultTest, NodeRestartedWithAnEmptyPoolIsRebuiltByResync) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"n1", "n2", "n3"}));
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  constexpr size_t kSize = 4 << 20;
  ASSERT_TRUE((*client)->CreateRegion("empty", kSize, ro).ok());
  auto region = (*client)->OpenRegion("empty");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  Region& r = **region;
  std::vector<std::byte> image(kSize);
  auto put = [&](size_t block, uint32_t seed) {
    auto data = Pattern(kBlock, seed);
    std::copy(data.begin(), data.end(), image.begin() + block * kBlock);
    ASSERT_TRUE(r.Write(block * kBlock, data).ok());
    auto s = r.Flush(block * kBlock, kBlock);
    ASSERT_TRUE(s.ok()) << "block " << block << ": " << s.ToString();
  };
  for (size_t b = 0; b < kSize / kBlock; b += 3) put(b, 100 + b);

  std::string victim;
  for (const auto& id : r.info().replicas) {
    if (id != r.info().primary) victim = id;
  }
  nodes_.at(victim)->Stop(SIGKILL);
  for (size_t b = 1; b < kSize / kBlock; b += 11) put(b, 5000 + b);
  ASSERT_FALSE(Has(Placement("empty"), victim));
  // The disk is replaced: the pool is gone.
  const std::string pool = tmp_.path + "/" + slots_.at(victim) + "/pool";
  ASSERT_TRUE(std::filesystem::exists(pool));
  std::filesystem::remove_all(pool);
  ASSERT_TRUE(WaitRegistered(2)) << "the killed node's lease did not expire";
  ASSERT_NO_FATAL_FAILURE(StartNode(victim, slots_.at(victim)));

  uint32_t seed = 9000;
  size_t next = 2;
  ASSERT_TRUE(WaitFor(
      [&] {
        put(next, seed++);
        next = (next + 37) % (kSize / kBlock);
        return Has(Placement("empty"), victim);
      },
      std::chrono::seconds(90)))
      << "the node on an empty pool was not resynced and added";
  put(0, seed++);  // a write of the new epoch reaches it too
  const std::string primary_log = ReadFile(Log(Placement("empty").primary));
  // Nothing of the old copy was left: every 64 KiB block differed (only
  // its written 4 KiB sub-blocks needed copying).
  EXPECT_NE(primary_log.find("64 KiB blocks alone would copy " + std::to_string(kSize) + " bytes"),
            std::string::npos)
      << primary_log;

  std::vector<std::byte> got(kSize);
  ASSERT_TRUE(r.Read(0, got).ok());
  ASSERT_TRUE(got == image) << "the primary lost an acknowledged write";
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasEqual("empty", image));
}

// etcd is SIGKILLed during write+flush load from three clients: flushes go
// on being acknowledged in the configuration the nodes know. A backup then
// dies while etcd is down: the primary logs that the reconfiguration waits
// for etcd. etcd restarts (same ports and data): the dead backup is removed
// (new epoch), writes are acknowledged again, and nothing acknowledged was
// lost.
TEST_F(ClusterFaultTest, EtcdKilledAndRestartedDuringLoad) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"n1", "n2", "n3"}));
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  constexpr size_t kSize = 1 << 20;
  ASSERT_TRUE((*client)->CreateRegion("etcd_down", kSize, ro).ok());
  const auto before = Placement("etcd_down");
  Writers writers(ClusterOptions(), "etcd_down", kSize / kBlock, 3);
  ASSERT_TRUE(WaitFor([&] { return writers.acks() >= 30; }, std::chrono::seconds(60)))
      << writers.last_error();

  etcd_.Kill();
  const uint64_t errors_at_kill = writers.errors();
  const uint64_t acks_at_kill = writers.acks();
  ASSERT_TRUE(
      WaitFor([&] { return writers.acks() >= acks_at_kill + 100; }, std::chrono::seconds(60)))
      << "flushes stopped being acknowledged while etcd was down: " << writers.last_error();
  EXPECT_EQ(writers.errors(), errors_at_kill) << writers.last_error();

  std::string victim;
  for (const auto& id : before.replicas) {
    if (id != before.primary) victim = id;
  }
  nodes_.at(victim)->Stop(SIGKILL);
  // The primary's next forward fails; removing the backup needs etcd.
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFile(Log(before.primary)).find("cannot remove failed node " + victim + " yet") !=
               std::string::npos;
      },
      std::chrono::seconds(60)))
      << ReadFile(Log(before.primary));
  // etcd stays down until the primary gave up this attempt (its retries
  // are bounded): the removal must then start again once etcd is back.
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFile(Log(before.primary))
                   .find("failed node " + victim + " not removed (etcd unreachable)") !=
               std::string::npos;
      },
      std::chrono::seconds(60)))
      << ReadFile(Log(before.primary));
  {
    cosmos::cluster::PlacementStore store(*etcd_client_, cosmos::cluster::ClusterKeys());
    EXPECT_FALSE(store.Get("etcd_down").ok());  // etcd is still down
  }

  ASSERT_TRUE(etcd_.Restart()) << "etcd did not restart; see " << etcd_.log();
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto p = Placement("etcd_down");
        return p.epoch > before.epoch && !Has(p, victim);
      },
      std::chrono::seconds(90)))
      << "the dead backup was not removed after etcd returned";
  const uint64_t acks_after = writers.acks();
  ASSERT_TRUE(WaitFor([&] { return writers.acks() >= acks_after + 100; }, std::chrono::seconds(90)))
      << "writes did not resume after etcd returned: " << writers.last_error();
  ASSERT_TRUE(writers.Pause());
  const auto image = ReadAll("etcd_down", kSize);
  ASSERT_EQ(image.size(), kSize);
  EXPECT_EQ(writers.Check(image), "");
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasEqual("etcd_down", image));
  writers.Stop();
  std::printf("acks %llu, errors %llu (last: %s)\n",
              static_cast<unsigned long long>(writers.acks()),
              static_cast<unsigned long long>(writers.errors()), writers.last_error().c_str());
}

// Soak: COSMOS_SOAK_KILLS (default 100; lower it on a slow host) SIGKILLs, each of a
// random replica (primary or backup) of an r=3 region under write+flush load from three clients.
// After each kill the node is started again on its pool under a fresh id (the old id stays
// registered until its lease expires), the primary resyncs it back in, and the region is read back:
// every acknowledged flush is present. At the end every replica's Verify digest equals the
// acknowledged image.
TEST_F(ClusterFaultTest, SoakOfSigkillsUnderLoad) {
  int kills = 100;
  if (const char* env = std::getenv("COSMOS_SOAK_KILLS"); env != nullptr) kills = std::atoi(env);
  ASSERT_NO_FATAL_FAILURE(StartCluster({"n1", "n2", "n3"}));
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  constexpr size_t kSize = 1 << 20;
  ASSERT_TRUE((*client)->CreateRegion("soak", kSize, ro).ok());
  Writers writers(ClusterOptions(), "soak", kSize / kBlock, 3);
  ASSERT_TRUE(WaitFor([&] { return writers.acks() >= 30; }, std::chrono::seconds(60)))
      << writers.last_error();
  std::mt19937 rng(20261203);
  const auto start = std::chrono::steady_clock::now();
  int primaries = 0;
  for (int k = 0; k < kills; ++k) {
    const auto p = Placement("soak");
    ASSERT_EQ(p.replicas.size(), 3u) << "round " << k;
    const std::string victim = p.replicas[rng() % p.replicas.size()];
    primaries += victim == p.primary;
    const auto killed = std::chrono::steady_clock::now();
    nodes_.at(victim)->Stop(SIGKILL);
    ASSERT_TRUE(WaitFor([&] { return !Has(Placement("soak"), victim); }, std::chrono::seconds(60)))
        << "round " << k << ": " << victim << " was not removed; " << writers.last_error();
    const auto removed = std::chrono::steady_clock::now();
    char id[16];
    std::snprintf(id, sizeof(id), "k%03d", k);
    ASSERT_NO_FATAL_FAILURE(StartNode(id, slots_.at(victim)));
    nodes_.erase(victim);
    ASSERT_TRUE(WaitFor(
        [&] {
          const auto now = Placement("soak");
          return now.replicas.size() == 3 && Has(now, id);
        },
        std::chrono::seconds(90)))
        << "round " << k << ": " << id << " was not resynced; " << writers.last_error();
    if (std::getenv("COSMOS_SOAK_VERBOSE") != nullptr) {
      std::printf(
          "round %d: %s (%s) removed after %.2f s, %s resynced after %.2f s\n", k, victim.c_str(),
          victim == p.primary ? "primary" : "backup",
          std::chrono::duration<double>(removed - killed).count(), id,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - removed).count());
    }
    ASSERT_TRUE(writers.Pause()) << "round " << k;
    const auto image = ReadAll("soak", kSize);
    ASSERT_EQ(image.size(), kSize) << "round " << k;
    const std::string lost = writers.Check(image);
    ASSERT_EQ(lost, "") << "round " << k;
    writers.Resume();
  }
  ASSERT_TRUE(writers.Pause());
  const auto image = ReadAll("soak", kSize);
  ASSERT_EQ(image.size(), kSize);
  EXPECT_EQ(writers.Check(image), "");
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasEqual("soak", image));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  writers.Stop();
  EXPECT_GT(writers.acks(), static_cast<uint64_t>(kills));
  std::printf(
      "soak: %d SIGKILLs (%d of the primary) in %.1f s; %llu flushes acknowledged, %llu "
      "errors (last: %s)\n",
      kills, primaries, seconds, static_cast<unsigned long long>(writers.acks()),
      static_cast<unsigned long long>(writers.errors()), writers.last_error().c_str());
}

// A network namespace with a veth pair to the host: the node inside reaches
// etcd and the other nodes only over the link, which the test takes down.
class Partition {
 public:
  Partition() {
    const unsigned id = static_cast<unsigned>(getpid());
    name_ = "cosmos_pt" + std::to_string(id);
    host_if_ = "cph" + std::to_string(id % 1000000);
    ns_if_ = "cpn" + std::to_string(id % 1000000);
    const std::string net =
        "10." + std::to_string(100 + id % 100) + "." + std::to_string((id / 100) % 250) + ".";
    host_ip_ = net + "1";
    ns_ip_ = net + "2";
    ok_ = Run("ip netns add " + name_) &&
          Run("ip link add " + host_if_ + " type veth peer name " + ns_if_) &&
          Run("ip link set " + ns_if_ + " netns " + name_) &&
          Run("ip addr add " + host_ip_ + "/24 dev " + host_if_) &&
          Run("ip link set " + host_if_ + " up") &&
          Run("ip netns exec " + name_ + " ip addr add " + ns_ip_ + "/24 dev " + ns_if_) &&
          Run("ip netns exec " + name_ + " ip link set " + ns_if_ + " up") &&
          Run("ip netns exec " + name_ + " ip link set lo up");
  }
  ~Partition() {
    Run("ip link del " + host_if_);
    Run("ip netns del " + name_);
  }
  bool ok() const { return ok_; }
  bool Cut() { return Run("ip link set " + host_if_ + " down"); }
  const std::string& name() const { return name_; }
  const std::string& host_ip() const { return host_ip_; }
  const std::string& ns_ip() const { return ns_ip_; }

 private:
  static bool Run(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
  }
  std::string name_, host_if_, ns_if_, host_ip_, ns_ip_;
  bool ok_ = false;
};

// The primary n1 runs in its own network namespace; a client of epoch 1
// sits on its side of the partition. The link is taken down: the backups
// fail n1 over (epoch 2) and the client's write + flush through n1 at epoch
// 1 must not be acknowledged (n1 reaches neither a backup nor etcd), and its
// bytes are not in the new configuration.
TEST_F(ClusterFaultTest, PartitionedOldPrimaryCannotAcknowledgeAFlush) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace and a veth pair";
  Partition part;
  if (!part.ok()) GTEST_SKIP() << "cannot create a network namespace with a veth pair (ip netns)";
  etcd_.set_extra_host(part.host_ip());
  ASSERT_TRUE(etcd_.Start()) << "etcd did not start; see " << etcd_.log();
  etcd_client_ = etcd_.Client();
  ASSERT_NE(etcd_client_, nullptr);
  const std::string etcd_host_side = etcd_.endpoint_on(part.host_ip());
  ASSERT_NO_FATAL_FAILURE(StartNode("n1", "n1", part.ns_ip(), part.name(), etcd_host_side));
  ASSERT_NO_FATAL_FAILURE(StartNode("n2", "n2", part.host_ip(), "", etcd_host_side));
  ASSERT_NO_FATAL_FAILURE(StartNode("n3", "n3", part.host_ip(), "", etcd_host_side));
  ASSERT_TRUE(WaitRegistered(3)) << "the nodes did not register";

  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  constexpr size_t kSize = 64 << 10;
  auto info = (*client)->CreateRegion("split", kSize, ro);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ(info->primary, "n1");  // placement: equal nodes, smallest id first
  const std::string n1 = nodes_.at("n1")->address();

  // The old primary's client lives in n1's namespace (its sockets are made
  // by a thread that joined it).
  std::mutex mu;
  std::condition_variable cv;
  int phase = 0;  // 1: connected and acknowledged; 2: go; 3: done
  cosmos::Status before_cut, after_cut;
  bool joined = false;
  const auto stale = Pattern(kBlock, 77);
  std::thread inside([&] {
    const int ns = open(("/var/run/netns/" + part.name()).c_str(), O_RDONLY);
    joined = ns >= 0 && setns(ns, CLONE_NEWNET) == 0;
    if (ns >= 0) close(ns);
    ClientOptions o;
    o.server = n1;
    o.busy_poll = false;
    o.timeout_ms = 60000;  // longer than any retry inside n1: the answer decides
    std::unique_ptr<Client> c;
    std::unique_ptr<Region> r;
    if (joined) {
      auto cc = Client::Connect(o);
      before_cut = cc.status();
      if (cc.ok()) {
        c = std::move(*cc);
        auto rr = cosmos::client::OpenRegionAtEpoch(*c, "split", 1, false);
        before_cut = rr.status();
        if (rr.ok()) {
          r = std::move(*rr);
          const auto data = Pattern(kBlock, 1);
          before_cut = r->Write(0, data);
          if (before_cut.ok()) before_cut = r->Flush(0, kBlock);
        }
      }
    }
    {
      std::unique_lock lock(mu);
      phase = 1;
      cv.notify_all();
      cv.wait(lock, [&] { return phase == 2; });
    }
    if (r != nullptr) {
      after_cut = r->Write(kBlock, stale);
      if (after_cut.ok()) after_cut = r->Flush(kBlock, kBlock);
    }
    std::lock_guard lock(mu);
    phase = 3;
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return phase == 1; });
  }
  EXPECT_TRUE(joined);
  EXPECT_TRUE(before_cut.ok()) << before_cut.ToString();

  const bool cut = part.Cut();
  EXPECT_TRUE(cut);
  const bool failed_over = cut && WaitFor(
                                      [&] {
                                        const auto p = Placement("split");
                                        return p.epoch >= 2 && !Has(p, "n1");
                                      },
                                      std::chrono::seconds(60));
  EXPECT_TRUE(failed_over) << "the backups did not fail the partitioned primary over";
  {
    std::unique_lock lock(mu);
    phase = 2;
    cv.notify_all();
    cv.wait(lock, [&] { return phase == 3; });
  }
  inside.join();
  ASSERT_TRUE(failed_over);
  EXPECT_FALSE(after_cut.ok()) << "the partitioned old primary acknowledged a flush at epoch 1";
  std::printf("flush through the partitioned old primary: %s\n", after_cut.ToString().c_str());

  // The new configuration serves, without the stale bytes.
  auto region = (*client)->OpenRegion("split");
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  EXPECT_NE((*region)->info().primary, "n1");
  std::vector<std::byte> got(kBlock);
  ASSERT_TRUE((*region)->Read(0, got).ok());
  EXPECT_EQ(got, Pattern(kBlock, 1));
  ASSERT_TRUE((*region)->Read(kBlock, got).ok());
  EXPECT_EQ(got, std::vector<std::byte>(kBlock));
  const auto fresh = Pattern(kBlock, 2);
  ASSERT_TRUE((*region)->Write(2 * kBlock, fresh).ok());
  auto s = (*region)->Flush(2 * kBlock, kBlock);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// `cosmos cluster add-replica REGION NODE`: one CAS raises the factor and
// names the node, the primary resyncs exactly that node (not the one
// placement would choose) and adds it by CAS; its copy then equals the
// others (Verify digests).
using ClusterAdminTest = ClusterFaultTest;

TEST_F(ClusterAdminTest, AddReplicaResyncsTheNamedNode) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"n1", "n2", "n3", "n4"}));
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  cosmos::RegionOptions ro;
  ro.replicas = 2;
  constexpr size_t kSize = 1 << 20;
  auto info = (*client)->CreateRegion("grow", kSize, ro);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_FALSE(Has(Placement("grow"), "n4"));  // placement prefers smaller ids
  Writers writers(ClusterOptions(), "grow", kSize / kBlock, 2);
  ASSERT_TRUE(WaitFor([&] { return writers.acks() >= 20; }, std::chrono::seconds(60)))
      << writers.last_error();

  // Writes go on during the resync.
  auto [code, out] = Cosmos({"cluster", "add-replica", "grow", "n4", "--cluster", etcd_.endpoint(),
                             "--timeout", "120", "--json"});
  ASSERT_EQ(code, 0) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["added"], "n4") << out;
  EXPECT_EQ(j["region"]["replication_factor"], 3) << out;
  EXPECT_EQ(j["region"]["replicas"].size(), 3u) << out;
  EXPECT_GE(j["region"]["epoch"].get<int>(), 3) << out;  // the request, then the add
  const auto p = Placement("grow");
  EXPECT_TRUE(Has(p, "n4"));
  EXPECT_EQ(p.joining, "");
  const uint64_t acks = writers.acks();
  ASSERT_TRUE(WaitFor([&] { return writers.acks() >= acks + 20; }, std::chrono::seconds(60)))
      << writers.last_error();
  ASSERT_TRUE(writers.Pause());
  const auto image = ReadAll("grow", kSize);
  ASSERT_EQ(image.size(), kSize);
  EXPECT_EQ(writers.Check(image), "");
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasEqual("grow", image));

  // A replica already: refused, nothing changes.
  std::tie(code, out) =
      Cosmos({"cluster", "add-replica", "grow", "n4", "--cluster", etcd_.endpoint(), "--json"});
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(Placement("grow").epoch, p.epoch);
}

// `cosmos cluster drain NODE` moves every region off NODE (here the primary
// of both regions) while a client writes: each region gets a replacement by
// resync, then loses NODE, keeps its factor, and holds every acknowledged
// write on every replica.
TEST_F(ClusterAdminTest, DrainMovesEveryRegionOffTheNode) {
  ASSERT_NO_FATAL_FAILURE(StartCluster({"n1", "n2", "n3", "n4"}));
  auto client = Client::Connect(ClusterOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  constexpr size_t kSize = 1 << 20;
  cosmos::RegionOptions r2, r3;
  r2.replicas = 2;
  r3.replicas = 3;
  ASSERT_TRUE((*client)->CreateRegion("d2", kSize, r2).ok());
  ASSERT_TRUE((*client)->CreateRegion("d3", kSize, r3).ok());
  ASSERT_EQ(Placement("d2").primary, "n1");
  ASSERT_EQ(Placement("d3").primary, "n1");
  Writers writers(ClusterOptions(), "d2", kSize / kBlock, 2);
  ASSERT_TRUE(WaitFor([&] { return writers.acks() >= 20; }, std::chrono::seconds(60)))
      << writers.last_error();
  // d3 holds data too (written once, checked after the drain).
  auto d3 = (*client)->OpenRegion("d3");
  ASSERT_TRUE(d3.ok()) << d3.status().ToString();
  std::vector<std::byte> d3_image(kSize);
  for (size_t b = 0; b < kSize / kBlock; b += 5) {
    auto data = Pattern(kBlock, 700 + b);
    std::copy(data.begin(), data.end(), d3_image.begin() + b * kBlock);
    ASSERT_TRUE((*d3)->Write(b * kBlock, data).ok());
    ASSERT_TRUE((*d3)->Flush(b * kBlock, kBlock).ok());
  }

  auto [code, out] = Cosmos(
      {"cluster", "drain", "n1", "--cluster", etcd_.endpoint(), "--timeout", "120", "--json"});
  ASSERT_EQ(code, 0) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["node"], "n1");
  ASSERT_EQ(j["moved"].size(), 2u) << out;
  for (const char* name : {"d2", "d3"}) {
    const auto p = Placement(name);
    EXPECT_FALSE(Has(p, "n1")) << name;
    EXPECT_NE(p.primary, "n1") << name;
    EXPECT_EQ(static_cast<int>(p.replicas.size()), p.replication_factor) << name;
  }
  EXPECT_EQ(Placement("d2").replication_factor, 2);
  EXPECT_EQ(Placement("d3").replication_factor, 3);

  const uint64_t acks = writers.acks();
  ASSERT_TRUE(WaitFor([&] { return writers.acks() >= acks + 20; }, std::chrono::seconds(60)))
      << "writes did not go on after the drain: " << writers.last_error();
  ASSERT_TRUE(writers.Pause());
  const auto image = ReadAll("d2", kSize);
  ASSERT_EQ(image.size(), kSize);
  EXPECT_EQ(writers.Check(image), "");
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasEqual("d2", image));
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasEqual("d3", d3_image));

  // Nothing left on n1: a second drain moves nothing.
  std::tie(code, out) = Cosmos({"cluster", "drain", "n1", "--cluster", etcd_.endpoint(), "--json"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["moved"].size(), 0u) << out;
}

}  // namespace
