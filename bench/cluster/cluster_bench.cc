// cluster benchmark (scripts/bench.sh cluster): etcd and three cosmosd
// processes on loopback. Replicated write+flush (r=2, r=3) against
// unreplicated write+flush on the same primary node in the same run
// (A/B/C rounds), and the failover time after a SIGKILL of the primary.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bench_report.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "cosmos/client.h"
#include "etcd_harness.h"
#include "rpm_harness.h"

namespace {

using cosmos::Client;
using cosmos::ClientOptions;
using cosmos::Region;
using Clock = std::chrono::steady_clock;

struct Args {
  bool quick = false;
  std::string results = "bench/results";
  std::string pool_dir = "/dev/shm";
};

// The resync granularity of src/replication/cluster_node.cc (reported).
constexpr uint64_t kResyncBlockBytes = 64 * 1024, kResyncSubBlockBytes = 4 * 1024;

double Micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// Per-op latencies (us) of `n` write+flush of `size` bytes at rotating offsets.
std::vector<double> WriteFlush(Region& r, size_t size, int n) {
  std::vector<std::byte> data(size, std::byte{0x5a});
  std::vector<double> lat;
  lat.reserve(n);
  for (int i = 0; i < n; ++i) {
    const uint64_t off = (static_cast<uint64_t>(i) % 64) * 4096;
    data[0] = std::byte{static_cast<uint8_t>(i)};
    const auto t0 = Clock::now();
    cosmos::Status s = r.Write(off, data);
    if (s.ok()) s = r.Flush(off, size);
    if (!s.ok()) {
      std::fprintf(stderr, "cluster bench: write+flush failed: %s\n", s.ToString().c_str());
      std::exit(1);
    }
    lat.push_back(Micros(Clock::now() - t0));
  }
  return lat;
}

class Cluster {
 public:
  bool Start(const std::string& pool_dir) {
    if (!etcd_.Start()) {
      std::fprintf(stderr, "cluster bench: etcd did not start (%s)\n", etcd_.log().c_str());
      return false;
    }
    pool_dir_ = pool_dir + "/cosmos_cluster_bench_" + std::to_string(getpid());
    std::filesystem::create_directories(pool_dir_);
    for (int i = 1; i <= 3; ++i) {
      if (!StartNode("n" + std::to_string(i))) return false;
    }
    return WaitNodes(3);
  }
  ~Cluster() {
    nodes_.clear();
    std::filesystem::remove_all(pool_dir_);
  }

  // Pool size of the nodes started from now on; whether their output goes
  // to Log(id) instead of this process's stdout.
  void set_pool_size(std::string size) { pool_size_ = std::move(size); }
  void set_logs(bool logs) { logs_ = logs; }
  std::string Log(const std::string& id) const { return tmp_.path + "/" + id + ".log"; }

  bool StartNode(const std::string& id) {
    const std::string dir = tmp_.path + "/" + id;
    std::filesystem::create_directories(dir);
    auto d = std::make_unique<rpm_test::Daemon>();
    if (!d->Start(
            dir,
            {"--pool", pool_dir_ + "/" + id + ",size=" + pool_size_ + ",create", "--workers", "1",
             "--flushers", "1", "--cluster", etcd_.endpoint(), "--node-id", id, "-c", NodeConfig()},
            logs_ ? Log(id) : "")) {
      std::fprintf(stderr, "cluster bench: cosmosd %s did not start\n", id.c_str());
      return false;
    }
    nodes_[id] = std::move(d);
    return true;
  }
  // The nodes' config: workers block at once when idle (idle_spin_us = 0).
  // Three nodes, etcd and the client share two cores here: a worker that
  // spins after its last packet takes the core from the next thread in the
  // chain (measured: replicated write+flush 4 KB p50 ~550 us with the
  // default 100 us spin, ~45 us without).
  std::string NodeConfig() {
    const std::string path = tmp_.path + "/node.toml";
    if (FILE* f = std::fopen(path.c_str(), "w"); f != nullptr) {
      std::fputs("[server]\nidle_spin_us = 0\n", f);
      std::fclose(f);
    }
    return path;
  }
  bool WaitGone(const std::string& id) {
    auto client = etcd_.Client();
    cosmos::cluster::Membership m(*client, cosmos::cluster::ClusterKeys());
    return cluster_test::WaitFor([&] {
      auto list = m.ListNodes();
      return list.ok() && std::none_of(list->nodes.begin(), list->nodes.end(),
                                       [&](const auto& n) { return n.id == id; });
    });
  }
  bool WaitNodes(size_t n) {
    auto client = etcd_.Client();
    cosmos::cluster::Membership m(*client, cosmos::cluster::ClusterKeys());
    return cluster_test::WaitFor([&] {
      auto list = m.ListNodes();
      return list.ok() && list->nodes.size() == n;
    });
  }
  void Kill(const std::string& id) { nodes_.at(id)->Stop(SIGKILL); }
  // The region's placement in etcd (epoch 0 when it cannot be read).
  cosmos::cluster::RegionPlacement Placement(const std::string& region) const {
    auto client = etcd_.Client();
    cosmos::cluster::PlacementStore store(*client, cosmos::cluster::ClusterKeys());
    auto vp = store.Get(region);
    if (!vp.ok()) {
      cosmos::cluster::RegionPlacement none;
      none.epoch = 0;
      return none;
    }
    return vp->placement;
  }

