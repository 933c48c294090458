// Secure-region administration (grant, revoke, list access, rotate key) and
// atomics on secure regions against a real cosmosd, through the client
// library, as owner, other allowed client and plain client (issue 11).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cosmos/client.h"
#include "rpm_harness.h"
#include "sec/key_files.h"

namespace {

using cosmos::StatusCode;

std::vector<std::byte> Bytes(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

class SecAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir_.path + "/node").ok());
    for (const char* name : {"alice", "bob", "mallory"}) {
      ASSERT_TRUE(cosmos::sec::GenerateClientCredentials(dir_.path + "/clients", name).ok());
    }
    pool_ = dir_.path + "/secure.pool";
  }

  bool StartDaemon(rpm_test::Daemon& d) {
    return d.Start(dir_.path, {"--listen", "127.0.0.1", "--workers", "2", "--pool",
                               "main=" + pool_ + ",size=16,create", "--platform-keys",
                               dir_.path + "/node", "--allow", dir_.path + "/clients/alice.pub",
                               "--allow", dir_.path + "/clients/bob.pub"});
  }

  // `name` empty: a plain connection.
  std::unique_ptr<cosmos::Client> ConnectAs(const rpm_test::Daemon& d, const std::string& name) {
    cosmos::ClientOptions o;
    o.server = d.address();
    o.timeout_ms = 10000;
    if (!name.empty()) {
      o.platform_public_key_file = dir_.path + "/node/platform.pub";
      o.measurement_file = dir_.path + "/node/measurement";
      o.client_key_file = dir_.path + "/clients/" + name + ".key";
    }
    auto c = cosmos::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  cosmos::ClientIdentity Identity(const std::string& name) {
    auto id = cosmos::ClientIdentity::FromPublicKeyFile(dir_.path + "/clients/" + name + ".pub");
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : cosmos::ClientIdentity{};
  }

  // What a fresh connection of `who` gets when it opens `name` and reads
  // (then writes and flushes) its first bytes.
  StatusCode ReadCode(const rpm_test::Daemon& d, const std::string& who, const std::string& name) {
    auto c = ConnectAs(d, who);
    if (c == nullptr) return StatusCode::kInternal;
    auto r = c->OpenRegion(name);
    if (!r.ok()) return r.status().code();
    std::vector<std::byte> out(8);
    return (*r)->Read(0, out).code();
  }
  StatusCode WriteCode(const rpm_test::Daemon& d, const std::string& who, const std::string& name) {
    auto c = ConnectAs(d, who);
    if (c == nullptr) return StatusCode::kInternal;
    auto r = c->OpenRegion(name);
    if (!r.ok()) return r.status().code();
    cosmos::Status s = (*r)->Write(64, Bytes("bob wrote this"));
    if (s.ok()) s = (*r)->Flush(64, 14);
    return s.code();
  }
  rpm_test::TempDir dir_;
  std::string pool_;
};

