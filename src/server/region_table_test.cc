// Tests of the node's region table: admin calls, handles, lookup after delete.
#include "server/region_table.h"

#include <gtest/gtest.h>

#include "pmem/mapping.h"

namespace cosmos::server {
namespace {

std::vector<ServedPool> DramPool(const std::string& name = "p0") {
  auto m = pmem::MapDram(8 << 20);
  EXPECT_TRUE(m.ok());
  auto pool = pmem::Pool::CreateOnMapping(std::move(*m), name);
  EXPECT_TRUE(pool.ok()) << pool.status();
  std::vector<ServedPool> v;
  v.push_back(ServedPool{name, std::move(*pool)});
  return v;
}

TEST(RegionTable, CreateOpenListDeleteRoundTrip) {
  RegionTable t(DramPool());
  auto c = t.Create("log", 65536, false, "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->size, 65536u);
  EXPECT_EQ(c->durability, static_cast<uint8_t>(Durability::kNone));
  auto o = t.Open("log");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->handle, c->handle);
  EXPECT_EQ(t.List().size(), 1u);
  EXPECT_EQ(t.Create("log", 4096, false, "").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(t.Create("x", 4096, false, "nopool").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(t.Lookup(c->handle).ok());
  ASSERT_TRUE(t.Delete("log").ok());
  EXPECT_EQ(t.Lookup(c->handle).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(t.Open("log").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(t.Delete("log").code(), StatusCode::kNotFound);
  // Re-creating the name gets a fresh handle; the old one stays dead.
  auto again = t.Create("log", 4096, false, "");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->handle, c->handle);
  EXPECT_EQ(t.Lookup(c->handle).status().code(), StatusCode::kNotFound);
}

TEST(RegionTable, RejectsForgedHandlesAndSecureWithoutEngine) {
  RegionTable t(DramPool());
  auto c = t.Create("a", 4096, false, "");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(t.Lookup(0).ok());
  EXPECT_FALSE(t.Lookup(c->handle + 1).ok());
  EXPECT_FALSE(t.Lookup(c->handle ^ (1ull << 40)).ok());
  EXPECT_FALSE(t.Lookup(~0ull).ok());
  EXPECT_EQ(t.Create("s", 4096, true, "").status().code(), StatusCode::kFailedPrecondition);
}

TEST(RegionTable, ServesRegionsAlreadyInThePool) {
  auto pools = DramPool();
  auto r = pools[0].pool->CreateRegion("existing", 8192);
  ASSERT_TRUE(r.ok());
  { pmem::Region drop = std::move(*r); }
  RegionTable t(std::move(pools));
  auto o = t.Open("existing");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->size, 8192u);
}

// A secure-region engine that only records what Forget sees of the entry.
class ForgetProbe final : public SecureRegionEngine {
 public:
  rpc::ConnectDecision AcceptConnect(SessionKey, std::span<const std::byte>) override { return {}; }
  uint64_t SecureSessionOf(SessionKey) override { return 0; }
  Result<uint64_t> StoreSize(uint64_t size) const override { return size; }
  uint32_t RegionFlags() const override { return kRegionFlagSecure; }
  uint32_t block_size() const override { return 4096; }
  uint64_t LogicalSize(const RegionEntry& e) const override { return e.region.size(); }
  Status Format(Requester, RegionEntry&, UserKeyTransfer*) override { return Status::Ok(); }
  void Forget(const RegionEntry& e) override {
    // A background key rotation would still re-encrypt through e.region.
    size_seen_by_forget = e.region.size();
    ++forgets;
  }
  bool IsSecureSession(const Requester&) override { return false; }
  Status Authorize(Requester, RegionEntry&, uint8_t) override { return Status::Ok(); }
  Result<uint64_t> AuthenticatedSize(RegionEntry& e) override { return e.region.size(); }
  Status Write(Requester, RegionEntry&, uint64_t, std::span<const std::byte>, WaitMode) override {
    return Status::Ok();
  }
  Status Read(Requester, RegionEntry&, uint64_t, std::span<std::byte>) override {
    return Status::Ok();
  }
  Status Flush(Requester, RegionEntry&, WaitMode) override { return Status::Ok(); }
  Result<uint64_t> Digest(Requester, RegionEntry&, std::span<const protocol::Range>) override {
    return uint64_t{0};
  }
  Result<uint64_t> CompareAndSwap(Requester, RegionEntry&, uint64_t, uint64_t, uint64_t, uint64_t,
                                  WaitMode) override {
    return uint64_t{0};
  }
  Result<uint64_t> FetchAdd(Requester, RegionEntry&, uint64_t, uint64_t, uint64_t,
                            WaitMode) override {
    return uint64_t{0};
  }
  Status Grant(Requester, RegionEntry&, std::span<const std::byte>, uint8_t) override {
    return Status::Ok();
  }
  Result<protocol::AccessInfo> ListAccess(Requester, RegionEntry&) override {
    return protocol::AccessInfo{};
  }
  Result<uint32_t> RotateKey(Requester, RegionEntry&, UserKeyTransfer*) override { return 1u; }

  uint64_t size_seen_by_forget = 0;
  int forgets = 0;
};

// Deleting a secure region closes it in the engine while its pool region is
// still there (the enclave's background rotation uses it until then; seen as
// a node crash, "use of a moved-from Region", when Forget ran after Delete).
TEST(RegionTable, DeleteClosesASecureRegionInTheEngineBeforeFreeingIt) {
  RegionTable t(DramPool());
  ForgetProbe engine;
  t.set_secure_engine(&engine);
  auto d = t.Create("s", 8192, /*secure=*/true, "");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(t.Delete("s").ok());
  EXPECT_EQ(engine.forgets, 1);
  EXPECT_EQ(engine.size_seen_by_forget, 8192u);
  // A plain region is not the engine's business.
  ASSERT_TRUE(t.Create("p", 4096, /*secure=*/false, "").ok());
  ASSERT_TRUE(t.Delete("p").ok());
  EXPECT_EQ(engine.forgets, 1);
}

// Destroying the table (server shutdown) closes every live secure region in
// the engine before the region stores are freed: the engine, and the
// enclave's background key rotation, may outlive the table (found by ASan in
// CI as a heap-use-after-free in the rotation thread after Server::Stop).
TEST(RegionTable, DestructionClosesLiveSecureRegionsInTheEngineFirst) {
  ForgetProbe engine;
  {
    RegionTable t(DramPool());
    t.set_secure_engine(&engine);
    ASSERT_TRUE(t.Create("a", 8192, /*secure=*/true, "").ok());
    ASSERT_TRUE(t.Create("b", 8192, /*secure=*/true, "").ok());
    ASSERT_TRUE(t.Create("p", 4096, /*secure=*/false, "").ok());
    ASSERT_TRUE(t.Delete("b").ok());
    EXPECT_EQ(engine.forgets, 1);
    engine.size_seen_by_forget = 0;
  }
  EXPECT_EQ(engine.forgets, 2);  // "a" at destruction; "b" only once, at Delete
  EXPECT_EQ(engine.size_seen_by_forget, 8192u);
}

}  // namespace
}  // namespace cosmos::server
