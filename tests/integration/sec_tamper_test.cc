// The attacks of issue 11, tried against a real cosmosd in secure mode, each
// asserting the exact error a client gets (docs/threat_model.md):
//  - deleting, opening or listing someone else's secure region, as another
//    allowed client or as a plain (unauthenticated) client;
//  - the host editing the pool's region table while the node is stopped
//    (swapping two region names, clearing a region's secure flag, moving a
//    region's id), checksums fixed up so pmem accepts the table;
//  - two pools whose secure regions share a region id.
// Nonce reuse after a crash is proven at the engine level
// (src/sec/protected_region_test.cc, NoNonceIsReused...).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cosmos/client.h"
#include "rpm_harness.h"
#include "sec/key_files.h"
#include "tools/pool_table_editor.h"

namespace {

using cosmos::StatusCode;
using cosmos::testing::PoolTableEditor;

std::vector<std::byte> Bytes(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

std::string Text(const std::vector<std::byte>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size());
}

class SecTamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir_.path + "/node").ok());
    for (const char* name : {"alice", "bob"}) {
      ASSERT_TRUE(cosmos::sec::GenerateClientCredentials(dir_.path + "/clients", name).ok());
    }
    pool_ = dir_.path + "/a.pool";
    pool_b_ = dir_.path + "/b.pool";
  }

  bool StartDaemon(rpm_test::Daemon& d, bool two_pools = false) {
    std::vector<std::string> args = {"--listen",
                                     "127.0.0.1",
                                     "--workers",
                                     "2",
                                     "--counter-delay-ms",
                                     "1",
                                     "--pool",
                                     "main=" + pool_ + ",size=16M,create",
                                     "--platform-keys",
                                     dir_.path + "/node",
                                     "--allow",
                                     dir_.path + "/clients/alice.pub",
                                     "--allow",
                                     dir_.path + "/clients/bob.pub"};
    if (two_pools) {
      args.push_back("--pool");
      args.push_back("second=" + pool_b_ + ",size=16M,create");
    }
    return d.Start(dir_.path, args);
  }

  cosmos::Result<std::unique_ptr<cosmos::Client>> ConnectAs(const rpm_test::Daemon& d,
                                                            const std::string& name) {
    cosmos::ClientOptions o;
    o.server = d.address();
    o.timeout_ms = 10000;
    if (!name.empty()) {
      o.platform_public_key_file = dir_.path + "/node/platform.pub";
      o.measurement_file = dir_.path + "/node/measurement";
      o.client_key_file = dir_.path + "/clients/" + name + ".key";
    }
    return cosmos::Client::Connect(o);
  }

  // Creates secure region `name` as alice and stores `text` at offset 0.
  void CreateAndWrite(cosmos::Client& alice, const std::string& name, const std::string& text,
                      const std::string& pool = "") {
    auto info = alice.CreateRegion(name, 64 * 1024, {.pool = pool, .secure = true});
    ASSERT_TRUE(info.ok()) << info.status();
    auto r = alice.OpenRegion(name);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE((*r)->Write(0, Bytes(text)).ok());
    ASSERT_TRUE((*r)->Flush(0, text.size()).ok());
  }

  // One node run as alice: start cosmosd, run `work`, stop it cleanly.
  void AsAliceOnANodeRun(const std::function<void(cosmos::Client&)>& work, bool two_pools = false) {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d, two_pools));
    auto alice = ConnectAs(d, "alice");
    ASSERT_TRUE(alice.ok()) << alice.status();
    work(**alice);
    alice->reset();
    EXPECT_EQ(d.Stop(SIGTERM), 0);
  }

  // The host edits the stopped node's region table.
  void EditTable(const std::function<bool(PoolTableEditor&)>& edit) {
    PoolTableEditor editor(pool_);
    ASSERT_TRUE(editor.loaded());
    ASSERT_TRUE(edit(editor));
    ASSERT_TRUE(editor.Save());
  }

  rpm_test::TempDir dir_;
  std::string pool_, pool_b_;
};

// Attack 1: another allowed client and a plain client try to delete (and
// find) alice's secure region, then squat its name with a plain region.
TEST_F(SecTamperTest, OnlyTheRegionsAdminDeletesItAndPlainSessionsNeverSeeIt) {
  rpm_test::Daemon d;
  ASSERT_TRUE(StartDaemon(d));
  auto alice = ConnectAs(d, "alice");
  auto bob = ConnectAs(d, "bob");
  auto plain = ConnectAs(d, "");
  ASSERT_TRUE(alice.ok() && bob.ok() && plain.ok());
  CreateAndWrite(**alice, "vault", "alice's secret");

  EXPECT_EQ((*bob)->DeleteRegion("vault").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*bob)->OpenRegion("vault").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*plain)->DeleteRegion("vault").code(), StatusCode::kNotFound);
  EXPECT_EQ((*plain)->OpenRegion("vault").status().code(), StatusCode::kNotFound);
  for (auto* c : {&*bob, &*plain}) {
    auto list = (*c)->ListRegions();
    ASSERT_TRUE(list.ok()) << list.status();
    for (const auto& info : *list) EXPECT_NE(info.name, "vault");
  }
  auto alice_list = (*alice)->ListRegions();
  ASSERT_TRUE(alice_list.ok());
  ASSERT_EQ(alice_list->size(), 1u);
  EXPECT_EQ((*alice_list)[0].name, "vault");

  // The region survived every attempt.
  auto r = (*alice)->OpenRegion("vault");
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::byte> out(14);
  ASSERT_TRUE((*r)->Read(0, out).ok());
  EXPECT_EQ(Text(out), "alice's secret");
  r->reset();

  // Even after its admin deletes it and a plain client takes the name, the
  // secure client does not write into the plain region.
  ASSERT_TRUE((*alice)->DeleteRegion("vault").ok());
  ASSERT_TRUE((*plain)->CreateRegion("vault", 64 * 1024).ok());
  auto squatted = (*alice)->OpenRegion("vault");
  EXPECT_EQ(squatted.status().code(), StatusCode::kPermissionDenied) << squatted.status();
  // ... unless it asks for a plain region on purpose.
  EXPECT_TRUE((*alice)->OpenRegion("vault", {.allow_plain = true}).ok());
  EXPECT_EQ(d.Stop(SIGTERM), 0);
}

