// secure benchmark driver: a secure region over a secure connection against a
// plain region over a plain connection, both served by the same in-process
// cosmosd (one worker, simulated enclave) in the same run, alternating A/B
// rounds. Measures write+flush 64 B and 4 KiB, read 4 KiB (p50/p99) and
// write+flush 4 KiB throughput for each trusted-counter configuration.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.h"
#include "common/check.h"
#include "common/clock.h"
#include "common/log.h"
#include "cosmos/client.h"
#include "pmem/pool.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/enclave_region_engine.h"
#include "server/server.h"

namespace {

using cosmos::bench::BenchReport;
using cosmos::bench::Median;

struct Options {
  bool quick = false;
  std::string results = "bench/results";
  std::string shm_dir = "/dev/shm";
  std::string only;  // run only the configuration with this metric prefix
};

// One trusted-counter configuration of the simulated enclave.
struct CounterConfig {
  // Metric name prefix; "secure_" (the contract's names, BENCHMARKS.md) is
  // cosmosd's default configuration.
  const char* prefix;
  const char* description;
  cosmos::sec::CounterMode mode;
  uint64_t stabilisation_ns;
};

// Percentile (0..100) of a sample (copied), nearest rank; 0 for empty input.
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::vector<std::byte> Data(size_t n, uint8_t fill) {
  return std::vector<std::byte>(n, std::byte{fill});
}

template <typename F>
double TimeUs(F&& f) {
  uint64_t t0 = cosmos::MonotonicNanos();
  f();
  return static_cast<double>(cosmos::MonotonicNanos() - t0) / 1000.0;
}

// Per-side samples: per-round p50 and p99, median over rounds at the end.
struct Side {
  std::vector<double> p50, p99, ops;
  void AddRound(const std::vector<double>& us) {
    p50.push_back(Percentile(us, 50));
    p99.push_back(Percentile(us, 99));
  }
};

// A node (in-process cosmosd with a simulated enclave of one counter
// configuration), a plain and a secure client, and their regions.
class Node {
 public:
  Node(const std::string& dir, const std::string& keys, const CounterConfig& cfg) {
    cosmos::pmem::PoolOptions fo;
    fo.backend = cosmos::pmem::BackendKind::kFile;
    auto pool = cosmos::pmem::Pool::Create(dir + "/node.pool", 96 << 20, fo);
    COSMOS_CHECK_OK(pool.status());
    cosmos::sec::SimulatedEnclaveOptions eo;
    eo.platform_key_path = keys + "/platform.key";
    eo.sealing_secret_path = keys + "/sealing.secret";
    eo.state_dir = dir + "/state";
    eo.counter_stabilisation_ns = cfg.stabilisation_ns;
    eo.region_policy.counter_mode = cfg.mode;
    auto enclave = cosmos::sec::SimulatedEnclave::Create(std::move(eo));
    COSMOS_CHECK_OK(enclave.status());
    enclave_ = std::move(*enclave);
    auto client_key =
        cosmos::sec::LoadPublicKey(keys + "/bench.pub", cosmos::sec::KeyKind::kClientPublic);
    COSMOS_CHECK_OK(client_key.status());
    std::vector<cosmos::sec::Ed25519PublicKey> allowed{*client_key};
    COSMOS_CHECK_OK(enclave_->SetClientAllowList(allowed));
    engine_ = std::make_unique<cosmos::server::EnclaveRegionEngine>(enclave_.get(),
                                                                    cosmos::sec::kDefaultBlockSize);
    std::vector<cosmos::server::ServedPool> pools;
    pools.push_back({"shm", std::move(*pool)});
    cosmos::server::ServerOptions so;
    so.listen_ip = "127.0.0.1";
    so.port = 0;
    so.workers = 1;
    so.idle_spin_us = 20000;  // spins while a phase sends to it, blocks between phases
    so.secure_engine = engine_.get();
    auto server = cosmos::server::Server::Start(so, std::move(pools));
    COSMOS_CHECK_OK(server.status());
    server_ = std::move(*server);

    cosmos::ClientOptions co;
    co.server = "127.0.0.1:" + std::to_string(server_->port());
    co.max_inflight = 64;
    co.timeout_ms = 10000;
    auto plain = cosmos::Client::Connect(co);
    COSMOS_CHECK_OK(plain.status());
    plain_ = std::move(*plain);
    co.platform_public_key_file = keys + "/platform.pub";
    co.measurement_file = keys + "/measurement";
    co.client_key_file = keys + "/bench.key";
    auto secure = cosmos::Client::Connect(co);
    COSMOS_CHECK_OK(secure.status());
    secure_ = std::move(*secure);
  }
  ~Node() {
    plain_regions_.clear();
    secure_regions_.clear();
    plain_shared_.clear();
    secure_shared_.clear();
    plain_.reset();
    secure_.reset();
    server_->Stop();
    server_.reset();
    engine_.reset();  // the server closed its protected regions in the engine first
    enclave_.reset();
  }
  // Creates region `name` on both sides (secure: a protected region).
  void AddRegion(const std::string& name, uint64_t size) {
    auto created_plain = plain_->CreateRegion(name + "_p", size);
    auto created_secure = secure_->CreateRegion(name + "_s", size, {.secure = true});
    COSMOS_CHECK_OK(created_plain.status());
    COSMOS_CHECK_OK(created_secure.status());
    auto p = plain_->OpenRegion(name + "_p");
    auto s = secure_->OpenRegion(name + "_s");
    COSMOS_CHECK_OK(p.status());
    COSMOS_CHECK_OK(s.status());
    COSMOS_CHECK((*s)->info().secure);
    plain_regions_.push_back(std::move(*p));
    secure_regions_.push_back(std::move(*s));
  }
  cosmos::Region& region(bool secure, size_t i) {
    return secure ? *secure_regions_[i] : *plain_regions_[i];
  }
  // Creates region `name` on both sides and opens it `n` times per side (n
  // handles = n independent barriers on ONE region: concurrent flushes of the
  // same region, which group commit serves together).
  void AddShared(const std::string& name, uint64_t size, int n) {
    auto created_plain = plain_->CreateRegion(name + "_p", size);
    auto created_secure = secure_->CreateRegion(name + "_s", size, {.secure = true});
    COSMOS_CHECK_OK(created_plain.status());
    COSMOS_CHECK_OK(created_secure.status());
    for (int i = 0; i < n; ++i) {
      auto p = plain_->OpenRegion(name + "_p");
      auto s = secure_->OpenRegion(name + "_s");
      COSMOS_CHECK_OK(p.status());
      COSMOS_CHECK_OK(s.status());
      plain_shared_.push_back(std::move(*p));
      secure_shared_.push_back(std::move(*s));
    }
  }
  cosmos::Region& shared(bool secure, size_t i) {
    return secure ? *secure_shared_[i] : *plain_shared_[i];
  }
  cosmos::Client& client(bool secure) { return secure ? *secure_ : *plain_; }
  // Keeps the idle client's session heartbeats flowing during the other
  // side's phase (loaded host, long strict-mode phases).
  void KeepAlive(bool active_secure) {
    uint64_t now = cosmos::MonotonicNanos();
    if (now - last_poll_ > 20'000'000) {
      client(!active_secure).Poll(0);
      last_poll_ = now;
    }
  }
  // Between phases: the worker goes idle so one phase's spinning never
  // overlaps the next.
  void Pause() {
    plain_->Poll(0);
    secure_->Poll(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }

 private:
  std::unique_ptr<cosmos::sec::SimulatedEnclave> enclave_;
  std::unique_ptr<cosmos::server::EnclaveRegionEngine> engine_;
  std::unique_ptr<cosmos::server::Server> server_;
  std::unique_ptr<cosmos::Client> plain_, secure_;
  std::vector<std::unique_ptr<cosmos::Region>> plain_regions_, secure_regions_;
  std::vector<std::unique_ptr<cosmos::Region>> plain_shared_, secure_shared_;
  uint64_t last_poll_ = 0;
};

void AddRatioMetrics(BenchReport& report, const std::string& name, const std::string& unit,
                     const std::string& better, const std::vector<double>& secure,
                     const std::vector<double>& plain, const std::string& plain_name) {
  report.AddWithBaseline(name, Median(secure), unit, better, plain_name, Median(plain), secure,
                         plain);
}

// Runs every measurement for one counter configuration into `report`.
void RunConfig(const Options& o, const std::string& base_dir, const std::string& keys,
               const CounterConfig& cfg, BenchReport& report) {
  const std::string dir = base_dir + "/" + cfg.prefix;
  std::filesystem::create_directories(dir);
  Node node(dir, keys, cfg);
  constexpr int kDepth = 8;
  node.AddRegion("lat", 1 << 20);
  for (int i = 0; i < kDepth; ++i) node.AddRegion("t" + std::to_string(i), 64 << 10);
  node.AddShared("g", 64 << 10, kDepth);

  // A flush that waits for a counter to stabilise takes ~stabilisation_ns;
  // fewer iterations keep such configurations inside the time budget.
  const bool slow = cfg.mode == cosmos::sec::CounterMode::kStrict && cfg.stabilisation_ns > 0;
  const int rounds = o.quick ? 4 : 10;
  const int iters = o.quick ? 300 : 2000;
  const int flush_iters = slow ? (o.quick ? 20 : 100) : iters;
  const int ops = slow ? (o.quick ? 80 : 800) : (o.quick ? 3000 : 30000);

  // Warm-up of every path on both sides; not recorded.
  {
    auto warm = Data(4096, 0x11);
    std::vector<std::byte> out(4096);
    for (bool secure : {false, true}) {
      cosmos::Region& r = node.region(secure, 0);
      for (int i = 0; i < (slow && secure ? 20 : 200); ++i) {
        COSMOS_CHECK_OK(r.Write(0, warm));
        COSMOS_CHECK_OK(r.Flush(0, warm.size()));
        COSMOS_CHECK_OK(r.Read(0, out));
      }
      node.Pause();
    }
  }
  const std::string p = std::string(cfg.prefix);
  // Baseline names are the same in every configuration: each is the plain
  // figure measured alongside that configuration.
  const std::string plain_prefix = "plain_";
  struct Size {
    const char* name;
    size_t n;
  };
  for (Size s : {Size{"64B", 64}, Size{"4KB", 4096}}) {
    Side sides[2];  // [0] plain, [1] secure
    for (int r = 0; r < rounds; ++r) {
      // Alternate which side goes first, so drift hits both.
      for (int k = 0; k < 2; ++k) {
        const bool secure = ((r + k) % 2) == 1;
        cosmos::Region& region = node.region(secure, 0);
        const int n = secure ? flush_iters : iters;
        std::vector<double> us;
        us.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) {
          // Distinct data and a moving offset: each write changes the block.
          auto data = Data(s.n, static_cast<uint8_t>(i));
          const uint64_t off = (static_cast<uint64_t>(i) % 64) * 4096;
          us.push_back(TimeUs([&] {
            COSMOS_CHECK_OK(region.Write(off, data));
            COSMOS_CHECK_OK(region.Flush(off, s.n));
          }));
          node.KeepAlive(secure);
        }
        sides[secure ? 1 : 0].AddRound(us);
        node.Pause();
      }
    }
    const std::string m = std::string("write_flush_") + s.name;
    AddRatioMetrics(report, p + m + "_p50_us", "us", "lower", sides[1].p50, sides[0].p50,
                    plain_prefix + m + "_p50_us");
    AddRatioMetrics(report, p + m + "_p99_us", "us", "lower", sides[1].p99, sides[0].p99,
                    plain_prefix + m + "_p99_us");
    std::fprintf(stderr, "secure bench [%s]: write_flush %s p50 secure %.1f us, plain %.1f us\n",
                 cfg.prefix, s.name, Median(sides[1].p50), Median(sides[0].p50));
  }
  {
    // Read 4 KiB of flushed data (block-aligned: one block in the enclave).
    Side sides[2];
    std::vector<std::byte> out(4096);
    for (int r = 0; r < rounds; ++r) {
      for (int k = 0; k < 2; ++k) {
        const bool secure = ((r + k) % 2) == 1;
        cosmos::Region& region = node.region(secure, 0);
        std::vector<double> us;
        us.reserve(static_cast<size_t>(iters));
        for (int i = 0; i < iters; ++i) {
          const uint64_t off = (static_cast<uint64_t>(i) % 64) * 4096;
          us.push_back(TimeUs([&] {
            cosmos::Status st = region.Read(off, out);
            if (!st.ok()) {
              std::fprintf(stderr, "secure bench: read failed (%s side, round %d, op %d): %s\n",
                           secure ? "secure" : "plain", r, i, st.ToString().c_str());
              std::abort();
            }
          }));
          node.KeepAlive(secure);
        }
        sides[secure ? 1 : 0].AddRound(us);
        node.Pause();
      }
    }
    AddRatioMetrics(report, p + "read_4KB_p50_us", "us", "lower", sides[1].p50, sides[0].p50,
                    plain_prefix + "read_4KB_p50_us");
    AddRatioMetrics(report, p + "read_4KB_p99_us", "us", "lower", sides[1].p99, sides[0].p99,
                    plain_prefix + "read_4KB_p99_us");
    std::fprintf(stderr, "secure bench [%s]: read 4KB p50 secure %.1f us, plain %.1f us\n",
                 cfg.prefix, Median(sides[1].p50), Median(sides[0].p50));
  }
  // Throughput with one write+flush in flight on each of 8 handles: of 8
  // regions (each region its own counter), or of ONE region (its flushes
  // share counter values: group commit).
  for (bool one_region : {false, true}) {
    Side sides[2];
    auto data = Data(4096, 0x5c);
    for (int r = 0; r < rounds; ++r) {
      for (int k = 0; k < 2; ++k) {
        const bool secure = ((r + k) % 2) == 1;
        const int total = secure ? ops : (o.quick ? 3000 : 30000);
        int done = 0, issued = 0;
        std::vector<bool> busy(kDepth, false);
        const uint64_t t0 = cosmos::MonotonicNanos();
        while (done < total) {
          for (int i = 0; i < kDepth && issued < total; ++i) {
            if (busy[static_cast<size_t>(i)]) continue;
            busy[static_cast<size_t>(i)] = true;
            ++issued;
            cosmos::Region& region = one_region ? node.shared(secure, static_cast<size_t>(i))
                                                : node.region(secure, static_cast<size_t>(i) + 1);
            const uint64_t off = one_region ? static_cast<uint64_t>(i) * 4096 : 0;
            COSMOS_CHECK_OK(region.Write(off, data));
            cosmos::Range rg{off, 4096};
            region.FlushAsync(std::span<const cosmos::Range>(&rg, 1),
                              [&busy, &done, i](cosmos::Status st) {
                                COSMOS_CHECK_OK(st);
                                busy[static_cast<size_t>(i)] = false;
                                ++done;
                              });
          }
          node.client(secure).Poll(0);
          node.KeepAlive(secure);
        }
        const double secs = static_cast<double>(cosmos::MonotonicNanos() - t0) / 1e9;
        sides[secure ? 1 : 0].ops.push_back(total / secs);
        node.Pause();
      }
    }
    const std::string m = one_region ? "write_flush_4KB_one_region_ops" : "write_flush_4KB_ops";
    AddRatioMetrics(report, p + m, "ops/s", "higher", sides[1].ops, sides[0].ops, plain_prefix + m);
    std::fprintf(stderr, "secure bench [%s]: %s secure %.0f ops/s, plain %.0f ops/s\n", cfg.prefix,
                 m.c_str(), Median(sides[1].ops), Median(sides[0].ops));
  }
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
    else if (a == "--only" && i + 1 < argc)
      o.only = argv[++i];
    else {
      std::fprintf(
          stderr,
          "usage: secure_bench [--quick] [--results DIR] [--shm-dir DIR] [--only PREFIX]\n");
      return 2;
    }
  }
  cosmos::log::Init("warn");
  const std::string base = o.shm_dir + "/cosmos_secure_bench_" + std::to_string(getpid());
  std::filesystem::create_directories(base);
  const std::string keys = base + "/keys";
  COSMOS_CHECK_OK(cosmos::sec::GeneratePlatformKeys(keys));
  COSMOS_CHECK_OK(cosmos::sec::GenerateClientCredentials(keys, "bench"));