  ClientOptions ClusterOptions() const {
    ClientOptions o;
    o.cluster = etcd_.endpoint();
    o.busy_poll = false;
    o.idle_spin_us = 0;
    o.timeout_ms = 5000;
    o.failover_timeout_ms = 30000;
    return o;
  }
  ClientOptions NodeOptions(const std::string& id) const {
    ClientOptions o;
    o.server = nodes_.at(id)->address();
    o.busy_poll = false;
    o.idle_spin_us = 0;
    o.timeout_ms = 5000;
    return o;
  }

 private:
  rpm_test::TempDir tmp_;
  cluster_test::EtcdProcess etcd_;
  std::string pool_dir_;
  std::string pool_size_ = "64M";
  bool logs_ = false;
  std::map<std::string, std::unique_ptr<rpm_test::Daemon>> nodes_;
};

template <typename T>
T Must(cosmos::Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "cluster bench: %s: %s\n", what, r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

// resync_bytes_ratio: a 64 MiB r=3 region, filled; a backup SIGKILLed; 1% of
// the region's 4 KiB pages rewritten at random (write+flush) while it is
// down; the node restarted on its pool (it keeps its stale copy) under the
// same id once its lease expired; the primary's resync compares 64 KiB
// blocks by Verify digest, a differing block again in 4 KiB sub-blocks, and
// copies only the sub-blocks that differ. The primary logs what it copied,
// what a compare of 64 KiB blocks alone would have copied (the same resync,
// the same blocks: the baseline), and how many digests it compared.
bool MeasureResync(const Args& args, cosmos::bench::BenchReport& report) {
  constexpr uint64_t kSize = 64ull << 20, kPage = 4096;
  const int rounds = args.quick ? 1 : 3;
  Cluster cluster;
  cluster.set_pool_size("160M");
  cluster.set_logs(true);
  if (!cluster.Start(args.pool_dir)) return false;
  auto client = Must(Client::Connect(cluster.ClusterOptions()), "connect (resync)");
  cosmos::RegionOptions ro;
  ro.replicas = 3;
  Must(client->CreateRegion("bench_resync", kSize, ro), "create 64 MiB r=3");
  auto region = Must(client->OpenRegion("bench_resync"), "open 64 MiB r=3");
  std::mt19937_64 rng(20261203);
  std::vector<std::byte> chunk(1 << 20);
  for (uint64_t off = 0; off < kSize; off += chunk.size()) {
    for (auto& b : chunk) b = std::byte{static_cast<uint8_t>(rng() | 1)};
    cosmos::Status s = region->Write(off, chunk);
    if (s.ok()) s = region->Flush(off, chunk.size());
    if (!s.ok()) {
      std::fprintf(stderr, "cluster bench: filling the resync region: %s\n", s.ToString().c_str());
      return false;
    }
  }
  std::vector<double> ratios, coarse, compared, sub_compared, seconds, changed;
  for (int round = 0; round < rounds; ++round) {
    const auto before = cluster.Placement("bench_resync");
    std::vector<std::string> backups;
    for (const auto& id : before.replicas) {
      if (id != before.primary) backups.push_back(id);
    }
    if (before.replicas.size() != 3 || backups.empty()) {
      std::fprintf(stderr, "cluster bench: resync region not at 3 replicas\n");
      return false;
    }
    const std::string victim = backups[round % backups.size()];
    cluster.Kill(victim);
    const uint64_t pages = kSize / kPage;
    std::set<uint64_t> touched;
    std::vector<std::byte> page(kPage);
    while (touched.size() < (pages + 99) / 100) {  // 1% of the pages
      const uint64_t p = rng() % pages;
      touched.insert(p);
      for (auto& b : page) b = std::byte{static_cast<uint8_t>(rng())};
      cosmos::Status s = region->Write(p * kPage, page);
      if (s.ok()) s = region->Flush(p * kPage, kPage);
      if (!s.ok()) {
        std::fprintf(stderr, "cluster bench: write while a backup is down: %s\n",
                     s.ToString().c_str());
        return false;
      }
    }
    changed.push_back(double(touched.size()) / double(pages));
    if (!cluster.WaitGone(victim)) return false;
    const auto restarted = Clock::now();
    if (!cluster.StartNode(victim)) return false;
    const bool added = cluster_test::WaitFor(
        [&] {
          const auto p = cluster.Placement("bench_resync");
          return std::count(p.replicas.begin(), p.replicas.end(), victim) > 0;
        },
        std::chrono::seconds(300));
    if (!added) {
      std::fprintf(stderr, "cluster bench: %s was not resynced (see %s)\n", victim.c_str(),
                   cluster.Log(before.primary).c_str());
      return false;
    }
    seconds.push_back(std::chrono::duration<double>(Clock::now() - restarted).count());
    // The primary's account of this resync (its last one of `victim`).
    std::ifstream in(cluster.Log(before.primary));
    const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string key = "node " + victim + " resynced and added: ";
    const size_t at = log.rfind(key);
    unsigned long long bytes = 0, size = 0, coarse_bytes = 0, blocks = 0, subs = 0;
    double ratio = 0, coarse_ratio = 0;
    if (at == std::string::npos ||
        std::sscanf(log.c_str() + at + key.size(),
                    "%llu of %llu bytes copied (resync_bytes_ratio %lf; 64 KiB blocks alone would "
                    "copy %llu bytes, ratio %lf), %llu digests of 64 KiB blocks and %llu of 4 KiB "
                    "sub-blocks compared",
                    &bytes, &size, &ratio, &coarse_bytes, &coarse_ratio, &blocks, &subs) != 7) {
      std::fprintf(stderr, "cluster bench: no resync record for %s in %s\n", victim.c_str(),
                   cluster.Log(before.primary).c_str());
      return false;
    }
    ratios.push_back(double(bytes) / double(size));
    coarse.push_back(double(coarse_bytes) / double(size));
    compared.push_back(double(blocks));
    sub_compared.push_back(double(subs));
    std::printf(
        "  resync %d: %s back after %.2f s; %.2f%% of pages changed; copied %llu of %llu bytes "
        "(ratio %.4f; 64 KiB blocks alone: %llu, %.4f); %llu + %llu digests\n",
        round + 1, victim.c_str(), seconds.back(), 100 * changed.back(), bytes, size, ratios.back(),
        coarse_bytes, coarse.back(), blocks, subs);
  }
  report.AddWithBaseline("resync_bytes_ratio", cosmos::bench::Median(ratios), "ratio", "lower",
                         "resync_bytes_ratio_64KiB_blocks_only", cosmos::bench::Median(coarse),
                         ratios, coarse);
  report.Add("resync_changed_page_fraction", cosmos::bench::Median(changed), "fraction", "lower",
             changed);
  report.Add("resync_block_bytes", double(kResyncBlockBytes), "bytes", "lower");
  report.Add("resync_sub_block_bytes", double(kResyncSubBlockBytes), "bytes", "lower");
  report.Add("resync_blocks_compared", cosmos::bench::Median(compared), "count", "lower", compared);
  report.Add("resync_sub_blocks_compared", cosmos::bench::Median(sub_compared), "count", "lower",
             sub_compared);
  report.Add("resync_seconds", cosmos::bench::Median(seconds), "s", "lower", seconds);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      args.quick = true;
    } else if (a == "--results" && i + 1 < argc) {
      args.results = argv[++i];
    } else if (a == "--pool-dir" && i + 1 < argc) {
      args.pool_dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: cluster_bench [--quick] [--results DIR] [--pool-dir DIR]\n");
      return 2;
    }
  }
  if (cluster_test::EtcdBinary().empty()) {
    std::fprintf(stderr, "cluster bench: etcd (etcd-server) is not installed\n");
    return 1;
  }
  const int rounds = args.quick ? 3 : 7;
  const int ops = args.quick ? 300 : 2000;
  cosmos::bench::BenchReport report("cluster", args.quick);
  // First, on its own cluster (64 MiB regions need larger pools).
  if (!MeasureResync(args, report)) return 1;

