// `cosmos bench rpm --server H:P`: an operator's load generator for a cosmosd
// deployment (like redis-benchmark or fio): op, size, concurrency, progress,
// throughput and p50/p99/p999 latency.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "common/clock.h"
#include "common/histogram.h"
#include "cosmos/client.h"
#include "remote_cmd.h"

namespace cosmos::cli {
namespace {

struct BenchArgs {
  ClientOptions client;  // --server and the secure-connection files
  bool secure = false;   // scratch regions are protected regions
  std::string op = "write_flush";
  std::string size = "4K";
  uint64_t ops = 10000;
  uint32_t concurrency = 4;
  std::string pool;
};

Status RunRpmBench(const BenchArgs& a, Context& ctx) {
  if (a.op != "write_flush" && a.op != "write" && a.op != "read") {
    return Status::InvalidArgument("--op must be write_flush, write or read");
  }
  if (a.concurrency == 0 || a.concurrency > 256)
    return Status::InvalidArgument("--concurrency must be 1..256");
  COSMOS_ASSIGN_OR_RETURN(uint64_t size, ParseSize(a.size));
  if (size == 0 || size > (4u << 20)) return Status::InvalidArgument("--size must be 1 B .. 4M");
  COSMOS_ASSIGN_OR_RETURN(auto client, Client::Connect(a.client));
  // One region per concurrent stream (flushes order per region), deleted at the end.
  const uint64_t region_size = std::max<uint64_t>(size * 16, 1 << 20);
  std::vector<std::unique_ptr<Region>> regions;
  std::vector<std::string> names;
  Status status;
  RegionOptions ro;
  ro.pool = a.pool;
  ro.secure = a.secure;
  for (uint32_t i = 0; i < a.concurrency && status.ok(); ++i) {
    std::string name = "bench." + std::to_string(getpid()) + "." + std::to_string(i);
    auto info = client->CreateRegion(name, region_size, ro);
    if (!info.ok()) {
      status = info.status();
      break;
    }
    names.push_back(name);
    auto r = client->OpenRegion(name);
    if (!r.ok()) {
      status = r.status();
      break;
    }
    regions.push_back(std::move(*r));
  }
  LatencyHistogram hist;
  uint64_t issued = 0, done = 0, errors = 0;
  Status first_error;
  if (status.ok()) {
    std::vector<std::byte> data(size, std::byte{0xab});
    std::vector<std::vector<std::byte>> rbuf(a.concurrency, std::vector<std::byte>(size));
    std::vector<bool> busy(a.concurrency, false);
    std::vector<uint64_t> started(a.concurrency, 0);
    const uint64_t slots = region_size / size;
    const uint64_t t0 = MonotonicNanos();
    uint64_t next_report = t0 + 1'000'000'000;
    while (done < a.ops) {
      for (uint32_t i = 0; i < a.concurrency && issued < a.ops; ++i) {
        if (busy[i]) continue;
        busy[i] = true;
        uint64_t off = (issued % slots) * size;
        ++issued;
        started[i] = MonotonicNanos();
        auto finish = [&, i](Status s) {
          hist.Record(MonotonicNanos() - started[i]);
          if (!s.ok()) {
            ++errors;
            if (first_error.ok()) first_error = s;
          }
          busy[i] = false;
          ++done;
        };
        if (a.op == "read") {
          regions[i]->ReadAsync(off, rbuf[i], finish);
        } else if (a.op == "write") {
          regions[i]->WriteAsync(off, data, finish);
        } else {
          Status w = regions[i]->Write(off, data);
          if (!w.ok()) {
            finish(w);
            continue;
          }
          Range rg{off, size};
          regions[i]->FlushAsync(std::span<const Range>(&rg, 1), finish);
        }
      }
      client->Poll(0);
      uint64_t now = MonotonicNanos();
      if (now >= next_report) {
        std::fprintf(stderr, "bench rpm: %llu/%llu ops, %.0f ops/s, p50 %.1f us\n",
                     static_cast<unsigned long long>(done), static_cast<unsigned long long>(a.ops),
                     done / ((now - t0) / 1e9), hist.Percentile(0.5) / 1000.0);
        next_report = now + 1'000'000'000;
      }
      if (errors > 0 && errors == done && done >= a.concurrency) break;  // node gone
    }
    double secs = (MonotonicNanos() - t0) / 1e9;
    double ops_s = done / secs;
    nlohmann::ordered_json j = {{"server", a.client.server},
                                {"op", a.op},
                                {"size", size},
                                {"concurrency", a.concurrency},
                                {"ops", done},
                                {"errors", errors},
                                {"seconds", secs},
                                {"ops_per_s", ops_s},
                                {"mb_per_s", ops_s * size / 1e6},
                                {"durability", DurabilityName(regions[0]->info().durability)},
                                {"secure", regions[0]->info().secure},
                                {"p50_us", hist.Percentile(0.5) / 1000.0},
                                {"p99_us", hist.Percentile(0.99) / 1000.0},
                                {"p999_us", hist.Percentile(0.999) / 1000.0},
                                {"max_us", hist.max() / 1000.0}};
    char line[512];
    std::snprintf(line, sizeof(line),
                  "%s %s x%u on %s (durability %s): %llu ops in %.2f s, %.0f ops/s, %.1f MB/s\n"
                  "latency p50 %.1f us, p99 %.1f us, p999 %.1f us, max %.1f us; %llu errors\n",
                  a.op.c_str(), a.size.c_str(), a.concurrency, a.client.server.c_str(),
                  DurabilityName(regions[0]->info().durability),
                  static_cast<unsigned long long>(done), secs, ops_s, ops_s * size / 1e6,
                  hist.Percentile(0.5) / 1000.0, hist.Percentile(0.99) / 1000.0,
                  hist.Percentile(0.999) / 1000.0, hist.max() / 1000.0,
                  static_cast<unsigned long long>(errors));
    ctx.Emit(line, j);
    if (!first_error.ok()) status = first_error.WithContext("bench rpm: some operations failed");
  }
  regions.clear();
  for (const auto& n : names) client->DeleteRegion(n).IgnoreError();  // best-effort cleanup
  return status;
}

}  // namespace

void RegisterBenchCommands(CLI::App& app, Context& ctx) {
  CLI::App* bench = app.add_subcommand("bench", "Measure a deployment");
  bench->require_subcommand(1);
  auto args = std::make_shared<BenchArgs>();
  auto* rpm = bench->add_subcommand("rpm", "Load a cosmosd node: ops/s and p50/p99/p999 latency");
  AddConnectOptions(*rpm, args->client);
  rpm->add_flag("--secure", args->secure,
                "use protected (secure) scratch regions; needs a secure connection");
  rpm->add_option("--op", args->op, "write_flush | write | read")
      ->check(CLI::IsMember({"write_flush", "write", "read"}))
      ->capture_default_str();
  rpm->add_option("--size", args->size, "bytes per op, e.g. 64, 4K, 64K")
      ->check(cosmos::app::SizeValidator())
      ->capture_default_str();
  rpm->add_option("-n,--ops", args->ops, "total operations")
      ->check(cosmos::app::NonNegativeInteger())
      ->capture_default_str();
  rpm->add_option("-c,--concurrency", args->concurrency,
                  "operations in flight (one region each), 1..256")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  rpm->add_option("--pool", args->pool, "pool on the node for the scratch regions");
  rpm->callback([&ctx, args] { ctx.status = RunRpmBench(*args, ctx); });
}

}  // namespace cosmos::cli
