// Secure flushes run on flusher threads, never on the worker: while a
// strict-mode secure flush waits for the trusted counter (held open here by a
// gate in the counter's injected sleep), a plain client served by the same
// (only) worker gets its reads answered, and both sessions survive a wait far
// longer than the peer-silence limit (10 heartbeats of 100 ms). Pass/fail is
// decided by completion order and status, never by elapsed time.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "cosmos/client.h"
#include "pmem/pool.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/enclave_region_engine.h"
#include "server/server.h"

namespace cosmos::server {
namespace {

// The counter's sleep: blocks while closed; counts the callers blocked in it.
class Gate {
 public:
  void Sleep() {
    std::unique_lock l(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
  }
  void Close() {
    std::lock_guard l(mu_);
    open_ = false;
    entered_ = 0;
  }
  void Open() {
    std::lock_guard l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until some thread is blocked in Sleep (bounded, so a broken build
  // fails instead of hanging).
  bool WaitEntered() {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(30), [&] { return entered_ > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int entered_ = 0;
};

class SecureFlushDispatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cosmos_secflush_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    keys_ = dir_ + "/keys";
    ASSERT_TRUE(sec::GeneratePlatformKeys(keys_).ok());
    ASSERT_TRUE(sec::GenerateClientCredentials(keys_, "t").ok());
    pmem::PoolOptions fo;
    // DRAM (nothing durable): the pool itself never needs a page sync, so
    // only the secure region's own commit can send a flush to a flusher.
    fo.backend = pmem::BackendKind::kDram;
    auto pool = pmem::Pool::Create(dir_ + "/node.pool", 16 << 20, fo);
    ASSERT_TRUE(pool.ok()) << pool.status();
    sec::SimulatedEnclaveOptions eo;
    eo.platform_key_path = keys_ + "/platform.key";
    eo.sealing_secret_path = keys_ + "/sealing.secret";
    eo.state_dir = dir_ + "/state";
    eo.counter_stabilisation_ns = 20'000'000;
    eo.region_policy.counter_mode = sec::CounterMode::kStrict;
    // Fake clock: a value is stable only after the (gated) sleep returned.
    eo.counter_now_ns = [this] { return now_.load(); };
    eo.counter_sleep_ns = [this](uint64_t ns) {
      gate_.Sleep();
      now_ += ns;
    };
    auto enclave = sec::SimulatedEnclave::Create(std::move(eo));
    ASSERT_TRUE(enclave.ok()) << enclave.status();
    enclave_ = std::move(*enclave);
    auto key = sec::LoadPublicKey(keys_ + "/t.pub", sec::KeyKind::kClientPublic);
    ASSERT_TRUE(key.ok());
    std::vector<sec::Ed25519PublicKey> allowed{*key};
    ASSERT_TRUE(enclave_->SetClientAllowList(allowed).ok());
    engine_ = std::make_unique<EnclaveRegionEngine>(enclave_.get(), 4096);
    std::vector<ServedPool> pools;
    pools.push_back({"p", std::move(*pool)});
    ServerOptions so;
    so.listen_ip = "127.0.0.1";
    so.port = 0;
    so.workers = 1;  // both clients on the same worker
    so.flushers = 2;
    so.secure_engine = engine_.get();
    auto server = Server::Start(so, std::move(pools));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void TearDown() override {
    gate_.Open();
    if (server_) server_->Stop();
    server_.reset();
    engine_.reset();
    enclave_.reset();
    std::filesystem::remove_all(dir_);
  }
  ClientOptions Options(bool secure) const {
    ClientOptions co;
    co.server = "127.0.0.1:" + std::to_string(server_->port());
    co.timeout_ms = 20000;
    if (secure) {
      co.platform_public_key_file = keys_ + "/platform.pub";
      co.measurement_file = keys_ + "/measurement";
      co.client_key_file = keys_ + "/t.key";
    }
    return co;
  }

  std::string dir_, keys_;
  Gate gate_;
  std::atomic<uint64_t> now_{1};
  std::unique_ptr<sec::SimulatedEnclave> enclave_;
  std::unique_ptr<EnclaveRegionEngine> engine_;
  std::unique_ptr<Server> server_;
};

TEST_F(SecureFlushDispatchTest, StrictFlushDoesNotBlockOtherClientsOfTheWorker) {
  auto plain = Client::Connect(Options(false));
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE((*plain)->CreateRegion("plain", 4096).ok());
  auto pr = (*plain)->OpenRegion("plain");
  ASSERT_TRUE(pr.ok()) << pr.status();
  const std::vector<std::byte> word(8, std::byte{0x5a});
  ASSERT_TRUE((*pr)->Write(0, word).ok());
  ASSERT_TRUE((*pr)->Flush(0, 8).ok());

  std::promise<void> ready, go;
  std::atomic<bool> flush_done{false};
  Status flush_status, read_back_status;
  std::vector<std::byte> read_back(64);
  std::thread secure_client([&] {
    auto c = Client::Connect(Options(true));
    std::unique_ptr<Region> r;
    if (c.ok() && (*c)->CreateRegion("secure", 64 << 10, {.secure = true}).ok()) {
      auto opened = (*c)->OpenRegion("secure");
      if (opened.ok()) r = std::move(*opened);
    }
    ready.set_value();
    go.get_future().wait();
    if (r == nullptr) {
      flush_status = Status::Internal("secure client setup failed");
      flush_done = true;
      return;
    }
    const std::vector<std::byte> data(64, std::byte{0x33});
    flush_status = r->Write(0, data);
    if (flush_status.ok()) flush_status = r->Flush(0, 64);
    flush_done = true;
    read_back_status = r->Read(0, read_back);
  });
  ready.get_future().wait();
  gate_.Close();
  go.set_value();

  // The secure flush is now inside the counter wait (on some thread).
  ASSERT_TRUE(gate_.WaitEntered());
  std::vector<std::byte> got(8);
  EXPECT_TRUE((*pr)->Read(0, got).ok());
  EXPECT_EQ(got, word);
  EXPECT_FALSE(flush_done.load()) << "the flush finished without its counter value stabilising";

  // Hold the flush past the peer-silence limit (10 x 100 ms heartbeats) while
  // the plain client keeps its own session polled; the worker must keep
  // answering both sessions' heartbeats.
  const uint64_t until = MonotonicNanos() + 1'500'000'000;
  while (MonotonicNanos() < until) (*plain)->Poll(10'000);
  EXPECT_TRUE((*pr)->Read(0, got).ok());
  EXPECT_FALSE(flush_done.load());

  gate_.Open();
  secure_client.join();
  EXPECT_TRUE(flush_status.ok()) << flush_status;
  EXPECT_TRUE(read_back_status.ok()) << read_back_status;
  EXPECT_EQ(read_back, std::vector<std::byte>(64, std::byte{0x33}));
  EXPECT_EQ(server_->stats().lost_responses, 0u);
}

// A secure atomic tried on the worker stops at the counter wait after the
// enclave applied it; the flusher that repeats it must not apply it again.
// On this DRAM pool every atomic takes that path (deferred_batches counts it).
TEST_F(SecureFlushDispatchTest, DeferredSecureAtomicsAreAppliedExactlyOnce) {
  auto c = Client::Connect(Options(true));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->CreateRegion("counter", 8 << 10, {.secure = true}).ok());
  auto r = (*c)->OpenRegion("counter");
  ASSERT_TRUE(r.ok()) << r.status();
  const uint64_t deferred_before = server_->stats().deferred_batches;
  for (uint64_t i = 0; i < 10; ++i) {
    auto before = (*r)->FetchAdd(16, 5);
    ASSERT_TRUE(before.ok()) << before.status();
    EXPECT_EQ(*before, 5 * i);
  }
  // A re-applied compare-and-swap would report the word it had just stored.
  auto cas = (*r)->CompareAndSwap(16, 50, 7);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_EQ(*cas, 50u);
  EXPECT_GE(server_->stats().deferred_batches, deferred_before + 11);
  std::vector<std::byte> word(8);
  ASSERT_TRUE((*r)->Read(16, word).ok());
  EXPECT_EQ(word[0], std::byte{7});
}

}  // namespace
}  // namespace cosmos::server
