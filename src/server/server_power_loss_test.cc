// Power-loss crash tests of the memory node's flush paths: the server library
// (the code cosmosd runs) serves a pool on pmem's FaultInjectionMedium, real
// clients drive plain and secure regions over loopback UDP, and power is lost
// at every persist point of the workload: everything not persisted is
// dropped and the node restarts (new pool mapping, new enclave) from the
// durable image. Every acknowledged flush, write_after_flush and atomic must
// be there; an interrupted step is all old or all new per byte, and a
// write_after_flush tail is never durable before the records it follows.
// Unpersisted bytes are dropped at the crash, or (the tear cases) each
// 8-byte word of them lands or not, as cache eviction would leave them.
// Unlike a SIGKILL (which keeps the page cache) this fails when a sync of the
// server's plain or secure flush path is skipped (scripts/mutation_check.sh).
//
// The trusted counter's file is on the real file system and survives the
// power loss (it models hardware that keeps its own state; its directory
// fsync has dir_sync_test). Its stabilisation delay runs on a fake clock, so
// nothing here depends on timing.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/log.h"
#include "cosmos/client.h"
#include "pmem/fault_injection.h"
#include "pmem/pool.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/enclave_region_engine.h"
#include "server/server.h"

namespace cosmos::server {
namespace {

constexpr uint64_t kMediumSize = 16u << 20;
constexpr uint64_t kRegionSize = 64u << 10;
constexpr size_t kPlain = 0;   // index of the plain region
constexpr size_t kSecure = 1;  // index of the secure region
constexpr const char* kRegionNames[2] = {"plain", "secure"};

// One power-on of the memory node: pool on the medium's durable image,
// simulated enclave, server.
class Node {
 public:
  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() { PowerOff(); }

  // `create`: formats a new pool on the medium (first power-on).
  Status PowerOn(pmem::FaultInjectionMedium* medium, bool create, const std::string& keys,
                 const std::string& state_dir, sec::CounterMode mode) {
    COSMOS_ASSIGN_OR_RETURN(auto mapping, medium->Map());
    std::unique_ptr<pmem::Pool> pool;
    if (create) {
      COSMOS_ASSIGN_OR_RETURN(pool, pmem::Pool::CreateOnMapping(std::move(mapping), "twin"));
    } else {
      COSMOS_ASSIGN_OR_RETURN(pool, pmem::Pool::OpenOnMapping(std::move(mapping), "twin"));
    }
    sec::SimulatedEnclaveOptions eo;
    eo.platform_key_path = keys + "/platform.key";
    eo.sealing_secret_path = keys + "/sealing.secret";
    eo.state_dir = state_dir;
    eo.counter_stabilisation_ns = 1'000'000;
    eo.region_policy.counter_mode = mode;
    eo.counter_now_ns = [this] { return now_.load(); };
    eo.counter_sleep_ns = [this](uint64_t ns) { now_ += ns; };
    COSMOS_ASSIGN_OR_RETURN(enclave_, sec::SimulatedEnclave::Create(std::move(eo)));
    COSMOS_ASSIGN_OR_RETURN(auto key,
                            sec::LoadPublicKey(keys + "/t.pub", sec::KeyKind::kClientPublic));
    std::vector<sec::Ed25519PublicKey> allowed{key};
    COSMOS_RETURN_IF_ERROR(enclave_->SetClientAllowList(allowed));
    engine_ = std::make_unique<EnclaveRegionEngine>(enclave_.get(), 4096);
    std::vector<ServedPool> pools;
    pools.push_back({"p", std::move(pool)});
    ServerOptions so;
    so.listen_ip = "127.0.0.1";
    so.port = 0;
    so.workers = 1;
    so.flushers = 2;
    so.secure_flushers = 2;
    so.secure_engine = engine_.get();
    COSMOS_ASSIGN_OR_RETURN(server_, Server::Start(so, std::move(pools)));
    return Status::Ok();
  }
  // The node goes down with whatever the medium made durable.
  void PowerOff() {
    if (server_) server_->Stop();
    server_.reset();
    engine_.reset();
    enclave_.reset();
  }
  uint16_t port() const { return server_->port(); }

