// Incast benchmark (issue 15): N client endpoints in one network namespace
// send 64 KB requests to one server endpoint in another, through a veth link
// whose client side is shaped with tc tbf (the bottleneck queue), with and
// without congestion control in the same run (alternating rounds), while a
// probe endpoint measures the round trip of a 32-byte request. Merges the
// incast_* rows into rpc.json (bench/rpc/run.sh). Needs root (ip netns, tc).
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.h"
#include "common/clock.h"
#include "common/log.h"
#include "rpc/rpc.h"
#include "rpc/transport_udp.h"

namespace {

using namespace cosmos;
using namespace cosmos::rpc;

constexpr uint16_t kSink = 1;               // answers with 8 bytes
constexpr uint16_t kProbe = 2;              // echo
constexpr uint32_t kServerIp = 0x0a4f0001;  // 10.79.0.1
constexpr uint32_t kClientIp = 0x0a4f0002;  // 10.79.0.2
constexpr uint16_t kServerPort = 9300;
constexpr size_t kRequestBytes = 64 * 1024;
constexpr int kInflight = 4;  // requests in flight per client endpoint

bool Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// Two namespaces joined by a veth pair; the client end shaped with tbf.
class Topology {
 public:
  Topology(int rate_mbit, int limit_kb) {
    const std::string tag = std::to_string(::getpid() % 100000);
    server_ = "cosincS" + tag;
    client_ = "cosincC" + tag;
    const std::string vs = "vins" + tag, vc = "vinc" + tag;
    Cleanup();
    ok_ = Sh("ip netns add " + server_) && Sh("ip netns add " + client_) &&
          Sh("ip link add " + vs + " type veth peer name " + vc) &&
          Sh("ip link set " + vs + " netns " + server_) &&
          Sh("ip link set " + vc + " netns " + client_) &&
          Sh("ip -n " + server_ + " addr add 10.79.0.1/24 dev " + vs) &&
          Sh("ip -n " + client_ + " addr add 10.79.0.2/24 dev " + vc) &&
          Sh("ip -n " + server_ + " link set " + vs + " up") &&
          Sh("ip -n " + client_ + " link set " + vc + " up") &&
          Sh("ip -n " + server_ + " link set lo up") && Sh("ip -n " + client_ + " link set lo up");
    // The bottleneck: client -> server direction. burst 16 KB (about 11
    // packets at line rate), queue limit `limit_kb`.
    tbf_ = "tbf rate " + std::to_string(rate_mbit) + "mbit burst 16kb limit " +
           std::to_string(limit_kb) + "kb";
    ok_ = ok_ && Sh("tc -n " + client_ + " qdisc add dev " + vc + " root " + tbf_);
  }
  ~Topology() { Cleanup(); }
  bool ok() const { return ok_; }
  const std::string& server() const { return server_; }
  const std::string& client() const { return client_; }
  const std::string& tbf() const { return tbf_; }

