// A host that drops a client's user-supplied region key (so the region gets
// a key the enclave draws instead) is caught by the client: the enclave's
// receipt is missing or does not match, and the client reports
// IntegrityViolation instead of believing its key is in use. The host here
// is a SecureRegionEngine that forwards to the real one but strips the key
// (the host owns everything outside the enclave, including this code).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cosmos/client.h"
#include "pmem/pool.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/enclave_region_engine.h"
#include "server/server.h"

namespace cosmos::server {
namespace {

// Forwards every call to the real engine; Format and RotateKey drop the
// client's wrapped key (the receipt the server sends stays all zero). With
// `forge_receipt` it fills in a receipt of its own making (the host cannot
// compute the real one without the session's key-wrap key).
class KeyStrippingEngine final : public SecureRegionEngine {
 public:
  KeyStrippingEngine(SecureRegionEngine* real, bool forge_receipt)
      : real_(real), forge_(forge_receipt) {}
  rpc::ConnectDecision AcceptConnect(SessionKey s, std::span<const std::byte> hello) override {
    return real_->AcceptConnect(s, hello);
  }
  uint64_t SecureSessionOf(SessionKey s) override { return real_->SecureSessionOf(s); }
  Result<uint64_t> StoreSize(uint64_t size) const override { return real_->StoreSize(size); }
  uint32_t RegionFlags() const override { return real_->RegionFlags(); }
  uint32_t block_size() const override { return real_->block_size(); }
  uint64_t LogicalSize(const RegionEntry& e) const override { return real_->LogicalSize(e); }
  Status Format(Requester r, RegionEntry& e, UserKeyTransfer* user_key) override {
    Status s = real_->Format(r, e, nullptr);
    if (s.ok() && user_key != nullptr && forge_) user_key->receipt.fill(std::byte{0x42});
    return s;
  }
  void Forget(const RegionEntry& e) override { real_->Forget(e); }
  bool IsSecureSession(const Requester& r) override { return real_->IsSecureSession(r); }
  Status Authorize(Requester r, RegionEntry& e, uint8_t rights) override {
    return real_->Authorize(r, e, rights);
  }
  Result<uint64_t> AuthenticatedSize(RegionEntry& e) override {
    return real_->AuthenticatedSize(e);
  }
  Status Write(Requester r, RegionEntry& e, uint64_t off, std::span<const std::byte> d,
               WaitMode w) override {
    return real_->Write(r, e, off, d, w);
  }
  Status Read(Requester r, RegionEntry& e, uint64_t off, std::span<std::byte> out) override {
    return real_->Read(r, e, off, out);
  }
  Status Flush(Requester r, RegionEntry& e, WaitMode w) override { return real_->Flush(r, e, w); }
  Result<uint64_t> Digest(Requester r, RegionEntry& e,
                          std::span<const protocol::Range> ranges) override {
    return real_->Digest(r, e, ranges);
  }
  Result<uint64_t> CompareAndSwap(Requester r, RegionEntry& e, uint64_t off, uint64_t expected,
                                  uint64_t desired, uint64_t attempt, WaitMode w) override {
    return real_->CompareAndSwap(r, e, off, expected, desired, attempt, w);
  }
  Result<uint64_t> FetchAdd(Requester r, RegionEntry& e, uint64_t off, uint64_t delta,
                            uint64_t attempt, WaitMode w) override {
    return real_->FetchAdd(r, e, off, delta, attempt, w);
  }
  Status Grant(Requester r, RegionEntry& e, std::span<const std::byte> id,
               uint8_t rights) override {
    return real_->Grant(r, e, id, rights);
  }
  Result<protocol::AccessInfo> ListAccess(Requester r, RegionEntry& e) override {
    return real_->ListAccess(r, e);
  }
  Result<uint32_t> RotateKey(Requester r, RegionEntry& e, UserKeyTransfer* user_key) override {
    auto epoch = real_->RotateKey(r, e, nullptr);
    if (epoch.ok() && user_key != nullptr && forge_) user_key->receipt.fill(std::byte{0x42});
    return epoch;
  }

 private:
  SecureRegionEngine* real_;
  bool forge_;
};

class UserKeyReceiptTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cosmos_userkey_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    keys_ = dir_ + "/keys";
    ASSERT_TRUE(sec::GeneratePlatformKeys(keys_).ok());
    ASSERT_TRUE(sec::GenerateClientCredentials(keys_, "t").ok());
    pmem::PoolOptions fo;
    fo.backend = pmem::BackendKind::kDram;
    auto pool = pmem::Pool::Create(dir_ + "/node.pool", 16 << 20, fo);
    ASSERT_TRUE(pool.ok()) << pool.status();
    sec::SimulatedEnclaveOptions eo;
    eo.platform_key_path = keys_ + "/platform.key";
    eo.sealing_secret_path = keys_ + "/sealing.secret";
    eo.state_dir = dir_ + "/state";
    eo.counter_stabilisation_ns = 0;
    auto enclave = sec::SimulatedEnclave::Create(std::move(eo));
    ASSERT_TRUE(enclave.ok()) << enclave.status();
    enclave_ = std::move(*enclave);
    auto key = sec::LoadPublicKey(keys_ + "/t.pub", sec::KeyKind::kClientPublic);
    ASSERT_TRUE(key.ok());
    std::vector<sec::Ed25519PublicKey> allowed{*key};
    ASSERT_TRUE(enclave_->SetClientAllowList(allowed).ok());
    real_ = std::make_unique<EnclaveRegionEngine>(enclave_.get(), 4096);
    host_ = std::make_unique<KeyStrippingEngine>(real_.get(), /*forge_receipt=*/GetParam());
    std::vector<ServedPool> pools;
    pools.push_back({"p", std::move(*pool)});
    ServerOptions so;
    so.listen_ip = "127.0.0.1";
    so.port = 0;
    so.workers = 1;
    so.secure_engine = host_.get();
    auto server = Server::Start(so, std::move(pools));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
    host_.reset();
    real_.reset();
    enclave_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_, keys_;
  std::unique_ptr<sec::SimulatedEnclave> enclave_;
  std::unique_ptr<EnclaveRegionEngine> real_;
  std::unique_ptr<KeyStrippingEngine> host_;
  std::unique_ptr<Server> server_;
};

TEST_P(UserKeyReceiptTest, ClientCatchesAHostThatDropsItsKey) {
  ClientOptions co;
  co.server = "127.0.0.1:" + std::to_string(server_->port());
  co.timeout_ms = 20000;
  co.platform_public_key_file = keys_ + "/platform.pub";
  co.measurement_file = keys_ + "/measurement";
  co.client_key_file = keys_ + "/t.key";
  auto c = Client::Connect(co);
  ASSERT_TRUE(c.ok()) << c.status();
  UserKey key;
  key.bytes.fill(0x61);
  // The receipt the host answers (all zero, or forged) does not match what the
  // client computes: it refuses to believe its key is in use.
  const StatusCode expect = StatusCode::kIntegrityViolation;
  EXPECT_EQ((*c)->CreateRegion("k", 8192, {.secure = true, .user_key = &key}).status().code(),
            expect);
  // A region created without a user key, then rotated "to" one.
  ASSERT_TRUE((*c)->CreateRegion("r", 8192, {.secure = true}).ok());
  EXPECT_EQ((*c)->RotateKeyToUserKey("r", key).status().code(), expect);
}

INSTANTIATE_TEST_SUITE_P(ReceiptStrippedOrForged, UserKeyReceiptTest, ::testing::Bool());

}  // namespace
}  // namespace cosmos::server
