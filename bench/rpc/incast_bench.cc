// Incast benchmark (issue 15): N client endpoints, each in its own network
// namespace with its own address, send 64 KB requests to one server endpoint
// in another namespace through a bridge (a "switch" namespace) whose port
// towards the server is shaped with tc tbf (the bottleneck queue), with and
// without congestion control in the same run, while a probe endpoint (its own
// namespace too) measures the round trip of a 32-byte request. Runs 8 and 32
// clients by default. Merges the incast_* rows into rpc.json
// (bench/rpc/run.sh). Needs root (ip netns, tc).
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

constexpr uint16_t kSink = 1;                // answers with 8 bytes
constexpr uint16_t kProbe = 2;               // echo
constexpr uint32_t kServerIp = 0x0a4f0001;   // 10.79.0.1
constexpr uint32_t kProbeIp = 0x0a4f0009;    // 10.79.0.9
constexpr uint32_t kClientIp0 = 0x0a4f000a;  // client i: 10.79.0.(10 + i)
constexpr int kMaxClients = 64;
constexpr uint16_t kServerPort = 9300;
constexpr size_t kRequestBytes = 64 * 1024;
constexpr int kInflight = 4;  // requests in flight per client endpoint

bool Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

std::string Ipv4(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xff) + "." +
         std::to_string((ip >> 8) & 0xff) + "." + std::to_string(ip & 0xff);
}

// A switch namespace holding a bridge; the server, the probe and every client
// in their own namespace, each joined to the bridge by a veth pair. The
// bridge's port towards the server is shaped with tbf: every client's
// traffic meets in that one queue, as at a switch port in incast.
class Topology {
 public:
  Topology(int rate_mbit, int limit_kb, int clients) {
    tag_ = std::to_string(::getpid() % 100000);
    switch_ = "cosincW" + tag_;
    server_ = "cosincS" + tag_;
    probe_ = "cosincP" + tag_;
    for (int i = 0; i < clients; ++i)
      clients_.push_back("cosincC" + std::to_string(i) + "_" + tag_);
    Cleanup();
    ok_ = Sh("ip netns add " + switch_) && Sh("ip -n " + switch_ + " link add br0 type bridge") &&
          Sh("ip -n " + switch_ + " link set br0 up") && Join(server_, "s", kServerIp) &&
          Join(probe_, "p", kProbeIp);
    for (int i = 0; ok_ && i < clients; ++i) {
      ok_ = Join(clients_[i], "c" + std::to_string(i), kClientIp0 + i);
    }
    // The bottleneck: the bridge port towards the server. burst 16 KB (about
    // 11 packets at line rate), queue limit `limit_kb`.
    tbf_ = "tbf rate " + std::to_string(rate_mbit) + "mbit burst 16kb limit " +
           std::to_string(limit_kb) + "kb";
    ok_ = ok_ && Sh("tc -n " + switch_ + " qdisc add dev ws" + tag_ + " root " + tbf_);
  }
  ~Topology() { Cleanup(); }
  bool ok() const { return ok_; }
  const std::string& server() const { return server_; }
  const std::string& probe() const { return probe_; }
  const std::string& client(int i) const { return clients_[i]; }
  const std::string& tbf() const { return tbf_; }
  // Bytes queued in the tbf now (`tc -s qdisc` backlog); -1 if unreadable.
  long Backlog() const {
    FILE* f = ::popen(
        ("tc -n " + switch_ + " -s qdisc show dev ws" + tag_ + " 2>/dev/null").c_str(), "r");
    if (f == nullptr) return -1;
    char line[512];
    long bytes = -1;
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      const char* b = std::strstr(line, "backlog ");
      if (b != nullptr) bytes = std::strtol(b + 8, nullptr, 10);
    }
    ::pclose(f);
    return bytes;
  }

 private:
  // Namespace `ns` with address `ip`, joined to the bridge by veth
  // "v<short><tag>" (inside) / "w<short><tag>" (bridge port).
  bool Join(const std::string& ns, const std::string& short_name, uint32_t ip) {
    const std::string inside = "v" + short_name + tag_, port = "w" + short_name + tag_;
    return Sh("ip netns add " + ns) &&
           Sh("ip link add " + inside + " type veth peer name " + port) &&
           Sh("ip link set " + inside + " netns " + ns) &&
           Sh("ip link set " + port + " netns " + switch_) &&
           Sh("ip -n " + switch_ + " link set " + port + " master br0 up") &&
           Sh("ip -n " + ns + " addr add " + Ipv4(ip) + "/24 dev " + inside) &&
           Sh("ip -n " + ns + " link set " + inside + " up") &&
           Sh("ip -n " + ns + " link set lo up");
  }
  void Cleanup() {
    Sh("ip netns del " + switch_);  // deletes the bridge ports and so every veth pair
    Sh("ip netns del " + server_);
    Sh("ip netns del " + probe_);
    for (const std::string& c : clients_) Sh("ip netns del " + c);
  }
  std::string tag_, switch_, server_, probe_, tbf_;
  std::vector<std::string> clients_;
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
bool g_sample_queue = false;  // --sample-queue

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