  const CounterConfig configs[] = {
      {"secure_", "strict counter mode, 20 ms stabilisation (cosmosd default)",
       cosmos::sec::CounterMode::kStrict, 20'000'000},
      {"secure_relaxed_", "relaxed counter mode (window 8), 20 ms stabilisation",
       cosmos::sec::CounterMode::kRelaxed, 20'000'000},
      {"secure_instant_counter_",
       "strict mode with no modelled stabilisation delay: a value is stable once the "
       "stabiliser thread wrote the counter file (write+fsync+rename on tmpfs): the cost of "
       "crypto, tree, channel and counter file without the counter's wait",
       cosmos::sec::CounterMode::kStrict, 0},
  };
  BenchReport report("secure", o.quick);
  report.Note(
      "one in-process cosmosd (1 worker) with a SIMULATED enclave serves both sides: secure = "
      "protected region (4 KiB blocks) over a secure connection, plain = plain region over a "
      "plain connection; A/B alternate every round, medians over rounds");
  report.Note("pool and enclave state (counter files) on " + o.shm_dir +
              " (tmpfs: not durable); the figures measure the security layer, not a device");
  report.Note("loopback UDP on one host, 2 shared cores; load average at start: " + [] {
    double l[3] = {0, 0, 0};
    if (getloadavg(l, 3) != 3) return std::string("unknown");
    char b[64];
    std::snprintf(b, sizeof(b), "%.2f %.2f %.2f", l[0], l[1], l[2]);
    return std::string(b);
  }());
  for (const CounterConfig& c : configs) {
    if (!o.only.empty() && o.only != c.prefix) continue;
    report.Note(std::string(c.prefix) + "*: " + c.description);
    RunConfig(o, base, keys, c, report);
  }
  std::filesystem::remove_all(base);
  return report.Write(o.results) ? 0 : 1;
}
