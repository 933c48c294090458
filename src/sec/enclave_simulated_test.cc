// End-to-end tests of the simulated enclave boundary: attestation handshake,
// packet protection through ecalls, region access control, keyed Verify,
// restart with freshness check, and honesty about simulation.
#include "sec/enclave_simulated.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "sec/key_files.h"
#include "sec/user_key.h"

namespace cosmos::sec {
namespace {

// The binding tests use for region `id` (pool "pool-test", name "r<id>").
sec::RegionBinding B(uint64_t id) { return {"pool-test", id, "r" + std::to_string(id)}; }

constexpr uint32_t kBlock = 512;

class EnclaveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("cosmos_enclave_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(GeneratePlatformKeys(dir_ + "/node").ok());
    ASSERT_TRUE(GenerateClientCredentials(dir_ + "/clients", "alice").ok());
    ASSERT_TRUE(GenerateClientCredentials(dir_ + "/clients", "bob").ok());
    ASSERT_TRUE(GenerateClientCredentials(dir_ + "/clients", "mallory").ok());
    alice_ = std::move(*LoadSigningKey(dir_ + "/clients/alice.key", KeyKind::kClientPrivate));
    bob_ = std::move(*LoadSigningKey(dir_ + "/clients/bob.key", KeyKind::kClientPrivate));
    mallory_ = std::move(*LoadSigningKey(dir_ + "/clients/mallory.key", KeyKind::kClientPrivate));
    policy_ = *LoadAttestationPolicy(dir_ + "/node/platform.pub", dir_ + "/node/measurement");
    enclave_ = MakeEnclave(dir_ + "/node/sealing.secret");
    geometry_.size = 32 * kBlock;
    geometry_.block_size = kBlock;
    store_ = std::make_unique<MemoryStore>(*ProtectedRegion::RequiredStoreSize(geometry_));
  }
  void TearDown() override {
    // Regions must close (and background rotations stop) before the stores
    // they use go away.
    enclave_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<SimulatedEnclave> MakeEnclave(const std::string& sealing_path,
                                                bool accept_counter_reset = false,
                                                uint64_t rotation_step_blocks = 4096) {
    SimulatedEnclaveOptions o;
    o.rotation_step_blocks = rotation_step_blocks;
    o.region_policy.accept_counter_reset = accept_counter_reset;
    o.platform_key_path = dir_ + "/node/platform.key";
    o.sealing_secret_path = sealing_path;
    o.state_dir = dir_ + "/state";
    o.counter_now_ns = [this] { return now_.load(); };
    o.counter_sleep_ns = [this](uint64_t ns) { now_ += ns; };
    auto e = SimulatedEnclave::Create(o);
    EXPECT_TRUE(e.ok()) << e.status();
    std::vector<Ed25519PublicKey> allowed{alice_.public_key, bob_.public_key};
    EXPECT_TRUE((*e)->SetClientAllowList(allowed).ok());
    return std::move(*e);
  }

  struct Connected {
    SessionHandle handle = 0;
    std::unique_ptr<SecureChannel> channel;
  };
  Result<Connected> Connect(SimulatedEnclave* e, const Ed25519KeyPair& who) {
    COSMOS_ASSIGN_OR_RETURN(auto hs, ClientHandshake::Start(who, policy_));
    COSMOS_ASSIGN_OR_RETURN(AcceptedSession acc, e->AcceptClientHello(hs->hello()));
    Connected c;
    c.handle = acc.session;
    COSMOS_ASSIGN_OR_RETURN(c.channel, hs->Finish(acc.server_hello));
    return c;
  }

  std::string dir_;
  std::atomic<uint64_t> now_{1};  // the background rotator reads and advances it too
  Ed25519KeyPair alice_, bob_, mallory_;
  AttestationPolicy policy_;
  std::unique_ptr<SimulatedEnclave> enclave_;
  RegionGeometry geometry_;
  std::unique_ptr<MemoryStore> store_;
};

TEST_F(EnclaveTest, SaysItIsSimulatedAndKeepsSecretsOutOfDumps) {
  EXPECT_TRUE(enclave_->IsSimulated());
  EXPECT_NE(enclave_->Description().find("SIMULATED"), std::string::npos);
  EXPECT_NE(enclave_->Description().find("no hardware isolation"), std::string::npos);
  EXPECT_TRUE(enclave_->secrets_dont_dump());
  EXPECT_EQ(enclave_->Measurement(), SimulatedMeasurement(kSimulatedEnclaveIdentity));
  EXPECT_EQ(enclave_->PlatformPublicKey(), policy_.platform_public_key);
}

TEST_F(EnclaveTest, HandshakeAndPacketProtectionThroughEcalls) {
  auto c = Connect(enclave_.get(), alice_);
  ASSERT_TRUE(c.ok()) << c.status();
  Bytes payload = {'r', 'e', 'q'}, tag(16), header(40, 1);
  ASSERT_TRUE(c->channel->Seal(0, header, payload, tag).ok());
  ASSERT_TRUE(enclave_->OpenPacket(c->handle, 0, header, payload, tag).ok());
  EXPECT_EQ(payload, Bytes({'r', 'e', 'q'}));
  EXPECT_EQ(enclave_->OpenPacket(c->handle, 0, header, payload, tag).code(),
            StatusCode::kIntegrityViolation);  // replay
  Bytes resp = {'o', 'k'};
  ASSERT_TRUE(enclave_->SealPacket(c->handle, 0, header, resp, tag).ok());
  ASSERT_TRUE(c->channel->Open(0, header, resp, tag).ok());
  EXPECT_EQ(resp, Bytes({'o', 'k'}));
  ASSERT_TRUE(enclave_->CloseSession(c->handle).ok());
  EXPECT_EQ(enclave_->SealPacket(c->handle, 1, header, resp, tag).code(), StatusCode::kNotFound);
}

TEST_F(EnclaveTest, UnlistedClientCannotConnect) {
  EXPECT_EQ(Connect(enclave_.get(), mallory_).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(EnclaveTest, RegionRightsAreEnforcedPerClient) {
  auto alice = Connect(enclave_.get(), alice_);
  auto bob = Connect(enclave_.get(), bob_);
  ASSERT_TRUE(alice.ok() && bob.ok());
  auto region = enclave_->CreateRegion(alice->handle, B(5), geometry_, store_.get());
  ASSERT_TRUE(region.ok()) << region.status();
  const std::string secret = "alice's persistent secret";
  ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 10, AsBytes(secret)).ok());
  ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
  Bytes got(secret.size());
  EXPECT_EQ(enclave_->RegionRead(bob->handle, *region, 10, got).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(enclave_->RegionWrite(bob->handle, *region, 0, got).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(enclave_->RegionRotateKey(bob->handle, *region).code(), StatusCode::kPermissionDenied);
  AccessList acl;
  ASSERT_TRUE(acl.Grant(alice_.public_key, kRightRead | kRightWrite | kRightAdmin).ok());
  ASSERT_TRUE(acl.Grant(bob_.public_key, kRightRead).ok());
  EXPECT_EQ(enclave_->RegionSetAccess(bob->handle, *region, acl.Serialize()).code(),
            StatusCode::kPermissionDenied);
  ASSERT_TRUE(enclave_->RegionSetAccess(alice->handle, *region, acl.Serialize()).ok());
  ASSERT_TRUE(enclave_->RegionRead(bob->handle, *region, 10, got).ok());
  EXPECT_EQ(std::string(got.begin(), got.end()), secret);
  EXPECT_EQ(enclave_->RegionWrite(bob->handle, *region, 0, got).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(enclave_->RegionRead(999, *region, 10, got).code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(enclave_->RegionRotateKey(alice->handle, *region).ok());
  ASSERT_TRUE(enclave_->RegionRead(bob->handle, *region, 10, got).ok());
  EXPECT_EQ(std::string(got.begin(), got.end()), secret);
}

TEST_F(EnclaveTest, GrantAndRevokeChangeRightsAndOnlyAnAdminMayChangeThem) {
  auto alice = Connect(enclave_.get(), alice_);
  auto bob = Connect(enclave_.get(), bob_);
  ASSERT_TRUE(alice.ok() && bob.ok());
  auto region = enclave_->CreateRegion(alice->handle, B(8), geometry_, store_.get());
  ASSERT_TRUE(region.ok()) << region.status();
  ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 0, Bytes(16, 7)).ok());
  ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
  Bytes got(16);
  EXPECT_EQ(enclave_->RegionRead(bob->handle, *region, 0, got).code(),
            StatusCode::kPermissionDenied);

  ASSERT_TRUE(enclave_->RegionGrant(alice->handle, *region, bob_.public_key, kRightRead).ok());
  ASSERT_TRUE(enclave_->RegionRead(bob->handle, *region, 0, got).ok());
  EXPECT_EQ(got, Bytes(16, 7));
  EXPECT_EQ(enclave_->RegionWrite(bob->handle, *region, 0, got).code(),
            StatusCode::kPermissionDenied);
  // Neither a reader nor a writer may change the list, read it or rotate.
  ASSERT_TRUE(
      enclave_->RegionGrant(alice->handle, *region, bob_.public_key, kRightRead | kRightWrite)
          .ok());
  ASSERT_TRUE(enclave_->RegionWrite(bob->handle, *region, 0, Bytes(16, 8)).ok());
  EXPECT_EQ(enclave_->RegionGrant(bob->handle, *region, bob_.public_key, 7).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(enclave_->RegionListAccess(bob->handle, *region).status().code(),
            StatusCode::kPermissionDenied);

  auto info = enclave_->RegionListAccess(alice->handle, *region);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->entries.size(), 2u);
  for (const auto& e : info->entries) {
    if (e.fingerprint == FingerprintOf(alice_.public_key)) {
      EXPECT_EQ(e.rights, kRightRead | kRightWrite | kRightAdmin);
    } else {
      EXPECT_EQ(e.fingerprint, FingerprintOf(bob_.public_key));
      EXPECT_EQ(e.rights, kRightRead | kRightWrite);
    }
  }

  // Revoke: 0 rights removes the entry.
  ASSERT_TRUE(enclave_->RegionGrant(alice->handle, *region, bob_.public_key, 0).ok());
  EXPECT_EQ(enclave_->RegionRead(bob->handle, *region, 0, got).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(enclave_->RegionListAccess(alice->handle, *region)->entries.size(), 1u);
  EXPECT_EQ(enclave_->RegionGrant(alice->handle, *region, bob_.public_key, 8).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(EnclaveTest, TheLastAdminCannotBeRemovedButAdminCanBeHandedOver) {
  auto alice = Connect(enclave_.get(), alice_);
  auto bob = Connect(enclave_.get(), bob_);
  ASSERT_TRUE(alice.ok() && bob.ok());
  auto region = enclave_->CreateRegion(alice->handle, B(9), geometry_, store_.get());
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(enclave_->RegionGrant(alice->handle, *region, alice_.public_key, kRightRead).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(enclave_->RegionGrant(alice->handle, *region, alice_.public_key, 0).code(),
            StatusCode::kFailedPrecondition);
  AccessList no_admin;
  ASSERT_TRUE(no_admin.Grant(alice_.public_key, kRightRead).ok());
  EXPECT_EQ(enclave_->RegionSetAccess(alice->handle, *region, no_admin.Serialize()).code(),
            StatusCode::kFailedPrecondition);
  // Still admin after the refusals.
  ASSERT_TRUE(enclave_->RegionCheckAccess(alice->handle, *region, kRightAdmin).ok());
  // Hand over: bob becomes admin, then alice may leave.
  ASSERT_TRUE(enclave_->RegionGrant(alice->handle, *region, bob_.public_key, kRightAdmin).ok());
  ASSERT_TRUE(enclave_->RegionGrant(alice->handle, *region, alice_.public_key, 0).ok());
  EXPECT_EQ(enclave_->RegionCheckAccess(alice->handle, *region, 0).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(enclave_->RegionGrant(alice->handle, *region, alice_.public_key, 7).code(),
            StatusCode::kPermissionDenied);
  ASSERT_TRUE(enclave_->RegionGrant(bob->handle, *region, alice_.public_key, kRightRead).ok());
}

TEST_F(EnclaveTest, GrantsAndKeyRotationSurviveARestart) {
  uint32_t epoch = 0;
  {
    auto alice = Connect(enclave_.get(), alice_);
    auto region = enclave_->CreateRegion(alice->handle, B(10), geometry_, store_.get());
    ASSERT_TRUE(region.ok());
    ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 100, Bytes(600, 0x42)).ok());
    ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
    ASSERT_TRUE(enclave_->RegionGrant(alice->handle, *region, bob_.public_key, kRightRead).ok());
    auto before = enclave_->RegionListAccess(alice->handle, *region);
    ASSERT_TRUE(before.ok());
    ASSERT_TRUE(enclave_->RegionRotateKey(alice->handle, *region).ok());
    auto after = enclave_->RegionListAccess(alice->handle, *region);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->key_epoch, before->key_epoch + 1);
    epoch = after->key_epoch;
    ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  }
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret");  // "restart"
  auto alice = Connect(enclave_.get(), alice_);
  auto bob = Connect(enclave_.get(), bob_);
  auto region = enclave_->OpenRegion(B(10), store_.get());
  ASSERT_TRUE(region.ok()) << region.status();
  Bytes got(600);
  ASSERT_TRUE(enclave_->RegionRead(bob->handle, *region, 100, got).ok());
  EXPECT_EQ(got, Bytes(600, 0x42));
  EXPECT_EQ(enclave_->RegionWrite(bob->handle, *region, 0, got).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(enclave_->RegionListAccess(alice->handle, *region)->key_epoch, epoch);
}

TEST_F(EnclaveTest, AtomicsNeedTheWriteRightAndAreDurableOnReturn) {
  {
    auto alice = Connect(enclave_.get(), alice_);
    auto bob = Connect(enclave_.get(), bob_);
    auto region = enclave_->CreateRegion(alice->handle, B(11), geometry_, store_.get());
    ASSERT_TRUE(region.ok());
    ASSERT_TRUE(enclave_->RegionGrant(alice->handle, *region, bob_.public_key, kRightRead).ok());
    EXPECT_EQ(enclave_->RegionFetchAdd(alice->handle, *region, 520, 5, 0).value_or(99), 0u);
    EXPECT_EQ(enclave_->RegionFetchAdd(alice->handle, *region, 520, 3, 0).value_or(99), 5u);
    // Failed comparison: returns the word, changes nothing.
    EXPECT_EQ(enclave_->RegionCompareAndSwap(alice->handle, *region, 520, 1, 100, 0).value_or(99),
              8u);
    EXPECT_EQ(enclave_->RegionCompareAndSwap(alice->handle, *region, 520, 8, 100, 0).value_or(99),
              8u);
    EXPECT_EQ(enclave_->RegionFetchAdd(bob->handle, *region, 520, 1, 0).status().code(),
              StatusCode::kPermissionDenied);
    EXPECT_EQ(enclave_->RegionCompareAndSwap(bob->handle, *region, 520, 100, 1, 0).status().code(),
              StatusCode::kPermissionDenied);
    EXPECT_EQ(enclave_->RegionFetchAdd(alice->handle, *region, 4, 1, 0).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(
        enclave_->RegionFetchAdd(alice->handle, *region, geometry_.size, 1, 0).status().code(),
        StatusCode::kOutOfRange);
    // Little-endian word, as the plain path stores it.
    Bytes word(8);
    ASSERT_TRUE(enclave_->RegionRead(alice->handle, *region, 520, word).ok());
    EXPECT_EQ(word, Bytes({100, 0, 0, 0, 0, 0, 0, 0}));
    // No Flush: the atomic itself made the word durable.
    ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  }
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret");
  auto alice = Connect(enclave_.get(), alice_);
  auto region = enclave_->OpenRegion(B(11), store_.get());
  ASSERT_TRUE(region.ok()) << region.status();
  EXPECT_EQ(enclave_->RegionFetchAdd(alice->handle, *region, 520, 0, 0).value_or(99), 100u);
}

TEST_F(EnclaveTest, AnAtomicDeferredForTheCounterIsAppliedOnceWhenRepeated) {
  auto alice = Connect(enclave_.get(), alice_);
  ASSERT_TRUE(alice.ok());
  auto region = enclave_->CreateRegion(alice->handle, B(12), geometry_, store_.get());
  ASSERT_TRUE(region.ok());
  const uint64_t committed = enclave_->CounterForTesting(B(12))->Current();
  {
    constexpr CounterWait kNoWait = CounterWait::kNoWait;
    // Applied and committed, but its counter value is not stable yet (the
    // fake clock only moves in the counter's sleep).
    auto first = enclave_->RegionFetchAdd(alice->handle, *region, 0, 10, /*attempt=*/7, kNoWait);
    ASSERT_EQ(first.status().code(), StatusCode::kWouldBlock) << first.status();
    EXPECT_GT(enclave_->CounterForTesting(B(12))->Current(), committed);
    auto again = enclave_->RegionFetchAdd(alice->handle, *region, 0, 10, 7, kNoWait);
    EXPECT_EQ(again.status().code(), StatusCode::kWouldBlock) << again.status();
    // Without an attempt id a deferrable call is refused outright.
    EXPECT_EQ(enclave_->RegionFetchAdd(alice->handle, *region, 0, 10, 0, kNoWait).status().code(),
              StatusCode::kInvalidArgument);
    auto cas = enclave_->RegionCompareAndSwap(alice->handle, *region, 8, 0, 55, 8, kNoWait);
    ASSERT_EQ(cas.status().code(), StatusCode::kWouldBlock) << cas.status();
  }
  // The repeats finish the calls: the first application's results, no
  // second application (a re-applied CAS would see 55 and report failure).
  auto finished = enclave_->RegionFetchAdd(alice->handle, *region, 0, 10, 7);
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(*finished, 0u);
  auto cas = enclave_->RegionCompareAndSwap(alice->handle, *region, 8, 0, 55, 8);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_EQ(*cas, 0u);
  Bytes words(16);
  ASSERT_TRUE(enclave_->RegionRead(alice->handle, *region, 0, words).ok());
  EXPECT_EQ(words, Bytes({10, 0, 0, 0, 0, 0, 0, 0, 55, 0, 0, 0, 0, 0, 0, 0}));
  // A finished attempt id is forgotten: using it again is a new atomic.
  EXPECT_EQ(enclave_->RegionFetchAdd(alice->handle, *region, 0, 10, 7).value_or(99), 10u);
  // A repeat with other arguments is refused, not applied.
  {
    NoCounterWaitScope no_wait;
    ASSERT_TRUE(
        IsCounterWaitNeeded(enclave_->RegionFetchAdd(alice->handle, *region, 0, 1, 9).status()));
  }
  EXPECT_EQ(enclave_->RegionFetchAdd(alice->handle, *region, 0, 2, 9).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(enclave_->RegionFetchAdd(alice->handle, *region, 0, 0, 0).value_or(99), 21u);
}

TEST_F(EnclaveTest, VerifyDigestMatchesWhatTheClientComputesWithItsSessionKey) {
  auto alice = Connect(enclave_.get(), alice_);
  ASSERT_TRUE(alice.ok());
  auto region = enclave_->CreateRegion(alice->handle, B(6), geometry_, store_.get());
  ASSERT_TRUE(region.ok());
  Bytes data(1500, 0x5a);
  ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 100, data).ok());
  ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
  ByteRange range{100, 1500};
  auto digest = enclave_->RegionVerify(alice->handle, *region, {&range, 1});
  ASSERT_TRUE(digest.ok());
  HmacSha256Hasher h(alice->channel->verify_key());
  uint8_t hdr[16];
  StoreLE<uint64_t>(hdr, 100);
  StoreLE<uint64_t>(hdr + 8, 1500);
  h.Update(ByteSpan(hdr, 16));
  h.Update(data);
  EXPECT_EQ(*digest, h.Final());
}

TEST_F(EnclaveTest, RestartReopensRegionAndRefusesARolledBackStore) {
  Bytes snapshot;
  {
    auto alice = Connect(enclave_.get(), alice_);
    auto region = enclave_->CreateRegion(alice->handle, B(7), geometry_, store_.get());
    ASSERT_TRUE(region.ok());
    ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 0, Bytes(100, 1)).ok());
    ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
    snapshot = store_->Snapshot();
    ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 0, Bytes(100, 2)).ok());
    ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
    ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  }
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret");  // "restart"
  auto alice = Connect(enclave_.get(), alice_);
  auto region = enclave_->OpenRegion(B(7), store_.get());
  ASSERT_TRUE(region.ok()) << region.status();
  Bytes got(100);
  ASSERT_TRUE(enclave_->RegionRead(alice->handle, *region, 0, got).ok());
  EXPECT_EQ(got, Bytes(100, 2));
  ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  store_->Restore(snapshot);
  EXPECT_EQ(enclave_->OpenRegion(B(7), store_.get()).status().code(),
            StatusCode::kIntegrityViolation);
}

TEST_F(EnclaveTest, MissingCounterFileOfAnExistingRegionIsRefusedUnlessOverridden) {
  {
    auto alice = Connect(enclave_.get(), alice_);
    auto region = enclave_->CreateRegion(alice->handle, B(7), geometry_, store_.get());
    ASSERT_TRUE(region.ok());
    ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 0, Bytes(100, 3)).ok());
    ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
    ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  }
  // The host deletes the enclave state: a fresh counter at 0 would accept
  // any older copy of the region.
  ASSERT_TRUE(std::filesystem::remove(enclave_->CounterPath(B(7))));
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret");
  auto refused = enclave_->OpenRegion(B(7), store_.get());
  ASSERT_EQ(refused.status().code(), StatusCode::kIntegrityViolation);
  EXPECT_NE(refused.status().message().find("missing"), std::string::npos) << refused.status();
  EXPECT_NE(refused.status().message().find("--accept-counter-reset"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(enclave_->CounterPath(B(7))));  // refusing creates nothing

  // The operator override re-anchors the counter at the sealed record.
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret", /*accept_counter_reset=*/true);
  auto alice = Connect(enclave_.get(), alice_);
  auto region = enclave_->OpenRegion(B(7), store_.get());
  ASSERT_TRUE(region.ok()) << region.status();
  Bytes got(100);
  ASSERT_TRUE(enclave_->RegionRead(alice->handle, *region, 0, got).ok());
  EXPECT_EQ(got, Bytes(100, 3));
  ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  // From then on the counter file exists again and protects the region.
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret");
  EXPECT_TRUE(enclave_->OpenRegion(B(7), store_.get()).ok());
}

TEST_F(EnclaveTest, AnotherPlatformCannotOpenTheRegionOrUnsealBlobs) {
  auto alice = Connect(enclave_.get(), alice_);
  auto region = enclave_->CreateRegion(alice->handle, B(8), geometry_, store_.get());
  ASSERT_TRUE(region.ok());
  ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  auto blob = enclave_->Seal("config", AsBytes("node secret"));
  ASSERT_TRUE(blob.ok());
  auto back = enclave_->Unseal("config", *blob);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::string(back->begin(), back->end()), "node secret");
  EXPECT_EQ(enclave_->Unseal("other", *blob).status().code(), StatusCode::kIntegrityViolation);