 private:
  std::atomic<uint64_t> now_{1};  // fake clock of the counter's stabilisation
  std::unique_ptr<sec::SimulatedEnclave> enclave_;
  std::unique_ptr<EnclaveRegionEngine> engine_;
  std::unique_ptr<Server> server_;
};

// What a region must hold after a power loss: per byte, the acknowledged
// value, or (for bytes of the interrupted step) that or the step's new value.
struct RegionModel {
  std::vector<std::byte> acked = std::vector<std::byte>(kRegionSize);
  std::vector<std::byte> maybe = std::vector<std::byte>(kRegionSize);
  std::vector<bool> has_maybe = std::vector<bool>(kRegionSize);
  uint64_t Word(uint64_t offset) const {
    uint64_t v;
    std::memcpy(&v, acked.data() + offset, 8);
    return v;
  }
};

// One change a step makes: bytes at an offset of a region.
struct Effect {
  size_t region;
  uint64_t offset;
  std::vector<std::byte> bytes;
};

std::vector<std::byte> Word(uint64_t v) {
  std::vector<std::byte> b(8);
  std::memcpy(b.data(), &v, 8);
  return b;
}

std::vector<std::byte> Fill(size_t len, int seed) {
  std::vector<std::byte> b(len);
  for (size_t i = 0; i < len; ++i) b[i] = static_cast<std::byte>((seed * 131 + i * 7 + 1) & 0xff);
  return b;
}

// One step of the workload; acknowledged when Run returns Ok.
struct Step {
  enum Kind {
    kWriteFlush,      // write, Flush(that range): one Persist on a plain region
    kWriteFlushTwo,   // two writes, Flush of both ranges: Flush + Flush + Drain
    kLogAppend,       // write, AsyncFlush, WriteAfterFlush(tail), Drain
    kFetchAdd,        // durable on completion
    kCompareAndSwap,  // expected = the current value; durable on completion
  } kind;
  size_t region;
  uint64_t offset;   // data (kLogAppend: records)
  uint64_t offset2;  // second range / kLogAppend: tail word
  uint64_t len;
  uint64_t value;  // fill seed / delta / desired / tail value
};

std::vector<Step> Workload() {
  std::vector<Step> steps;
  for (uint64_t r = 0; r < 3; ++r) {
    const uint64_t seed = r * 10;
    // Plain region: single-range flush, multi-range flush, log append, atomics.
    steps.push_back({Step::kWriteFlush, kPlain, 4096 * r + 100, 0, 300, r + 1});
    steps.push_back({Step::kWriteFlushTwo, kPlain, 20000 + r * 512, 30000 + r * 512, 200, r + 2});
    steps.push_back({Step::kLogAppend, kPlain, 40000 + r * 256, 48000, 256, r + 1});
    steps.push_back({Step::kFetchAdd, kPlain, 48008, 0, 8, 3});
    steps.push_back({Step::kCompareAndSwap, kPlain, 48016, 0, 8, 100 + r});
    // Secure region: the same through the enclave's commits (the first
    // write crosses a 4 KiB block boundary).
    steps.push_back({Step::kWriteFlush, kSecure, 4096 * r + 4000, 0, 300, seed + 3});
    steps.push_back({Step::kLogAppend, kSecure, 30000 + r * 256, 48000, 256, r + 1});
    steps.push_back({Step::kFetchAdd, kSecure, 48008, 0, 8, 5});
    steps.push_back({Step::kCompareAndSwap, kSecure, 48016, 0, 8, 200 + r});
    steps.push_back({Step::kWriteFlushTwo, kSecure, 52000 + r * 512, 60000 + r * 512, 200, r + 4});
  }
  return steps;
}

// What `st` changes, given the acknowledged state before it.
std::vector<Effect> EffectsOf(const Step& st, const RegionModel& m) {
  switch (st.kind) {
    case Step::kWriteFlush:
      return {{st.region, st.offset, Fill(st.len, static_cast<int>(st.value))}};
    case Step::kWriteFlushTwo:
      return {{st.region, st.offset, Fill(st.len, static_cast<int>(st.value))},
              {st.region, st.offset2, Fill(st.len, static_cast<int>(st.value) + 50)}};
    case Step::kLogAppend:
      return {{st.region, st.offset, Fill(st.len, static_cast<int>(st.value) + 90)},
              {st.region, st.offset2, Word(st.value)}};
    case Step::kFetchAdd:
      return {{st.region, st.offset, Word(m.Word(st.offset) + st.value)}};
    case Step::kCompareAndSwap:
      return {{st.region, st.offset, Word(st.value)}};
  }
  return {};
}

// Runs `st` against the node. Ok = acknowledged by the node.
Status RunStep(const Step& st, const std::vector<Effect>& effects, const RegionModel& m,
               Region* region) {
  switch (st.kind) {
    case Step::kWriteFlush:
      COSMOS_RETURN_IF_ERROR(region->Write(st.offset, effects[0].bytes));
      return region->Flush(st.offset, st.len);
    case Step::kWriteFlushTwo: {
      COSMOS_RETURN_IF_ERROR(region->Write(st.offset, effects[0].bytes));
      COSMOS_RETURN_IF_ERROR(region->Write(st.offset2, effects[1].bytes));
      const std::array<Range, 2> ranges{Range{st.offset, st.len}, Range{st.offset2, st.len}};
      return region->Flush(ranges);
    }
    case Step::kLogAppend: {
      COSMOS_RETURN_IF_ERROR(region->Write(st.offset, effects[0].bytes));
      const Range records{st.offset, st.len};
      COSMOS_RETURN_IF_ERROR(region->AsyncFlush({&records, 1}));
      COSMOS_RETURN_IF_ERROR(region->WriteAfterFlush(st.offset2, st.value));
      return region->Drain();
    }
    case Step::kFetchAdd: {
      COSMOS_ASSIGN_OR_RETURN(uint64_t before, region->FetchAdd(st.offset, st.value));
      if (before != m.Word(st.offset)) return Status::Internal("fetch_add saw another value");
      return Status::Ok();
    }
    case Step::kCompareAndSwap: {
      const uint64_t expected = m.Word(st.offset);
      COSMOS_ASSIGN_OR_RETURN(uint64_t before,
                              region->CompareAndSwap(st.offset, expected, st.value));
      if (before != expected) return Status::Internal("compare_and_swap saw another value");
      return Status::Ok();
    }
  }
  return Status::Internal("unknown step");
}

// One sweep's configuration: the enclave's counter mode and what happens to
// bytes not yet persisted at the crash (dropped, or torn per 8-byte word).
struct PowerLossCase {
  const char* name;
  sec::CounterMode counter_mode;
  pmem::CrashMode crash_mode;
};

// For ctest's listing: the case's name, not its bytes.
void PrintTo(const PowerLossCase& c, std::ostream* os) { *os << c.name; }

class ServerPowerLossTest : public ::testing::TestWithParam<PowerLossCase> {
 protected:
  void SetUp() override {
    log::SetLevel("warn");  // one node start per persist point: keep the log short
    char tmpl[] = "/tmp/cosmos_srv_power_loss_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    keys_ = dir_ + "/keys";
    ASSERT_TRUE(sec::GeneratePlatformKeys(keys_).ok());
    ASSERT_TRUE(sec::GenerateClientCredentials(keys_, "t").ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  ClientOptions Options(const Node& node, bool secure) const {
    ClientOptions co;
    co.server = "127.0.0.1:" + std::to_string(node.port());
    co.timeout_ms = 20000;  // a hang guard; a working node answers at once
    if (secure) {
      co.platform_public_key_file = keys_ + "/platform.pub";
      co.measurement_file = keys_ + "/measurement";
      co.client_key_file = keys_ + "/t.key";
    }
    return co;
  }

  // Plain client + plain region, secure client + secure region.
  struct Clients {
    std::unique_ptr<Client> client[2];
    std::unique_ptr<Region> region[2];
  };
  Status Connect(const Node& node, bool create, Clients* c) {
    for (size_t i : {kPlain, kSecure}) {
      COSMOS_ASSIGN_OR_RETURN(c->client[i], Client::Connect(Options(node, i == kSecure)));
      if (create) {
        auto info =
            c->client[i]->CreateRegion(kRegionNames[i], kRegionSize, {.secure = i == kSecure});
        if (!info.ok()) return info.status();
      }
      COSMOS_ASSIGN_OR_RETURN(c->region[i], c->client[i]->OpenRegion(kRegionNames[i]));
    }
    return Status::Ok();
  }

  // Runs the workload with power lost at persist point k (counted from the
  // end of the setup) and checks what the restarted node serves. Returns
  // false when the workload finished before reaching point k.
  bool RunPowerLossAt(uint64_t k) {
    const std::string state = dir_ + "/state" + std::to_string(k);
    auto medium = pmem::FaultInjectionMedium::Create(kMediumSize);
    RegionModel model[2];
    bool reached = false;
    std::string interrupted;
    {
      Node node;
      Status s = node.PowerOn(medium.get(), /*create=*/true, keys_, state, GetParam().counter_mode);
      EXPECT_TRUE(s.ok()) << s;
      if (!s.ok()) return false;
      Clients c;
      s = Connect(node, /*create=*/true, &c);
      EXPECT_TRUE(s.ok()) << s;
      if (!s.ok()) return false;
      medium->CrashAtPersistPoint(k, GetParam().crash_mode, /*seed=*/k);
      for (const Step& st : Workload()) {
        const std::vector<Effect> effects = EffectsOf(st, model[st.region]);
        s = RunStep(st, effects, model[st.region], c.region[st.region].get());
        for (const Effect& e : effects) {
          RegionModel& m = model[e.region];
          if (s.ok()) {
            std::memcpy(m.acked.data() + e.offset, e.bytes.data(), e.bytes.size());
          } else {
            std::memcpy(m.maybe.data() + e.offset, e.bytes.data(), e.bytes.size());
            std::fill_n(m.has_maybe.begin() + static_cast<ptrdiff_t>(e.offset), e.bytes.size(),
                        true);
          }
        }
        if (!s.ok()) {
          EXPECT_TRUE(medium->crashed()) << "step failed without a crash: " << s;
          reached = true;
          interrupted = std::string(kRegionNames[st.region]) + " step " +
                        std::to_string(static_cast<int>(st.kind)) + " at " +
                        std::to_string(st.offset);
          if (st.kind == Step::kLogAppend) log_append_ = st;
          break;
        }
      }
      // Clients go first; the node then loses power.
    }
    if (!reached) {
      log_append_.reset();
      return false;
    }

    Node node;
    Status s = node.PowerOn(medium.get(), /*create=*/false, keys_, state, GetParam().counter_mode);
    EXPECT_TRUE(s.ok()) << "power loss at persist point " << k << ": " << s;
    if (!s.ok()) return true;
    Clients c;
    s = Connect(node, /*create=*/false, &c);
    EXPECT_TRUE(s.ok()) << "power loss at persist point " << k << " (" << interrupted << "): " << s;
    if (!s.ok()) return true;
    for (size_t i : {kPlain, kSecure}) {
      std::vector<std::byte> got(kRegionSize);
      s = c.region[i]->Read(0, got);
      EXPECT_TRUE(s.ok()) << "power loss at persist point " << k << ": read " << kRegionNames[i]
                          << ": " << s;
      if (!s.ok()) continue;
      const RegionModel& m = model[i];
      for (uint64_t off = 0; off < kRegionSize; ++off) {
        const bool fine =
            got[off] == m.acked[off] || (m.has_maybe[off] && got[off] == m.maybe[off]);
        if (!fine) {
          ADD_FAILURE() << "power loss at persist point " << k << " (interrupted: " << interrupted
                        << "): region " << kRegionNames[i] << " byte " << off << " is "
                        << static_cast<int>(got[off]) << ", acknowledged "
                        << static_cast<int>(m.acked[off]);
          break;
        }
      }
      // An interrupted log append: a new tail word means its records are durable.
      if (log_append_.has_value() && log_append_->region == i) {
        const Step& st = *log_append_;
        if (std::memcmp(got.data() + st.offset2, m.maybe.data() + st.offset2, 8) == 0) {
          EXPECT_EQ(std::memcmp(got.data() + st.offset, m.maybe.data() + st.offset, st.len), 0)
              << "power loss at persist point " << k << ": region " << kRegionNames[i]
              << ": the tail word is durable, its records are not";
        }
      }
    }
    log_append_.reset();
    return true;
  }

  // Sweeps every persist point; returns how many were hit.
  uint64_t SweepEveryPersistPoint() {
    uint64_t points = 0;
    for (uint64_t k = 1; k < 1000; ++k) {
      if (!RunPowerLossAt(k)) break;
      ++points;
      if (HasFailure()) break;  // one clear failure, not hundreds
    }
    std::printf("power lost at %llu persist points\n", static_cast<unsigned long long>(points));
    return points;
  }

  std::string dir_, keys_;
  std::optional<Step> log_append_;  // the interrupted step, when a log append
};

// Per round of the workload: 6 plain persist points (one per flush, atomic
// and write_after_flush; the log append's flush and tail are two) and 6
// enclave commits of 3 persist points each (log, blocks, root record): 72
// points measured over 3 rounds. Fewer would mean the sweep proves less than
// it says.
constexpr uint64_t kMinPersistPoints = 70;

TEST_P(ServerPowerLossTest, EveryAcknowledgedFlushSurvivesPowerLossAtEveryPersistPoint) {
  EXPECT_GE(SweepEveryPersistPoint(), kMinPersistPoints);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ServerPowerLossTest,
    ::testing::Values(PowerLossCase{"StrictDropUnpersisted", sec::CounterMode::kStrict,
                                    pmem::CrashMode::kDiscardUnpersisted},
                      PowerLossCase{"RelaxedDropUnpersisted", sec::CounterMode::kRelaxed,
                                    pmem::CrashMode::kDiscardUnpersisted},
                      PowerLossCase{"StrictTearUnpersisted", sec::CounterMode::kStrict,
                                    pmem::CrashMode::kTearUnpersisted}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cosmos::server