  Cluster cluster;
  if (!cluster.Start(args.pool_dir)) return 1;
  auto client = Must(Client::Connect(cluster.ClusterOptions()), "connect (cluster)");
  cosmos::RegionOptions r2o, r3o;
  r2o.replicas = 2;
  r3o.replicas = 3;
  Must(client->CreateRegion("bench_r2", 1 << 20, r2o), "create r=2");
  Must(client->CreateRegion("bench_r3", 1 << 20, r3o), "create r=3");
  auto r2 = Must(client->OpenRegion("bench_r2"), "open r=2");
  auto r3 = Must(client->OpenRegion("bench_r3"), "open r=3");
  // The baseline: an unreplicated region on the same primary node, used
  // through a plain client (no epoch, no forwarding).
  const std::string primary = r2->info().primary;
  if (r3->info().primary != primary) {
    std::fprintf(stderr, "cluster bench: r=2 and r=3 have different primaries\n");
    return 1;
  }
  auto plain_client = Must(Client::Connect(cluster.NodeOptions(primary)), "connect (plain)");
  Must(plain_client->CreateRegion("bench_plain", 1 << 20), "create plain");
  auto plain = Must(plain_client->OpenRegion("bench_plain"), "open plain");
  std::printf("cluster bench: primary %s, durability %s, %d rounds x %d ops\n", primary.c_str(),
              cosmos::DurabilityName(r2->info().durability), rounds, ops);