  ASSERT_TRUE(WriteKeyFile(dir_ + "/other.secret", KeyKind::kSealingSecret, Bytes(32, 9)).ok());
  auto other = MakeEnclave(dir_ + "/other.secret");
  EXPECT_EQ(other->OpenRegion(B(8), store_.get()).status().code(), StatusCode::kIntegrityViolation);
  EXPECT_EQ(other->Unseal("config", *blob).status().code(), StatusCode::kIntegrityViolation);
}

TEST_F(EnclaveTest, MissingKeyFilesAreReported) {
  SimulatedEnclaveOptions o;
  o.platform_key_path = dir_ + "/missing.key";
  o.sealing_secret_path = dir_ + "/node/sealing.secret";
  o.state_dir = dir_ + "/state";
  EXPECT_EQ(SimulatedEnclave::Create(o).status().code(), StatusCode::kNotFound);
}

TEST_F(EnclaveTest, KeyRotationReencryptsInTheBackgroundWhileTheRegionServes) {
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret", false, /*rotation_step_blocks=*/4);
  auto alice = Connect(enclave_.get(), alice_);
  auto region = enclave_->CreateRegion(alice->handle, B(12), geometry_, store_.get());
  ASSERT_TRUE(region.ok());
  const Bytes data(geometry_.size, 0x5a);
  ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 0, data).ok());
  ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
  const uint64_t steps_before = enclave_->WaitForRotations();
  ASSERT_TRUE(enclave_->RegionRotateKey(alice->handle, *region).ok());
  // The new key is in place at once; I/O goes on while blocks migrate.
  EXPECT_EQ(enclave_->RegionListAccess(alice->handle, *region)->key_epoch, 2u);
  ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 0, Bytes(10, 1)).ok());
  Bytes got(geometry_.size);
  ASSERT_TRUE(enclave_->RegionRead(alice->handle, *region, 0, got).ok());
  // 32 blocks, 4 scanned per step: several background steps ran.
  EXPECT_GE(enclave_->WaitForRotations() - steps_before, 8u);
  ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
  Bytes expected = data;
  std::fill(expected.begin(), expected.begin() + 10, 1);
  ASSERT_TRUE(enclave_->RegionRead(alice->handle, *region, 0, got).ok());
  EXPECT_EQ(got, expected);
  // A second rotation right away: closing the region waits for a running
  // step; a reopen resumes what is left, and the data stays intact.
  ASSERT_TRUE(enclave_->RegionRotateKey(alice->handle, *region).ok());
  ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret", false, 4);
  auto reopened = enclave_->OpenRegion(B(12), store_.get());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  enclave_->WaitForRotations();
  alice = Connect(enclave_.get(), alice_);
  EXPECT_EQ(enclave_->RegionListAccess(alice->handle, *reopened)->key_epoch, 3u);
  ASSERT_TRUE(enclave_->RegionRead(alice->handle, *reopened, 0, got).ok());
  EXPECT_EQ(got, expected);
  // A third rotation finds no unfinished one (else FailedPrecondition).
  EXPECT_TRUE(enclave_->RegionRotateKey(alice->handle, *reopened).ok());
  enclave_->WaitForRotations();
}

