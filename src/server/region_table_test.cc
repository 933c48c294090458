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

}  // namespace
}  // namespace cosmos::server