TEST_F(SecAccessTest, GrantRevokeListAndRotateThroughTheNodeAndAcrossARestart) {
  const std::string secret = "alice's durable secret";
  uint32_t epoch_before = 0;
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    auto alice = ConnectAs(d, "alice");
    ASSERT_NE(alice, nullptr);
    ASSERT_TRUE(alice->CreateRegion("vault", 64 * 1024, {.secure = true}).ok());
    {
      auto r = alice->OpenRegion("vault");
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_TRUE((*r)->Write(0, Bytes(secret)).ok());
      ASSERT_TRUE((*r)->Flush(0, secret.size()).ok());
    }
    const cosmos::ClientIdentity bob_id = Identity("bob");

    // bob gets nothing until alice grants read.
    EXPECT_EQ(ReadCode(d, "bob", "vault"), StatusCode::kPermissionDenied);
    ASSERT_TRUE(alice->GrantAccess("vault", bob_id, cosmos::kAccessRead).ok());
    EXPECT_EQ(ReadCode(d, "bob", "vault"), StatusCode::kOk);
    EXPECT_EQ(WriteCode(d, "bob", "vault"), StatusCode::kPermissionDenied);
    ASSERT_TRUE(
        alice->GrantAccess("vault", bob_id, cosmos::kAccessRead | cosmos::kAccessWrite).ok());
    EXPECT_EQ(WriteCode(d, "bob", "vault"), StatusCode::kOk);

    // bob (read+write, no admin) can neither grant, list nor rotate.
    {
      auto bob = ConnectAs(d, "bob");
      ASSERT_NE(bob, nullptr);
      EXPECT_EQ(bob->GrantAccess("vault", bob_id, 7).code(), StatusCode::kPermissionDenied);
      EXPECT_EQ(bob->GrantAccess("vault", Identity("alice"), 0).code(),
                StatusCode::kPermissionDenied);
      EXPECT_EQ(bob->ListAccess("vault").status().code(), StatusCode::kPermissionDenied);
      EXPECT_EQ(bob->RotateKey("vault").status().code(), StatusCode::kPermissionDenied);
    }

    // alice sees both entries; she cannot drop the region's last admin.
    auto info = alice->ListAccess("vault");
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_EQ(info->entries.size(), 2u);
    for (const auto& e : info->entries) {
      if (e.fingerprint == bob_id.Fingerprint()) {
        EXPECT_EQ(e.rights, cosmos::kAccessRead | cosmos::kAccessWrite);
      } else {
        EXPECT_EQ(e.fingerprint, Identity("alice").Fingerprint());
        EXPECT_EQ(e.rights, 7);
      }
    }
    EXPECT_EQ(alice->RevokeAccess("vault", Identity("alice")).code(),
              StatusCode::kFailedPrecondition);
    epoch_before = info->key_epoch;

    // Revoke takes it away again.
    ASSERT_TRUE(alice->RevokeAccess("vault", bob_id).ok());
    EXPECT_EQ(ReadCode(d, "bob", "vault"), StatusCode::kPermissionDenied);
    // Granted again: must survive the restart below.
    ASSERT_TRUE(alice->GrantAccess("vault", bob_id, cosmos::kAccessRead).ok());

    // A plain connection gets NotFound for every call, as for an absent name.
    auto plain = ConnectAs(d, "");
    ASSERT_NE(plain, nullptr);
    EXPECT_EQ(plain->GrantAccess("vault", bob_id, 7).code(), StatusCode::kNotFound);
    EXPECT_EQ(plain->RevokeAccess("vault", bob_id).code(), StatusCode::kNotFound);
    EXPECT_EQ(plain->ListAccess("vault").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(plain->RotateKey("vault").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(plain->GrantAccess("absent", bob_id, 7).code(), StatusCode::kNotFound);
    // On a plain region these calls mean nothing.
    ASSERT_TRUE(plain->CreateRegion("notes", 4096).ok());
    EXPECT_EQ(plain->ListAccess("notes").status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(d.Stop(SIGTERM), 0);
  }
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    // The grant survived the restart (sealed, counter-protected access list).
    EXPECT_EQ(ReadCode(d, "bob", "vault"), StatusCode::kOk);
    EXPECT_EQ(WriteCode(d, "bob", "vault"), StatusCode::kPermissionDenied);

    // Rotation: new key epoch, the data still reads back, for bob too.
    auto alice = ConnectAs(d, "alice");
    ASSERT_NE(alice, nullptr);
    auto epoch = alice->RotateKey("vault");
    ASSERT_TRUE(epoch.ok()) << epoch.status();
    EXPECT_GT(*epoch, epoch_before);
    EXPECT_EQ(alice->ListAccess("vault")->key_epoch, *epoch);
    auto bob = ConnectAs(d, "bob");
    ASSERT_NE(bob, nullptr);
    auto r = bob->OpenRegion("vault");
    ASSERT_TRUE(r.ok()) << r.status();
    std::vector<std::byte> out(secret.size());
    ASSERT_TRUE((*r)->Read(0, out).ok());
    EXPECT_EQ(out, Bytes(secret));
    std::vector<std::byte> bobs(14);
    ASSERT_TRUE((*r)->Read(64, bobs).ok());
    EXPECT_EQ(bobs, Bytes("bob wrote this"));
  }
}

TEST_F(SecAccessTest, AtomicsOnASecureRegionAreDurableAndNeedTheWriteRight) {
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    auto alice = ConnectAs(d, "alice");
    ASSERT_NE(alice, nullptr);
    ASSERT_TRUE(alice->CreateRegion("counter", 16 * 1024, {.secure = true}).ok());
    ASSERT_TRUE(alice->GrantAccess("counter", Identity("bob"), cosmos::kAccessRead).ok());
    auto r = alice->OpenRegion("counter");
    ASSERT_TRUE(r.ok()) << r.status();
    for (uint64_t i = 0; i < 20; ++i) {
      auto before = (*r)->FetchAdd(4096, 3);
      ASSERT_TRUE(before.ok()) << before.status();
      EXPECT_EQ(*before, 3 * i);
    }
    auto cas = (*r)->CompareAndSwap(4096, 60, 1000);
    ASSERT_TRUE(cas.ok()) << cas.status();
    EXPECT_EQ(*cas, 60u);
    cas = (*r)->CompareAndSwap(4096, 60, 5);  // fails: the word is 1000
    ASSERT_TRUE(cas.ok()) << cas.status();
    EXPECT_EQ(*cas, 1000u);
    EXPECT_EQ((*r)->FetchAdd(4097, 1).status().code(), StatusCode::kInvalidArgument);
    // A writer's posted write and an atomic in one barrier batch keep order.
    std::vector<std::byte> seven(8, std::byte{0});
    seven[0] = std::byte{7};
    ASSERT_TRUE((*r)->Write(8, seven).ok());
    EXPECT_EQ((*r)->FetchAdd(8, 1).value_or(0), 7u);

    // bob may read the word but not update it.
    auto bob = ConnectAs(d, "bob");
    ASSERT_NE(bob, nullptr);
    auto rb = bob->OpenRegion("counter");
    ASSERT_TRUE(rb.ok()) << rb.status();
    EXPECT_EQ((*rb)->FetchAdd(4096, 1).status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ((*rb)->CompareAndSwap(4096, 1000, 1).status().code(), StatusCode::kPermissionDenied);
    std::vector<std::byte> word(8);
    ASSERT_TRUE((*rb)->Read(4096, word).ok());
    uint64_t v = 0;
    std::memcpy(&v, word.data(), 8);
    EXPECT_EQ(v, 1000u);
    // SIGKILL: what an atomic acknowledged is durable without a Flush.
    d.Stop(SIGKILL);
  }
  rpm_test::Daemon d;
  ASSERT_TRUE(StartDaemon(d));
  auto alice = ConnectAs(d, "alice");
  ASSERT_NE(alice, nullptr);
  auto r = alice->OpenRegion("counter");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->FetchAdd(4096, 0).value_or(0), 1000u);
  EXPECT_EQ((*r)->FetchAdd(8, 0).value_or(0), 8u);
}