// The longest run of equal, nonzero bytes at the same offsets of two stores.
size_t LongestSharedNonzeroRun(const Bytes& a, const Bytes& b) {
  size_t best = 0, run = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    run = (a[i] == b[i] && a[i] != 0) ? run + 1 : 0;
    best = std::max(best, run);
  }
  return best;
}

TEST_F(EnclaveTest, AUserKeyCreatesTheRegionAndItsReceiptProvesTheEnclaveUsedIt) {
  const Bytes material(kUserKeySize, 0x5a);
  {
    auto alice = Connect(enclave_.get(), alice_);
    ASSERT_TRUE(alice.ok());
    auto wrapped =
        WrapUserKey(alice->channel->key_wrap_key(), UserKeyUse::kCreateRegion, "r3", material);
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    UserKeyRequest request{*wrapped};
    auto region = enclave_->CreateRegion(alice->handle, B(3), geometry_, store_.get(), &request);
    ASSERT_TRUE(region.ok()) << region.status();
    EXPECT_EQ(request.key_epoch, 1u);
    EXPECT_EQ(request.receipt, UserKeyReceipt(alice->channel->key_wrap_key(),
                                              UserKeyUse::kCreateRegion, "r3", 1, material));
    ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 0, Bytes(700, 9)).ok());
    ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());

    // Rotating to another user key: a receipt naming epoch 2, data intact.
    const Bytes next(kUserKeySize, 0x3c);
    auto rewrapped =
        WrapUserKey(alice->channel->key_wrap_key(), UserKeyUse::kRotateKey, "r3", next);
    ASSERT_TRUE(rewrapped.ok());
    UserKeyRequest rotate{*rewrapped};
    ASSERT_TRUE(enclave_->RegionRotateKey(alice->handle, *region, &rotate).ok());
    EXPECT_EQ(rotate.key_epoch, 2u);
    EXPECT_EQ(rotate.receipt, UserKeyReceipt(alice->channel->key_wrap_key(), UserKeyUse::kRotateKey,
                                             "r3", 2, next));
    enclave_->WaitForRotations();
    ASSERT_TRUE(enclave_->CloseRegion(*region).ok());
  }
  enclave_ = MakeEnclave(dir_ + "/node/sealing.secret");  // "restart"
  auto alice = Connect(enclave_.get(), alice_);
  auto region = enclave_->OpenRegion(B(3), store_.get());
  ASSERT_TRUE(region.ok()) << region.status();
  Bytes got(700);
  ASSERT_TRUE(enclave_->RegionRead(alice->handle, *region, 0, got).ok());
  EXPECT_EQ(got, Bytes(700, 9));
}

