// Micro-measurement of the protected region engine per block size: AES-GCM of
// one block, 64 B and 4 KiB write+flush, 4 KiB read, metadata overhead. The
// store and counter are in memory, so only the enclave's CPU work counts.
// Usage: sec_block_size_bench [operations per size, default 3000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "common/check.h"
#include "common/log.h"
#include "sec/protected_region.h"

namespace {

using cosmos::Result;
using cosmos::Status;
using namespace cosmos::sec;

// A counter that is stable at once: isolates the engine from counter latency.
class InstantCounter final : public MonotonicCounter {
 public:
  uint64_t Current() override { return v_; }
  uint64_t Stable() override { return v_; }
  Result<uint64_t> Increment() override { return ++v_; }
  Status AdvanceTo(uint64_t x) override {
    if (x > v_) v_ = x;
    return Status::Ok();
  }
  bool IsStable(uint64_t) override { return true; }
  Status WaitStable(uint64_t) override { return Status::Ok(); }

 private:
  uint64_t v_ = 0;
};

double NowUs() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 3000;
  cosmos::log::Init("warn");
  auto key = DeriveSealingKey(Bytes(32, 1), AsBytes("bench"));
  auto sealer = std::move(*Sealer::Create(key->span()));
  auto gcm = std::move(*AesGcm::Create(Bytes(32, 1)));
  std::printf("block_B  gcm_us  write64_flush_us  write4k_flush_us  read4k_us  metadata_pct\n");
  for (uint32_t bs : {512u, 1024u, 2048u, 4096u, 8192u, 16384u}) {
    Bytes buf(bs), tag(16);
    GcmNonce nonce{};
    double t0 = NowUs();
    for (int i = 0; i < 20000; ++i) {
      nonce[0] = static_cast<uint8_t>(i);
      nonce[1] = static_cast<uint8_t>(i >> 8);
      COSMOS_CHECK_OK(gcm->Seal(nonce, {}, buf, buf, tag));
    }
    const double gcm_us = (NowUs() - t0) / 20000;
    RegionGeometry geo;
    geo.size = 64ull << 20;
    geo.block_size = bs;
    const uint64_t need = *ProtectedRegion::RequiredStoreSize(geo);
    MemoryStore store(need);
    InstantCounter counter;
    auto region = std::move(*ProtectedRegion::Create(RegionBinding{"bench-pool", 1, "bench"}, geo,
                                                     {}, &store, &counter, sealer.get()));
    std::mt19937_64 rng(1);
    Bytes d64(64, 1), d4k(4096, 2), out(4096);
    t0 = NowUs();
    for (int i = 0; i < n; ++i) {
      COSMOS_CHECK_OK(region->Write((rng() % (geo.size / 64)) * 64, d64));
      COSMOS_CHECK_OK(region->Flush());
    }
    const double w64 = (NowUs() - t0) / n;
    t0 = NowUs();
    for (int i = 0; i < n; ++i) {
      COSMOS_CHECK_OK(region->Write((rng() % (geo.size / 4096)) * 4096, d4k));
      COSMOS_CHECK_OK(region->Flush());
    }
    const double w4k = (NowUs() - t0) / n;
    t0 = NowUs();
    for (int i = 0; i < n; ++i) {
      COSMOS_CHECK_OK(region->Read((rng() % (geo.size / 4096)) * 4096, out));
    }
    const double r4k = (NowUs() - t0) / n;
    std::printf("%7u  %6.2f  %16.2f  %16.2f  %9.2f  %12.2f\n", bs, gcm_us, w64, w4k, r4k,
                100.0 * static_cast<double>(need - geo.size) / static_cast<double>(geo.size));
  }
  return 0;
}