  for (size_t size : {size_t{4096}, size_t{64}}) {
    std::vector<double> a, b, c, a_ops, b_ops, c_ops;
    (void)WriteFlush(*plain, size, 50);  // warm-up of every path
    (void)WriteFlush(*r2, size, 50);
    (void)WriteFlush(*r3, size, 50);
    for (int round = 0; round < rounds; ++round) {
      for (auto [region, p50, rate] :
           {std::tuple{plain.get(), &a, &a_ops}, std::tuple{r2.get(), &b, &b_ops},
            std::tuple{r3.get(), &c, &c_ops}}) {
        const auto t0 = Clock::now();
        auto lat = WriteFlush(*region, size, ops);
        const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        p50->push_back(cosmos::bench::Quantile(lat, 0.5));
        rate->push_back(ops / secs);
      }
      std::printf("  %zu B round %d: p50 plain %.1f us, r=2 %.1f us, r=3 %.1f us\n", size,
                  round + 1, a.back(), b.back(), c.back());
    }
    const std::string tag = size == 4096 ? "4KB" : "64B";
    const std::string base = "unreplicated_write_flush_" + tag + "_p50_us";
    report.AddWithBaseline("replicated_write_flush_" + tag + "_p50_us", cosmos::bench::Median(b),
                           "us", "lower", base, cosmos::bench::Median(a), b, a);
    report.AddWithBaseline("replicated_r3_write_flush_" + tag + "_p50_us", cosmos::bench::Median(c),
                           "us", "lower", base, cosmos::bench::Median(a), c, a);
    if (size == 4096) {
      report.AddWithBaseline("replicated_write_flush_4KB_ops", cosmos::bench::Median(b_ops),
                             "ops/s", "higher", "unreplicated_write_flush_4KB_ops",
                             cosmos::bench::Median(a_ops), b_ops, a_ops);
    }
  }