void RunLoadClient(const std::string& netns, uint32_t ip, bool cc, Phase* phase, ClientStats* out) {
  if (!EnterNetns(netns)) {
    out->failed = true;
    phase->ready.fetch_add(1);
    return;
  }
  Nexus nexus;
  auto rpc = OpenEndpoint(&nexus, {ip, 0}, cc, /*gso=*/false);
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
  auto rpc = OpenEndpoint(&nexus, {kProbeIp, 0}, cc, true);
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
  double queue_p99_us = 0;  // the tbf backlog's p99, as delay at the shaped rate
  double goodput_bytes_per_s = 0;
  double retx_ratio = 0;
  double jain = 0;
  std::vector<double> per_client_mbit;
};

ModeResult RunMode(const Topology& topo, double shaped_bytes_per_s, bool cc, int clients,
                   double idle_s, double warmup_s, double measure_s) {
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
        [&] { RunProbe(topo.probe(), cc, probe_stop, probe_record, &idle_rtt, &probe_failed); });
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
    threads.emplace_back(
        [&, i] { RunLoadClient(topo.client(i), kClientIp0 + i, cc, &phase, &stats[i]); });
  }
  probe_stop = false;
  std::thread probe(
      [&] { RunProbe(topo.probe(), cc, probe_stop, probe_record, &loaded_rtt, &probe_failed); });
  while (phase.ready.load() < clients) sleep_s(0.01);
  sleep_s(warmup_s);
  phase.measuring = true;
  probe_record = true;
  // The bottleneck queue itself, sampled every 20 ms: tells network queueing
  // from the probe's CPU scheduling delay among clients + 2 threads on the
  // host's cores (which the probe's round trip includes).
  // Off by default (--sample-queue): running tc 50 times a second costs
  // the 2-core host enough CPU to lower the goodput it measures.
  std::vector<double> backlog;
  if (g_sample_queue) {
    for (const uint64_t end = MonotonicNanos() + static_cast<uint64_t>(measure_s * 1e9);
         MonotonicNanos() < end;) {
      const long b = topo.Backlog();
      if (b >= 0) backlog.push_back(static_cast<double>(b));
      sleep_s(0.02);
    }
  } else {
    sleep_s(measure_s);
  }
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
  r.queue_p99_us = backlog.empty() ? 0 : bench::Quantile(backlog, 0.99) / shaped_bytes_per_s * 1e6;
  r.goodput_bytes_per_s = sum;
  r.jain = sum_sq > 0 ? sum * sum / (clients * sum_sq) : 0;
  r.retx_ratio = sent > 0 ? static_cast<double>(retx) / sent : 0;
  r.ok = true;
  return r;
}

}  // namespace

// The rows of one client count: medians over the rounds, each mode's values.
struct CountResults {
  int clients = 0;
  std::vector<double> goodput[2], retx[2], p99[2], fair[2], idle50[2], queue[2];
};

void AddRows(cosmos::bench::BenchReport& report, const CountResults& c, const std::string& suffix) {
  using cosmos::bench::Median;
  auto add = [&](const std::string& name, const std::vector<double>* v, const char* unit,
                 const char* better) {
    report.AddWithBaseline(name + suffix, Median(v[1]), unit, better, name + suffix + "_without_cc",
                           Median(v[0]), v[1], v[0]);
  };
  add("incast_goodput_ratio", c.goodput, "of shaped rate", "higher");
  add("incast_retx_ratio", c.retx, "retx/sent", "lower");
  add("incast_probe_p99_ratio", c.p99, "x idle p99", "lower");
  add("incast_fairness", c.fair, "Jain", "higher");
  add("incast_idle_probe_p50_us", c.idle50, "us", "lower");
  if (g_sample_queue) add("incast_queue_p99_us", c.queue, "us", "lower");
}