TEST_F(EnclaveTest, AUserKeyWrappedForAnotherSessionRegionOrUseIsRefused) {
  auto alice = Connect(enclave_.get(), alice_);
  auto bob = Connect(enclave_.get(), bob_);
  ASSERT_TRUE(alice.ok() && bob.ok());
  const Bytes material(kUserKeySize, 0x11);
  struct Case {
    const char* what;
    ByteSpan wrap_key;
    UserKeyUse use;
    std::string name;
  };
  const Case cases[] = {
      {"bob's session", bob->channel->key_wrap_key(), UserKeyUse::kCreateRegion, "r4"},
      {"another region", alice->channel->key_wrap_key(), UserKeyUse::kCreateRegion, "r5"},
      {"another use", alice->channel->key_wrap_key(), UserKeyUse::kRotateKey, "r4"},
  };
  for (const Case& c : cases) {
    auto wrapped = WrapUserKey(c.wrap_key, c.use, c.name, material);
    ASSERT_TRUE(wrapped.ok());
    UserKeyRequest request{*wrapped};
    EXPECT_EQ(enclave_->CreateRegion(alice->handle, B(4), geometry_, store_.get(), &request)
                  .status()
                  .code(),
              StatusCode::kIntegrityViolation)
        << c.what;
  }
  // A modified or truncated blob.
  auto wrapped =
      WrapUserKey(alice->channel->key_wrap_key(), UserKeyUse::kCreateRegion, "r4", material);
  ASSERT_TRUE(wrapped.ok());
  Bytes flipped = *wrapped;
  flipped[20] ^= 1;
  UserKeyRequest modified{flipped};
  EXPECT_EQ(enclave_->CreateRegion(alice->handle, B(4), geometry_, store_.get(), &modified)
                .status()
                .code(),
            StatusCode::kIntegrityViolation);
  UserKeyRequest truncated{ByteSpan(wrapped->data(), wrapped->size() - 1)};
  EXPECT_EQ(enclave_->CreateRegion(alice->handle, B(4), geometry_, store_.get(), &truncated)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  // The genuine one works after all those refusals (they left nothing behind).
  UserKeyRequest good{*wrapped};
  EXPECT_TRUE(enclave_->CreateRegion(alice->handle, B(4), geometry_, store_.get(), &good).ok());
}

// The same user key for two regions must not give them the same block key:
// their first blocks share (incarnation, version, index), hence the nonce.
TEST_F(EnclaveTest, TheSameUserKeyGivesEveryRegionItsOwnKey) {
  auto alice = Connect(enclave_.get(), alice_);
  ASSERT_TRUE(alice.ok());
  const Bytes material(kUserKeySize, 0x77);
  MemoryStore other(store_->Size());
  const Bytes plain(kBlock, 0x42);
  for (uint64_t id : {8, 9}) {
    MemoryStore* store = id == 8 ? store_.get() : &other;
    auto wrapped = WrapUserKey(alice->channel->key_wrap_key(), UserKeyUse::kCreateRegion,
                               B(id).name, material);
    ASSERT_TRUE(wrapped.ok());
    UserKeyRequest request{*wrapped};
    auto region = enclave_->CreateRegion(alice->handle, B(id), geometry_, store, &request);
    ASSERT_TRUE(region.ok()) << region.status();
    ASSERT_TRUE(enclave_->RegionWrite(alice->handle, *region, 0, plain).ok());
    ASSERT_TRUE(enclave_->RegionFlush(alice->handle, *region).ok());
  }
  // Equal keys would store byte-identical ciphertext of the 512-byte block.
  EXPECT_LT(LongestSharedNonzeroRun(store_->bytes(), other.bytes()), 32u);
}

}  // namespace
}  // namespace cosmos::sec