  // Failover: a writer doing write+flush of 4 KiB; SIGKILL of the primary;
  // the time until the first flush completes on the new configuration.
  const int failovers = args.quick ? 3 : 5;
  std::vector<double> failover_ms;
  std::string last_victim;
  for (int f = 0; f < failovers; ++f) {
    const std::string name = "bench_fo" + std::to_string(f);
    // A client per round that works without pauses until the kill: the RPC
    // layer counts an application's pauses between calls (here: the node
    // restarts between rounds) as delay and raises its silence limit for
    // ~10 s (capped at 250 ms for the cluster client's sessions).
    auto fo_client = Must(Client::Connect(cluster.ClusterOptions()), "connect (failover)");
    Must(fo_client->CreateRegion(name, 1 << 20, r3o), "create failover region");
    auto region = Must(fo_client->OpenRegion(name), "open failover region");
    const std::string victim = region->info().primary;
    (void)WriteFlush(*region, 4096, 100);  // under load, then the kill
    cluster.Kill(victim);
    const auto killed = Clock::now();
    (void)WriteFlush(*region, 4096, 1);  // fails over inside the call
    failover_ms.push_back(Micros(Clock::now() - killed) / 1000.0);
    std::printf("  failover %d: %s killed, %s primary at epoch %llu after %.0f ms\n", f + 1,
                victim.c_str(), region->info().primary.c_str(),
                static_cast<unsigned long long>(region->info().epoch), failover_ms.back());
    region.reset();
    last_victim = victim;
    // A third node again for the next round: a fresh id once the victim's
    // lease (3 s) has expired, so placement cannot pick the dead node.
    if (f + 1 < failovers &&
        (!cluster.WaitGone(victim) || !cluster.StartNode("n" + std::to_string(4 + f)) ||
         !cluster.WaitNodes(3))) {
      return 1;
    }
  }
  report.Add("failover_ms", cosmos::bench::Median(failover_ms), "ms", "lower", failover_ms);
  // False failovers, measured after the failover (a host that was just
  // saturated makes the RPC layer raise its silence limit for ~10 s, which
  // would lengthen failover_ms): write+flush on a new r=2 region on the two
  // surviving nodes while two processes spin on the host's cores; no live
  // node may be declared dead.
  {
    if (!cluster.WaitGone(last_victim)) return 1;  // placement must not pick it
    cosmos::RegionOptions r2o_hog;
    r2o_hog.replicas = 2;
    Must(client->CreateRegion("bench_hog", 1 << 20, r2o_hog), "create load region");
    auto hog_region = Must(client->OpenRegion("bench_hog"), "open load region");
    auto epochs = [&] {
      std::map<std::string, uint64_t> e;
      for (const auto& info : Must(client->ListRegions(), "list regions"))
        e[info.name] = info.epoch;
      return e;
    };
    (void)WriteFlush(*hog_region, 4096, 20);
    const auto before = epochs();
    std::vector<pid_t> hogs;
    for (int i = 0; i < 2; ++i) {
      pid_t pid = fork();
      if (pid == 0) {
        for (;;) __asm__ __volatile__("" ::: "memory");  // spin until SIGKILL
      }
      hogs.push_back(pid);
    }
    const auto until = Clock::now() + std::chrono::seconds(args.quick ? 3 : 10);
    while (Clock::now() < until) (void)WriteFlush(*hog_region, 4096, 20);
    for (pid_t pid : hogs) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    double gained = 0;
    for (const auto& [name, epoch] : epochs()) {
      // Only the loaded region: degraded regions of the failover rounds may
      // gain an epoch meanwhile from a resync adding a node back.
      auto it = before.find(name);
      if (name == "bench_hog" && it != before.end()) {
        gained += static_cast<double>(epoch - it->second);
      }
    }
    std::printf("  false failovers under CPU load: %.0f\n", gained);
    report.Add("false_failovers", gained, "count", "lower", std::vector<double>{gained});
  }
  report.Note(
      "3 cosmosd (1 worker, 1 flusher each), etcd and the client on one 2-core host, "
      "loopback; pools in " +
      args.pool_dir +
      (args.pool_dir == "/dev/shm" ? " (tmpfs: durability none, so the figures are "
                                     "network + forwarding, not msync)"
                                   : "") +
      "; client and node workers block as soon as they are idle (idle_spin_us 0) for "
      "the baseline and the replicated runs alike");
  report.Note(
      "baseline: an unreplicated region on the same primary node through a plain "
      "client; ops/s are one synchronous write+flush at a time on both sides");
  report.Note(
      "failover_ms: SIGKILL of the primary right after 100 write+flush, until the next "
      "write+flush completes on the new configuration: the backups' heartbeats (20 ms x 5 "
      "missed) see the primary die and one fails it over by an etcd CAS, while the client's "
      "session (same budget) ends and the client polls the placement every 5 ms, then "
      "reopens the region on the new primary and repeats the call. false_failovers: epochs "
      "the loaded r=2 region gained during its write+flush while two processes spin "
      "on both cores (after the failover phase)");
  report.Note(
      "resync_bytes_ratio: bytes the primary's resync copied / region size, after 1% of the "
      "4 KiB pages of a filled 64 MiB r=3 region were rewritten at random while a backup was "
      "down (SIGKILL, restarted on its pool under the same id once its lease expired); its "
      "baseline resync_bytes_ratio_64KiB_blocks_only is what the same resync would have "
      "copied comparing 64 KiB blocks alone (the differing 64 KiB blocks x 64 KiB, counted "
      "in the same run); resync_blocks_compared / resync_sub_blocks_compared: Verify digests "
      "of 64 KiB blocks and of 4 KiB sub-blocks of the differing blocks; on its own cluster "
      "(pools of 160M) before the other phases");
  report.Note(
      "build: whatever CMake build the binary comes from (scripts/bench.sh: "
      "build-release)");
  return report.Write(args.results) ? 0 : 1;
}