// A region key the user supplies (issue 11, "keys the user controls"):
// create and rotate with one, across a restart; a plain connection cannot
// hand one over; bob (no admin) cannot rotate to one.
TEST_F(SecAccessTest, UserSuppliedKeysCreateAndRotateARegionAcrossARestart) {
  cosmos::UserKey key, next;
  key.bytes.fill(0x21);
  next.bytes.fill(0x43);
  const std::string secret = "kept under alice's own key";
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    auto alice = ConnectAs(d, "alice");
    ASSERT_NE(alice, nullptr);
    auto created = alice->CreateRegion("own", 64 * 1024, {.secure = true, .user_key = &key});
    ASSERT_TRUE(created.ok()) << created.status();
    {
      auto r = alice->OpenRegion("own");
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_TRUE((*r)->Write(0, Bytes(secret)).ok());
      ASSERT_TRUE((*r)->Flush(0, secret.size()).ok());
    }
    auto epoch = alice->RotateKeyToUserKey("own", next);
    ASSERT_TRUE(epoch.ok()) << epoch.status();
    EXPECT_EQ(*epoch, 2u);

    // Refusals: a plain region, a plain connection, a client without admin.
    EXPECT_EQ(alice->CreateRegion("p", 4096, {.user_key = &key}).status().code(),
              StatusCode::kInvalidArgument);
    auto plain = ConnectAs(d, "");
    ASSERT_NE(plain, nullptr);
    EXPECT_EQ(plain->CreateRegion("q", 4096, {.secure = true, .user_key = &key}).status().code(),
              StatusCode::kFailedPrecondition);
    auto bob = ConnectAs(d, "bob");
    ASSERT_NE(bob, nullptr);
    EXPECT_EQ(bob->RotateKeyToUserKey("own", key).status().code(), StatusCode::kPermissionDenied);
  }
  rpm_test::Daemon d;
  ASSERT_TRUE(StartDaemon(d));
  auto alice = ConnectAs(d, "alice");
  ASSERT_NE(alice, nullptr);
  auto r = alice->OpenRegion("own");
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::byte> got(secret.size());
  ASSERT_TRUE((*r)->Read(0, got).ok());
  EXPECT_EQ(got, Bytes(secret));
  auto info = alice->ListAccess("own");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->key_epoch, 2u);
}