int main(int argc, char** argv) {
  cosmos::log::Init("warn");
  CLI::App app{"incast_bench: congestion control under incast on a tbf-shaped bridge port"};
  bool quick = false;
  std::string out_dir = "bench/results";
  std::vector<int> client_counts = {8, 32};
  int rate_mbit = 200;
  int limit_kb = 256;
  app.add_flag("--quick", quick, "one round per mode, shorter phases");
  app.add_option("--out", out_dir, "directory holding rpc.json (rows are merged)")
      ->capture_default_str();
  app.add_option("--clients", client_counts,
                 "client endpoints per run, one namespace and address each (each count is a "
                 "run; the largest also gives the unsuffixed rows)")
      ->delimiter(',')
      ->check(CLI::Range(1, kMaxClients))
      ->capture_default_str();
  app.add_option("--rate-mbit", rate_mbit, "tbf rate of the bottleneck")->capture_default_str();
  app.add_option("--limit-kb", limit_kb, "tbf queue limit")->capture_default_str();
  uint64_t target_us = 0, flow_scaling_us = 0;
  app.add_option("--target-us", target_us, "congestion.target_delay_ns in us (0: default)");
  app.add_option("--flow-scaling-us", flow_scaling_us,
                 "congestion.flow_scaling_range_ns in us (0: default)");
  app.add_flag("--sample-queue", g_sample_queue,
               "also sample the tbf backlog (tc -s qdisc every 20 ms) and report "
               "incast_queue_p99_us; costs CPU on a small host");
  CLI11_PARSE(app, argc, argv);
  g_target_delay_ns = target_us * 1000;
  g_flow_scaling_ns = flow_scaling_us * 1000;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "incast_bench: needs root (ip netns, tc); not run\n");
    return 2;
  }
  std::sort(client_counts.begin(), client_counts.end());
  client_counts.erase(std::unique(client_counts.begin(), client_counts.end()), client_counts.end());
  Topology topo(rate_mbit, limit_kb, client_counts.back());
  if (!topo.ok()) {
    std::fprintf(stderr, "incast_bench: could not build the namespaces, bridge, veths and tbf\n");
    return 1;
  }
  const int rounds = quick ? 1 : 3;
  const double idle_s = quick ? 1.0 : 2.0, warmup_s = quick ? 1.0 : 2.0,
               measure_s = quick ? 2.0 : 4.0;
  const double shaped = rate_mbit * 1e6 / 8;
  std::vector<CountResults> results;
  for (int clients : client_counts) results.push_back({.clients = clients});
  for (int round = 0; round < rounds; ++round) {
    for (CountResults& c : results) {
      for (int cc = 1; cc >= 0; --cc) {
        std::fprintf(stderr, "incast: round %d/%d, %d clients, congestion control %s\n", round + 1,
                     rounds, c.clients, cc ? "on" : "off");
        ModeResult m = RunMode(topo, shaped, cc == 1, c.clients, idle_s, warmup_s, measure_s);
        if (!m.ok) return 1;
        std::fprintf(stderr,
                     "  goodput %.1f Mbit/s, retx %.4f, probe idle p50/p99 %.0f/%.0f us, loaded "
                     "p99 %.0f us, tbf queue p99 %.0f us, jain %.3f, per client:",
                     m.goodput_bytes_per_s * 8 / 1e6, m.retx_ratio, m.idle_p50_us, m.idle_p99_us,
                     m.loaded_p99_us, m.queue_p99_us, m.jain);
        for (double x : m.per_client_mbit) std::fprintf(stderr, " %.1f", x);
        std::fprintf(stderr, "\n");
        c.goodput[cc].push_back(m.goodput_bytes_per_s / shaped);
        c.retx[cc].push_back(m.retx_ratio);
        c.p99[cc].push_back(m.loaded_p99_us / m.idle_p99_us);
        c.fair[cc].push_back(m.jain);
        c.queue[cc].push_back(m.queue_p99_us);
        c.idle50[cc].push_back(m.idle_p50_us);
      }
    }
  }
  cosmos::bench::BenchReport report("rpc", quick);
  AddRows(report, results.back(), "");
  std::string counts;
  for (const CountResults& c : results) {
    AddRows(report, c, "_c" + std::to_string(c.clients));
    counts += (counts.empty() ? "" : ", ") + std::to_string(c.clients);
  }
  report.Note("incast: " + counts +
              " client endpoints (one run each; one thread, UDP socket, network namespace and "
              "address each, GSO off, adaptive polling), each keeping " +
              std::to_string(kInflight) + " x " + std::to_string(kRequestBytes / 1024) +
              " KB requests in flight to one server endpoint in its own namespace; all joined by "
              "a bridge in a switch namespace whose port towards the server is shaped with tc " +
              topo.tbf() + "; " + std::to_string(rounds) +
              " round(s), each running congestion control on, then off (the baseline); "
              "medians; rows _cN are N clients, the unsuffixed rows repeat the largest N (" +
              std::to_string(results.back().clients) + ")");
  report.Note(
      "incast: goodput = request bytes completed in the " + std::to_string(measure_s) +
      " s window after " + std::to_string(warmup_s) +
      " s of warm-up / shaped rate (the payload share of the wire bytes is ~0.95, so 0.95 is "
      "the ceiling); retx = retransmitted / sent packets of the clients in the window; probe: a "
      "32-byte request every 500 us from a separate endpoint in its own namespace, p99 "
      "under incast / p99 with the link idle (each measured in its own mode); fairness: Jain "
      "index of per-client goodput; idle_probe_p50: probe RTT on the idle link, congestion "
      "control on vs off (its cost on an idle path)" +
      std::string(g_sample_queue
                      ? "; queue_p99 (--sample-queue): p99 of the tbf backlog (tc -s qdisc, "
                        "sampled every 20 ms in the window) as delay at the shaped rate: the "
                        "network queue alone, without the CPU scheduling delay the probe's "
                        "round trip also carries when clients + 2 threads share the host's cores"
                      : ""));
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
