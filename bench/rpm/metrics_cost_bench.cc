// metrics_cost_bench: what the server's metrics (server/server_metrics.h) add
// to one plain WRITE+FLUSH batch, measured in-process against the counting
// the server did before them, in alternating A/B rounds, on one thread and
// on two threads sharing the counters (two workers). Writes
// <results>/metrics_cost.json.
#include <array>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace {

// The counters the server kept before the metrics (ServerStats).
struct Before {
  std::atomic<uint64_t> batches{0}, ops{0}, bytes_written{0};
};

// The metrics a WRITE+FLUSH batch updates now (server.cc: RunBatch,
// Execute, FlusherLoop), besides Before's.
struct After {
  std::array<cosmos::MetricCounter, 256> ops;
  cosmos::MetricHistogram flush_duration, write_flush_duration;
};

Before before;
After after;

// One batch's accounting; `metrics` adds what the metrics commit added.
inline void Account(bool metrics) {
  before.batches.fetch_add(1, std::memory_order_relaxed);
  const uint64_t batch_started = metrics ? cosmos::MonotonicNanos() : 0;
  // WRITE
  before.bytes_written.fetch_add(4096, std::memory_order_relaxed);
  before.ops.fetch_add(1, std::memory_order_relaxed);
  if (metrics) after.ops[1].Add();
  // FLUSH, timed
  const uint64_t flush_started = metrics ? cosmos::MonotonicNanos() : 0;
  if (metrics) after.flush_duration.ObserveNs(cosmos::MonotonicNanos() - flush_started);
  before.ops.fetch_add(1, std::memory_order_relaxed);
  if (metrics) after.ops[3].Add();
  if (metrics) after.write_flush_duration.ObserveNs(cosmos::MonotonicNanos() - batch_started);
}

// ns per batch over `n` batches on each of `threads` threads.
double Run(bool metrics, int threads, int n) {
  const uint64_t t0 = cosmos::MonotonicNanos();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([=] {
      for (int i = 0; i < n; ++i) Account(metrics);
    });
  }
  for (auto& t : ts) t.join();
  return static_cast<double>(cosmos::MonotonicNanos() - t0) / n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string results = "bench/results";
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--results" && i + 1 < argc) {
      results = argv[++i];
    } else {
      std::fprintf(stderr, "usage: metrics_cost_bench [--quick] [--results DIR]\n");
      return 2;
    }
  }
  const int rounds = quick ? 5 : 11;
  const int n = quick ? 2'000'000 : 10'000'000;
  cosmos::bench::BenchReport report("metrics_cost", quick);
  for (int threads : {1, 2}) {
    std::vector<double> with, without;
    for (int r = 0; r < rounds; ++r) {
      without.push_back(Run(false, threads, n));
      with.push_back(Run(true, threads, n));
    }
    const std::string suffix = threads == 1 ? "1_thread" : "2_threads";
    const double w = cosmos::bench::Median(with), wo = cosmos::bench::Median(without);
    report.AddWithBaseline("accounting_per_write_flush_batch_ns_" + suffix, w, "ns", "lower",
                           "accounting_before_metrics_ns_" + suffix, wo, with, without);
    report.Add("metrics_added_per_write_flush_batch_ns_" + suffix, w - wo, "ns", "lower");
  }
  report.Note(
      "In-process: the counter updates and clock reads one plain WRITE+FLUSH batch makes with "
      "the server metrics (4 MonotonicNanos, 2 histogram observations, 2 counters) against the "
      "4 relaxed atomics the server kept before; 2_threads: two threads on the same counters, "
      "as two workers. No I/O: compare the added ns with write_flush_4KB_p50_us in rpm.json "
      "(about 6 us on loopback). Machine shared with other builds: noisy.");
  return report.Write(results) ? 0 : 1;
}