// Authorization of every opcode (issue 11): the owner, another allowed
// client with no right, the same client with read only, a plain client, and
// a client not on the node's allow list, against one secure region. Each
// cell is the exact status code the client library returns.
TEST_F(SecAccessTest, EveryOpcodeIsAuthorizedForOwnerOthersPlainAndStrangers) {
  using cosmos::Client;
  using cosmos::Region;
  constexpr StatusCode kOk = StatusCode::kOk, kDenied = StatusCode::kPermissionDenied,
                       kAbsent = StatusCode::kNotFound;
  rpm_test::Daemon d;
  ASSERT_TRUE(StartDaemon(d));
  auto alice = ConnectAs(d, "alice");
  ASSERT_NE(alice, nullptr);
  ASSERT_TRUE(alice->CreateRegion("m", 64 * 1024, {.secure = true}).ok());
  const cosmos::ClientIdentity bob_id = Identity("bob");
  cosmos::UserKey user_key;
  user_key.bytes.fill(9);

  // Region ops need an open region; `r` is null when the open was refused.
  struct RegionOp {
    const char* name;
    std::function<StatusCode(Region&)> run;
  };
  const std::vector<RegionOp> region_ops = {
      {"read",
       [](Region& r) {
         std::vector<std::byte> b(8);
         return r.Read(0, b).code();
       }},
      {"verify",
       [](Region& r) {
         std::vector<std::byte> b(8);
         if (auto s = r.Read(0, b); !s.ok()) return s.code();
         return r.Verify(0, b).code();
       }},
      {"write+drain",
       [](Region& r) {
         auto s = r.Write(128, Bytes("x"));
         if (s.ok()) s = r.Drain();
         return s.code();
       }},
      {"flush", [](Region& r) { return r.Flush(0, 8).code(); }},
      {"write_after_flush", [](Region& r) { return r.WriteAfterFlush(256, 1).code(); }},
      {"compare_and_swap", [](Region& r) { return r.CompareAndSwap(264, 0, 1).status().code(); }},
      {"fetch_add", [](Region& r) { return r.FetchAdd(272, 1).status().code(); }},
  };
  struct AdminOp {
    const char* name;
    std::function<StatusCode(Client&)> run;
  };
  const std::vector<AdminOp> admin_ops = {
      {"list (region visible)",
       [](Client& c) {
         auto l = c.ListRegions();
         if (!l.ok()) return l.status().code();
         for (const auto& i : *l) {
           if (i.name == "m") return StatusCode::kOk;
         }
         return StatusCode::kNotFound;
       }},
      {"grant", [&](Client& c) { return c.GrantAccess("m", Identity("alice"), 7).code(); }},
      {"list_access", [](Client& c) { return c.ListAccess("m").status().code(); }},
      {"rotate_key", [](Client& c) { return c.RotateKey("m").status().code(); }},
      {"rotate_key (user key)",
       [&](Client& c) { return c.RotateKeyToUserKey("m", user_key).status().code(); }},
  };
  struct Row {
    std::string who;  // "" plain
    StatusCode open;
    std::vector<StatusCode> region;  // as region_ops
    std::vector<StatusCode> admin;   // as admin_ops
  };
  // A plain connection cannot hand over a user key (FailedPrecondition in the
  // client); every other refusal comes from the node.
  const std::vector<Row> rows = {
      {"bob", kDenied, {}, {kAbsent, kDenied, kDenied, kDenied, kDenied}},
      {"", kAbsent, {}, {kAbsent, kAbsent, kAbsent, kAbsent, StatusCode::kFailedPrecondition}},
  };
  auto run_row = [&](const Row& row) {
    SCOPED_TRACE("client " + (row.who.empty() ? std::string("plain") : row.who));
    auto c = ConnectAs(d, row.who);
    ASSERT_NE(c, nullptr);
    auto r = c->OpenRegion("m");
    EXPECT_EQ(r.status().code(), row.open);
    if (r.ok()) {
      ASSERT_EQ(row.region.size(), region_ops.size());
      for (size_t i = 0; i < region_ops.size(); ++i) {
        EXPECT_EQ(region_ops[i].run(**r), row.region[i]) << region_ops[i].name;
      }
    }
    ASSERT_EQ(row.admin.size(), admin_ops.size());
    for (size_t i = 0; i < admin_ops.size(); ++i) {
      EXPECT_EQ(admin_ops[i].run(*c), row.admin[i]) << admin_ops[i].name;
    }
    EXPECT_EQ(c->DeleteRegion("m").code(), row.who.empty() ? kAbsent : kDenied) << "delete";
  };
  for (const Row& row : rows) run_row(row);

  // bob with read only: reads and verifies; everything that changes the
  // region or administers it is refused.
  ASSERT_TRUE(alice->GrantAccess("m", bob_id, cosmos::kAccessRead).ok());
  run_row({"bob",
           kOk,
           {kOk, kOk, kDenied, kDenied, kDenied, kDenied, kDenied},
           {kOk, kDenied, kDenied, kDenied, kDenied}});

  // A client off the node's allow list does not get a session at all.
  {
    cosmos::ClientOptions o;
    o.server = d.address();
    o.timeout_ms = 10000;
    o.platform_public_key_file = dir_.path + "/node/platform.pub";
    o.measurement_file = dir_.path + "/node/measurement";
    o.client_key_file = dir_.path + "/clients/mallory.key";
    EXPECT_EQ(cosmos::Client::Connect(o).status().code(), kDenied);
  }

  // The owner may do everything, delete last.
  {
    SCOPED_TRACE("owner");
    auto r = alice->OpenRegion("m");
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& op : region_ops) EXPECT_EQ(op.run(**r), kOk) << op.name;
    r->reset();
    for (const auto& op : admin_ops) {
      // A rotation migrates blocks in the background and refuses the next
      // one until it is done (FailedPrecondition): retry that refusal only.
      StatusCode code = op.run(*alice);
      for (int i = 0; i < 3000 && code == StatusCode::kFailedPrecondition; ++i) {
        usleep(10000);
        code = op.run(*alice);
      }
      EXPECT_EQ(code, kOk) << op.name;
    }
    EXPECT_EQ(alice->DeleteRegion("m").code(), kOk);
  }
}

}  // namespace