// Attack 2a: the host swaps two secure regions' names in the region table.
TEST_F(SecTamperTest, SwappedRegionNamesAreAnIntegrityViolationNotTheOtherRegionsData) {
  AsAliceOnANodeRun([&](cosmos::Client& alice) {
    CreateAndWrite(alice, "a", "contents of a");
    CreateAndWrite(alice, "b", "contents of b");
  });
  EditTable([](PoolTableEditor& t) { return t.SwapNames("a", "b"); });
  AsAliceOnANodeRun([](cosmos::Client& alice) {
    for (const char* name : {"a", "b"}) {
      auto r = alice.OpenRegion(name);
      ASSERT_FALSE(r.ok()) << name << " opened after its name was swapped";
      EXPECT_EQ(r.status().code(), StatusCode::kIntegrityViolation) << r.status();
    }
  });
}

// Attack 2b: the host clears a secure region's flag, so the node serves its
// ciphertext as a plain region.
TEST_F(SecTamperTest, ClearedSecureFlagMakesTheSecureClientRefuseTheRegion) {
  AsAliceOnANodeRun([&](cosmos::Client& alice) { CreateAndWrite(alice, "vault", "secret"); });
  EditTable([](PoolTableEditor& t) {
    const int i = t.Find("vault");
    return i >= 0 && t.SetFlags("vault", t.Entry(i).flags & ~1u);
  });
  AsAliceOnANodeRun([](cosmos::Client& alice) {
    auto r = alice.OpenRegion("vault");
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status();
  });
}

// Attack 2c: the host sets the secure flag of a plain region. The enclave
// has no counter file and no sealed record for it: IntegrityViolation.
TEST_F(SecTamperTest, ForgedSecureFlagIsAnIntegrityViolation) {
  AsAliceOnANodeRun([&](cosmos::Client& alice) {
    CreateAndWrite(alice, "vault", "secret");
    ASSERT_TRUE(alice.CreateRegion("open", 64 * 1024).ok());
  });
  EditTable([](PoolTableEditor& t) {
    const int i = t.Find("vault");
    return i >= 0 && t.SetFlags("open", t.Entry(i).flags);
  });
  AsAliceOnANodeRun([](cosmos::Client& alice) {
    EXPECT_EQ(alice.OpenRegion("open").status().code(), StatusCode::kIntegrityViolation);
  });
}

// The host enlarges a secure region in the table: the node reports (and
// serves) the size the enclave sealed, not the table's.
TEST_F(SecTamperTest, EnlargedRegionSizeInTheTableIsNotBelieved) {
  AsAliceOnANodeRun([&](cosmos::Client& alice) { CreateAndWrite(alice, "vault", "secret"); });
  EditTable([](PoolTableEditor& t) {
    const int i = t.Find("vault");
    return i >= 0 && t.SetSize("vault", t.Entry(i).size + (1 << 20));
  });
  AsAliceOnANodeRun([](cosmos::Client& alice) {
    auto r = alice.OpenRegion("vault");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)->info().size, 64u * 1024);
    EXPECT_EQ((*r)->Write(64 * 1024, Bytes("beyond")).code(), StatusCode::kOutOfRange);
  });
}

// Attack 4: two pools, each with a secure region of id 1. Their enclave
// state (counters, sealed records) must not collide.
TEST_F(SecTamperTest, SecureRegionsWithTheSameIdInTwoPoolsAreIndependent) {
  AsAliceOnANodeRun(
      [&](cosmos::Client& alice) {
        CreateAndWrite(alice, "first", "in pool main", "main");
        CreateAndWrite(alice, "second", "in pool second", "second");
      },
      /*two_pools=*/true);
  AsAliceOnANodeRun(
      [](cosmos::Client& alice) {
        for (auto [name, text] : {std::pair<std::string, std::string>{"first", "in pool main"},
                                  {"second", "in pool second"}}) {
          auto r = alice.OpenRegion(name);
          ASSERT_TRUE(r.ok()) << name << ": " << r.status();
          std::vector<std::byte> out(text.size());
          ASSERT_TRUE((*r)->Read(0, out).ok()) << name;
          EXPECT_EQ(Text(out), text);
          // Both keep committing under their own counters.
          ASSERT_TRUE((*r)->Write(100, Bytes("more")).ok());
          ASSERT_TRUE((*r)->Flush(100, 4).ok()) << name;
        }
      },
      /*two_pools=*/true);
}

}  // namespace