 private:
  void Cleanup() {
    Sh("ip netns del " + server_);
    Sh("ip netns del " + client_);
  }
  std::string server_, client_, tbf_;
  bool ok_ = false;
};

bool EnterNetns(const std::string& name) {
  int fd = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  return ok;
}

// Overrides of the congestion-control defaults (0: library default).
uint64_t g_target_delay_ns = 0;
uint64_t g_flow_scaling_ns = 0;

RpcOptions EndpointOptions(bool congestion_control) {
  RpcOptions o;
  if (g_target_delay_ns != 0) o.congestion.target_delay_ns = g_target_delay_ns;
  if (g_flow_scaling_ns != 0) o.congestion.flow_scaling_range_ns = g_flow_scaling_ns;
  // 2 shared cores, ~20 threads: block when idle.
  o.poll_mode = PollMode::kAdaptive;
  o.adaptive_spin_ns = 20'000;
  o.congestion.enabled = congestion_control;
  return o;
}

std::unique_ptr<Rpc> OpenEndpoint(Nexus* nexus, NetAddress bind, bool congestion_control,
                                  bool gso) {
  UdpTransportOptions t;
  t.bind = bind;
  t.enable_gso = gso;
  auto transport = OpenUdpTransport(t);
  if (!transport.ok()) return nullptr;
  auto rpc = Rpc::Create(nexus, std::move(*transport), EndpointOptions(congestion_control));
  return rpc.ok() ? std::move(*rpc) : nullptr;
}

// Shared phase flags: clients count completions only while `measuring`.
struct Phase {
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<int> ready{0};
};

struct ClientStats {
  uint64_t bytes = 0;                              // request bytes completed while measuring
  uint64_t packets_sent = 0, retransmissions = 0;  // endpoint counters over the window
  bool failed = false;
};

void RunLoadClient(const std::string& netns, bool cc, Phase* phase, ClientStats* out) {
  if (!EnterNetns(netns)) {
    out->failed = true;
    phase->ready.fetch_add(1);
    return;
  }
  Nexus nexus;
  auto rpc = OpenEndpoint(&nexus, {kClientIp, 0}, cc, /*gso=*/false);
  if (rpc == nullptr) {
    out->failed = true;
    phase->ready.fetch_add(1);
    return;
  }
  auto sid = rpc->Connect({kServerIp, kServerPort}, {}, 10'000'000'000ull);
  phase->ready.fetch_add(1);
  if (!sid.ok()) {
    std::fprintf(stderr, "incast: client connect failed: %s\n", sid.status().ToString().c_str());
    out->failed = true;
    return;
  }
  std::vector<std::byte> request(kRequestBytes, std::byte{0x42});
  std::function<void()> send_one;
  send_one = [&] {
    Status s = rpc->EnqueueRequest(*sid, kSink, request, [&](const Status& st, auto) {
      if (phase->stop.load()) return;  // the teardown cancels what is still in flight
      if (!st.ok()) {
        if (!out->failed)
          std::fprintf(stderr, "incast: request failed: %s\n", st.ToString().c_str());
        out->failed = true;
        return;
      }
      if (phase->measuring.load(std::memory_order_relaxed)) out->bytes += kRequestBytes;
      if (!phase->stop.load(std::memory_order_relaxed)) send_one();
    });
    if (!s.ok()) out->failed = true;
  };
  for (int i = 0; i < kInflight; ++i) send_one();
  bool started = false, ended = false;
  EndpointCounters at_start;
  while (!phase->stop.load() && !out->failed) {
    rpc->RunEventLoopOnce();
    const bool m = phase->measuring.load(std::memory_order_relaxed);
    if (m && !started) {
      started = true;
      at_start = rpc->counters();
    } else if (!m && started && !ended) {
      ended = true;
      out->packets_sent = rpc->counters().packets_sent - at_start.packets_sent;
      out->retransmissions = rpc->counters().retransmissions - at_start.retransmissions;
    }
  }
  rpc->DestroySession(*sid).IgnoreError();  // connected above
}

// Sends one 32-byte request at a time (500 us apart) and records the round
// trips completed while `record` is true.
void RunProbe(const std::string& netns, bool cc, const std::atomic<bool>& stop,
              const std::atomic<bool>& record, std::vector<double>* rtt_us, bool* failed) {
  if (!EnterNetns(netns)) {
    *failed = true;
    return;
  }
  Nexus nexus;
  auto rpc = OpenEndpoint(&nexus, {kClientIp, 0}, cc, true);
  if (rpc == nullptr) {
    *failed = true;
    return;
  }
  auto sid = rpc->Connect({kServerIp, kServerPort}, {}, 10'000'000'000ull);
  if (!sid.ok()) {
    std::fprintf(stderr, "incast: probe connect failed: %s\n", sid.status().ToString().c_str());
    *failed = true;
    return;
  }
  std::vector<std::byte> request(32, std::byte{7});
  while (!stop.load()) {
    bool done = false;
    const uint64_t start = MonotonicNanos();
    if (!rpc->EnqueueRequest(*sid, kProbe, request,
                             [&](const Status& st, auto) {
                               done = true;
                               if (!st.ok()) {
                                 std::fprintf(stderr, "incast: probe failed: %s\n",
                                              st.ToString().c_str());
                                 *failed = true;
                               }
                             })
             .ok()) {
      *failed = true;
      return;
    }
    rpc->RunUntil([&] { return done; }, 5'000'000'000ull);
    if (done && record.load()) rtt_us->push_back((MonotonicNanos() - start) / 1e3);
    rpc->RunEventLoopFor(500'000);
  }
  rpc->DestroySession(*sid).IgnoreError();
}

struct ModeResult {
  bool ok = false;
  double idle_p50_us = 0, idle_p99_us = 0;
  double loaded_p99_us = 0;
  double goodput_bytes_per_s = 0;
  double retx_ratio = 0;
  double jain = 0;
  std::vector<double> per_client_mbit;
};

ModeResult RunMode(const Topology& topo, bool cc, int clients, double idle_s, double warmup_s,
                   double measure_s) {
  ModeResult r;
  // Server.
  Nexus nexus;
  nexus.RegisterHandler(kSink, [](Rpc& rpc, const IncomingRequest& req) {
    const std::byte ack[8] = {};
    rpc.EnqueueResponse(req.handle, ack).IgnoreError();  // handle is live here
  });
  nexus.RegisterHandler(kProbe, [](Rpc& rpc, const IncomingRequest& req) {
    rpc.EnqueueResponse(req.handle, req.payload).IgnoreError();
  });
  std::atomic<bool> server_stop{false}, server_ready{false}, server_failed{false};
  std::atomic<Rpc*> server_rpc{nullptr};
  std::thread server([&] {
    if (!EnterNetns(topo.server())) {
      server_failed = true;
      server_ready = true;
      return;
    }
    auto rpc = OpenEndpoint(&nexus, {kServerIp, kServerPort}, cc, true);
    if (rpc == nullptr) {
      server_failed = true;
      server_ready = true;
      return;
    }
    server_rpc = rpc.get();
    server_ready = true;
    rpc->RunUntilStopped(server_stop);
    server_rpc = nullptr;
  });
  while (!server_ready.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (server_failed) {
    server.join();
    return r;
  }
  auto sleep_s = [](double s) {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(s * 1e6)));
  };
  // Idle probe.
  std::atomic<bool> probe_stop{false}, probe_record{false};
  std::vector<double> idle_rtt, loaded_rtt;
  bool probe_failed = false;
  {
    std::thread probe(
        [&] { RunProbe(topo.client(), cc, probe_stop, probe_record, &idle_rtt, &probe_failed); });
    sleep_s(0.2);
    probe_record = true;
    sleep_s(idle_s);
    probe_record = false;
    probe_stop = true;
    probe.join();
  }
  // Incast with a concurrent probe.
  Phase phase;
  std::vector<ClientStats> stats(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] { RunLoadClient(topo.client(), cc, &phase, &stats[i]); });
  }
  probe_stop = false;
  std::thread probe(
      [&] { RunProbe(topo.client(), cc, probe_stop, probe_record, &loaded_rtt, &probe_failed); });
  while (phase.ready.load() < clients) sleep_s(0.01);
  sleep_s(warmup_s);
  phase.measuring = true;
  probe_record = true;
  sleep_s(measure_s);
  probe_record = false;
  phase.measuring = false;
  sleep_s(0.05);  // each client snapshots its counters at the end of the window
  phase.stop = true;
  probe_stop = true;
  for (auto& t : threads) t.join();
  probe.join();
  if (Rpc* s = server_rpc.load()) s->Post([&] { server_stop = true; });
  server.join();

  bool failed = probe_failed;
  double sum = 0, sum_sq = 0;
  uint64_t sent = 0, retx = 0;
  for (const ClientStats& c : stats) {
    failed |= c.failed;
    const double rate = c.bytes / measure_s;
    r.per_client_mbit.push_back(rate * 8 / 1e6);
    sum += rate;
    sum_sq += rate * rate;
    sent += c.packets_sent;
    retx += c.retransmissions;
  }
  if (failed || idle_rtt.empty() || loaded_rtt.empty()) {
    std::fprintf(stderr, "incast: a client or the probe failed (cc %s)\n", cc ? "on" : "off");
    return r;
  }
  r.idle_p50_us = bench::Quantile(idle_rtt, 0.5);
  r.idle_p99_us = bench::Quantile(idle_rtt, 0.99);
  r.loaded_p99_us = bench::Quantile(loaded_rtt, 0.99);
  r.goodput_bytes_per_s = sum;
  r.jain = sum_sq > 0 ? sum * sum / (clients * sum_sq) : 0;
  r.retx_ratio = sent > 0 ? static_cast<double>(retx) / sent : 0;
  r.ok = true;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  cosmos::log::Init("warn");
  CLI::App app{"incast_bench: congestion control under incast on a tbf-shaped veth link"};
  bool quick = false;
  std::string out_dir = "bench/results";
  int clients = 16;
  int rate_mbit = 200;
  int limit_kb = 256;
  app.add_flag("--quick", quick, "one round per mode, shorter phases");
  app.add_option("--out", out_dir, "directory holding rpc.json (rows are merged)")
      ->capture_default_str();
  app.add_option("--clients", clients, "client endpoints (8-32)")->capture_default_str();
  app.add_option("--rate-mbit", rate_mbit, "tbf rate of the bottleneck")->capture_default_str();
  app.add_option("--limit-kb", limit_kb, "tbf queue limit")->capture_default_str();
  uint64_t target_us = 0, flow_scaling_us = 0;
  app.add_option("--target-us", target_us, "congestion.target_delay_ns in us (0: default)");
  app.add_option("--flow-scaling-us", flow_scaling_us,
                 "congestion.flow_scaling_range_ns in us (0: default)");
  CLI11_PARSE(app, argc, argv);
  g_target_delay_ns = target_us * 1000;
  g_flow_scaling_ns = flow_scaling_us * 1000;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "incast_bench: needs root (ip netns, tc); not run\n");
    return 2;
  }
  Topology topo(rate_mbit, limit_kb);
  if (!topo.ok()) {
    std::fprintf(stderr, "incast_bench: could not build the namespaces, veth and tbf\n");
    return 1;
  }
  const int rounds = quick ? 1 : 3;
  const double idle_s = quick ? 1.0 : 2.0, warmup_s = quick ? 1.0 : 2.0,
               measure_s = quick ? 2.0 : 4.0;
  const double shaped = rate_mbit * 1e6 / 8;
  std::vector<double> goodput[2], retx[2], p99[2], fair[2], idle50[2];
  for (int round = 0; round < rounds; ++round) {
    for (int cc = 1; cc >= 0; --cc) {
      std::fprintf(stderr, "incast: round %d/%d, congestion control %s\n", round + 1, rounds,
                   cc ? "on" : "off");
      ModeResult m = RunMode(topo, cc == 1, clients, idle_s, warmup_s, measure_s);
      if (!m.ok) return 1;
      std::fprintf(stderr,
                   "  goodput %.1f Mbit/s, retx %.4f, probe idle p50/p99 %.0f/%.0f us, loaded p99 "
                   "%.0f us, jain %.3f, per client:",
                   m.goodput_bytes_per_s * 8 / 1e6, m.retx_ratio, m.idle_p50_us, m.idle_p99_us,
                   m.loaded_p99_us, m.jain);
      for (double x : m.per_client_mbit) std::fprintf(stderr, " %.1f", x);
      std::fprintf(stderr, "\n");
      goodput[cc].push_back(m.goodput_bytes_per_s / shaped);
      retx[cc].push_back(m.retx_ratio);
      p99[cc].push_back(m.loaded_p99_us / m.idle_p99_us);
      fair[cc].push_back(m.jain);
      idle50[cc].push_back(m.idle_p50_us);
    }
  }
  using cosmos::bench::Median;
  cosmos::bench::BenchReport report("rpc", quick);
  report.AddWithBaseline("incast_goodput_ratio", Median(goodput[1]), "of shaped rate", "higher",
                         "incast_goodput_ratio_without_cc", Median(goodput[0]), goodput[1],
                         goodput[0]);
  report.AddWithBaseline("incast_retx_ratio", Median(retx[1]), "retx/sent", "lower",
                         "incast_retx_ratio_without_cc", Median(retx[0]), retx[1], retx[0]);
  report.AddWithBaseline("incast_probe_p99_ratio", Median(p99[1]), "x idle p99", "lower",
                         "incast_probe_p99_ratio_without_cc", Median(p99[0]), p99[1], p99[0]);
  report.AddWithBaseline("incast_fairness", Median(fair[1]), "Jain", "higher",
                         "incast_fairness_without_cc", Median(fair[0]), fair[1], fair[0]);
  report.AddWithBaseline("incast_idle_probe_p50_us", Median(idle50[1]), "us", "lower",
                         "incast_idle_probe_p50_us_without_cc", Median(idle50[0]), idle50[1],
                         idle50[0]);
  report.Note("incast: " + std::to_string(clients) +
              " client endpoints (one thread and UDP socket each, GSO off, adaptive polling) in "
              "one network namespace, each keeping " +
              std::to_string(kInflight) + " x " + std::to_string(kRequestBytes / 1024) +
              " KB requests in flight to one server endpoint in another namespace; veth pair, "
              "client side shaped with tc " +
              topo.tbf() + "; " + std::to_string(rounds) +
              " round(s), each running congestion control on, then off (the baseline); "
              "medians");
  report.Note(
      "incast: goodput = request bytes completed in the " + std::to_string(measure_s) +
      " s window after " + std::to_string(warmup_s) +
      " s of warm-up / shaped rate (the payload share of the wire bytes is ~0.95, so 0.95 is "
      "the ceiling); retx = retransmitted / sent packets of the clients in the window; probe: a "
      "32-byte request every 500 us from a separate endpoint in the client namespace, p99 "
      "under incast / p99 with the link idle (each measured in its own mode); fairness: Jain "
      "index of per-client goodput; idle_probe_p50: probe RTT on the idle link, congestion "
      "control on vs off (its cost on an idle path)");
  const cosmos::rpc::CongestionOptions cc_options = EndpointOptions(true).congestion;
  report.Note("incast: congestion control target_delay " +
              std::to_string(cc_options.target_delay_ns / 1000) + " us, flow_scaling_range " +
              std::to_string(cc_options.flow_scaling_range_ns / 1000) + " us" +
              (target_us != 0 || flow_scaling_us != 0 ? " (set on the command line)"
                                                      : " (library defaults)"));
  report.Note(
      "incast: 2-core VM shared with other engineers' builds during the run: figures are noisy");
  return report.Merge(out_dir, "incast:") ? 0 : 1;
}
