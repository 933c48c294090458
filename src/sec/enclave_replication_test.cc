// Replicated secure regions in the enclave: two nodes' enclaves open an
// attested peer channel, the primary's enclave runs a client's sealed batch
// and seals its effects for the backup's enclave, which applies them to its
// own copy (its own region key). Forged, replayed, misrouted and
// epoch-stripped messages are refused.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>

#include "common/endian.h"
#include "protocol/rpm_protocol.h"
#include "protocol/sealed_batch.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"

namespace cosmos::sec {
namespace {

constexpr uint32_t kBlock = 512;

std::span<const std::byte> Std(const Bytes& b) {
  return {reinterpret_cast<const std::byte*>(b.data()), b.size()};
}

class EnclaveReplicationTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<SimulatedEnclave> enclave;
    std::unique_ptr<MemoryStore> store;
    std::unique_ptr<MemoryStore> other_store;
    SessionHandle session = 0;
    std::unique_ptr<SecureChannel> channel;
    std::unique_ptr<SecureChannel> batch;  // the client's end of the batch channel
    RegionHandle region = 0;
    RegionHandle other_region = 0;
    uint64_t seq = 0;
  };

  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("cosmos_enclave_repl_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    for (const char* n : {"a", "b", "x"}) ASSERT_TRUE(GeneratePlatformKeys(dir_ + "/" + n).ok());
    ASSERT_TRUE(GenerateClientCredentials(dir_ + "/clients", "alice").ok());
    alice_ = std::move(*LoadSigningKey(dir_ + "/clients/alice.key", KeyKind::kClientPrivate));
    geometry_.size = 16 * kBlock;
    geometry_.block_size = kBlock;
    for (const char* n : {"a", "b", "x"}) {
      keys_[n] = *LoadPublicKey(dir_ + "/" + n + "/platform.pub", KeyKind::kPlatformPublic);
    }
    Make(&a_, "a");
    Make(&b_, "b");
    Make(&x_, "x");
    // a and b trust each other; x is a platform nobody lists.
    std::vector<Ed25519PublicKey> cluster{keys_["a"], keys_["b"]};
    ASSERT_TRUE(a_.enclave->SetPeerPlatformKeys(cluster).ok());
    ASSERT_TRUE(b_.enclave->SetPeerPlatformKeys(cluster).ok());
    std::vector<Ed25519PublicKey> all{keys_["a"], keys_["b"], keys_["x"]};
    ASSERT_TRUE(x_.enclave->SetPeerPlatformKeys(all).ok());
  }
  void TearDown() override {
    for (Node* n : {&a_, &b_, &x_}) n->enclave.reset();
    std::filesystem::remove_all(dir_);
  }

  void Make(Node* node, const std::string& name) {
    SimulatedEnclaveOptions o;
    o.platform_key_path = dir_ + "/" + name + "/platform.key";
    o.sealing_secret_path = dir_ + "/" + name + "/sealing.secret";
    o.state_dir = dir_ + "/" + name + "/state";
    o.counter_now_ns = [this] { return now_.load(); };
    o.counter_sleep_ns = [this](uint64_t ns) { now_ += ns; };
    auto e = SimulatedEnclave::Create(o);
    ASSERT_TRUE(e.ok()) << e.status();
    node->enclave = std::move(*e);
    std::vector<Ed25519PublicKey> allowed{alice_.public_key};
    ASSERT_TRUE(node->enclave->SetClientAllowList(allowed).ok());
    AttestationPolicy p = *LoadAttestationPolicy(dir_ + "/" + name + "/platform.pub",
                                                 dir_ + "/" + name + "/measurement");
    auto hs = ClientHandshake::Start(alice_, p);
    ASSERT_TRUE(hs.ok());
    auto acc = node->enclave->AcceptClientHello((*hs)->hello());
    ASSERT_TRUE(acc.ok()) << acc.status();
    node->session = acc->session;
    auto ch = (*hs)->Finish(acc->server_hello);
    ASSERT_TRUE(ch.ok()) << ch.status();
    node->channel = std::move(*ch);
    node->batch = std::move(*node->channel->NewBatchChannel({}));
    // The same region name on every node, each in its own pool.
    node->store = std::make_unique<MemoryStore>(*ProtectedRegion::RequiredStoreSize(geometry_));
    auto r = node->enclave->CreateRegion(node->session, {"pool-" + name, 1, "shared"}, geometry_,
                                         node->store.get());
    ASSERT_TRUE(r.ok()) << r.status();
    node->region = *r;
    node->other_store =
        std::make_unique<MemoryStore>(*ProtectedRegion::RequiredStoreSize(geometry_));
    auto o2 = node->enclave->CreateRegion(node->session, {"pool-" + name, 2, "other"}, geometry_,
                                          node->other_store.get());
    ASSERT_TRUE(o2.ok()) << o2.status();
    node->other_region = *o2;
  }

  // Opens a peer channel from `from` to `to`; returns its id.
  Result<PeerChannelId> Link(Node& from, Node& to) {
    COSMOS_ASSIGN_OR_RETURN(PeerConnectStart start, from.enclave->PeerConnect());
    COSMOS_ASSIGN_OR_RETURN(AcceptedPeerChannel acc, to.enclave->PeerAccept(start.hello));
    return from.enclave->PeerFinish(start.attempt, acc.reply);
  }

  // The client's sealed message for `batch` on node's region "shared".
  Bytes Seal(Node& n, const protocol::RequestBuilder& batch, uint64_t epoch) {
    protocol::SealedRequestHeader h;
    h.handle = n.region;
    h.seq = ++n.seq;
    h.name = "shared";
    if (epoch != 0) {
      h.flags = protocol::kSealedFlagEpoch;
      h.epoch = epoch;
    }
    std::vector<std::byte> header = protocol::EncodeSealedRequestHeader(h);
    Bytes m(header.size() + batch.size() + 16);
    std::memcpy(m.data(), header.data(), header.size());
    std::memcpy(m.data() + header.size(), batch.bytes().data(), batch.size());
    EXPECT_TRUE(n.batch
                    ->Seal(h.seq, ByteSpan(m.data(), header.size()),
                           MutableByteSpan(m.data() + header.size(), batch.size()),
                           MutableByteSpan(m.data() + m.size() - 16, 16))
                    .ok());
    return m;
  }

  // Opens a sealed response and returns its results.
  std::vector<protocol::OpResult> Open(Node& n, Bytes& sealed) {
    auto v = protocol::ParseSealedResponse(Std(sealed));
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return {};
    auto* body = reinterpret_cast<uint8_t*>(const_cast<std::byte*>(v->body.data()));
    EXPECT_TRUE(n.batch
                    ->Open(v->header.response_seq,
                           ByteSpan(reinterpret_cast<const uint8_t*>(v->associated_data.data()),
                                    v->associated_data.size()),
                           MutableByteSpan(body, v->body.size()),
                           ByteSpan(reinterpret_cast<const uint8_t*>(v->tag.data()), 16))
                    .ok());
    std::vector<protocol::OpResult> results;
    EXPECT_TRUE(protocol::ParseResponse(v->body, &results).ok());
    return results;
  }

  Bytes ReadAll(Node& n) {
    Bytes out(geometry_.size);
    EXPECT_TRUE(n.enclave->RegionRead(n.session, n.region, 0, out).ok());
    return out;
  }

  std::string dir_;
  std::atomic<uint64_t> now_{1};
  Ed25519KeyPair alice_;
  std::map<std::string, Ed25519PublicKey> keys_;
  RegionGeometry geometry_;
  Node a_, b_, x_;
};

protocol::RequestBuilder WritesAndAnAtomic(uint64_t h) {
  protocol::RequestBuilder batch;
  std::vector<std::byte> data(700);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + 1);
  batch.Write(h, 100, data);
  batch.FetchAdd(h, 2048, 41);
  batch.CompareAndSwap(h, 2056, 0, 99);
  batch.WriteAfterFlush(h, 4096, 0x1122334455667788ull);
  protocol::Range all{0, 16 * kBlock};
  batch.Flush(h, std::span(&all, 1));
  return batch;
}

TEST_F(EnclaveReplicationTest, TheBackupAppliesWhatThePrimaryRanAndHoldsTheSameBytes) {
  auto link = Link(a_, b_);
  ASSERT_TRUE(link.ok()) << link.status();
  Bytes msg = Seal(a_, WritesAndAnAtomic(a_.region), /*epoch=*/3);
  std::vector<PeerChannelId> backups{*link};
  auto run = a_.enclave->ExecuteReplicatedSealedBatch(a_.session, a_.region, msg, 3, backups);
  ASSERT_TRUE(run.ok()) << run.status();
  auto results = Open(a_, run->response);
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) EXPECT_EQ(r.code, StatusCode::kOk);
  ASSERT_EQ(run->replica_messages.size(), 1u);
  // The host in between sees no written byte in clear.
  const Bytes& replica = run->replica_messages[0];
  std::vector<uint8_t> needle = {1, 8, 15, 22, 29, 36, 43, 50};
  EXPECT_EQ(std::search(replica.begin(), replica.end(), needle.begin(), needle.end()),
            replica.end());
  ASSERT_TRUE(b_.enclave->ApplyReplicaBatch(b_.region, replica).ok());
  EXPECT_EQ(ReadAll(a_), ReadAll(b_));
  Bytes word(8);
  ASSERT_TRUE(b_.enclave->RegionRead(b_.session, b_.region, 2048, word).ok());
  EXPECT_EQ(LoadLE<uint64_t>(word.data()), 41u);
  ASSERT_TRUE(b_.enclave->RegionRead(b_.session, b_.region, 2056, word).ok());
  EXPECT_EQ(LoadLE<uint64_t>(word.data()), 99u);
  // Applied durably: the backup's region reopens with the data.
  auto stats = b_.store->Size();
  EXPECT_GT(stats, 0u);
  // A second batch: a failed CAS stores the unchanged word; reads change nothing.
  protocol::RequestBuilder second;
  second.CompareAndSwap(a_.region, 2056, 5, 6);
  second.Read(a_.region, 0, 64);
  Bytes msg2 = Seal(a_, second, 3);
  auto run2 = a_.enclave->ExecuteReplicatedSealedBatch(a_.session, a_.region, msg2, 3, backups);
  ASSERT_TRUE(run2.ok()) << run2.status();
  ASSERT_EQ(run2->replica_messages.size(), 1u);
  ASSERT_TRUE(b_.enclave->ApplyReplicaBatch(b_.region, run2->replica_messages[0]).ok());
  EXPECT_EQ(ReadAll(a_), ReadAll(b_));
  // A read-only batch has no effects to replicate.
  protocol::RequestBuilder reads;
  reads.Read(a_.region, 0, 64);
  Bytes msg3 = Seal(a_, reads, 3);
  auto run3 = a_.enclave->ExecuteReplicatedSealedBatch(a_.session, a_.region, msg3, 3, backups);
  ASSERT_TRUE(run3.ok()) << run3.status();
  EXPECT_TRUE(run3->replica_messages.empty());
}

TEST_F(EnclaveReplicationTest, ReplayedForgedOrMisroutedReplicaBatchesAreRefused) {
  auto link = Link(a_, b_);
  ASSERT_TRUE(link.ok()) << link.status();
  std::vector<PeerChannelId> backups{*link};
  Bytes msg = Seal(a_, WritesAndAnAtomic(a_.region), 5);
  auto run = a_.enclave->ExecuteReplicatedSealedBatch(a_.session, a_.region, msg, 5, backups);
  ASSERT_TRUE(run.ok()) << run.status();
  const Bytes replica = run->replica_messages.at(0);
  const Bytes before = ReadAll(b_);
  // Routed by the backup's host to another region: refused, nothing applied.
  EXPECT_EQ(b_.enclave->ApplyReplicaBatch(b_.other_region, replica).code(),
            StatusCode::kIntegrityViolation);
  // Any flipped bit (header, ciphertext or tag): refused.
  for (size_t i = 0; i < replica.size(); i += 61) {
    Bytes bad = replica;
    bad[i] ^= 0x04;
    EXPECT_FALSE(b_.enclave->ApplyReplicaBatch(b_.region, bad).ok()) << i;
  }
  EXPECT_EQ(ReadAll(b_), before);
  ASSERT_TRUE(b_.enclave->ApplyReplicaBatch(b_.region, replica).ok());
  // Replayed: refused (a host cannot roll a backup's region back by replaying).
  EXPECT_EQ(b_.enclave->ApplyReplicaBatch(b_.region, replica).code(),
            StatusCode::kIntegrityViolation);
  // Only the responder end applies: the primary refuses its own message.
  EXPECT_EQ(a_.enclave->ApplyReplicaBatch(a_.region, replica).code(),
            StatusCode::kIntegrityViolation);
}

TEST_F(EnclaveReplicationTest, AnUntrustedPlatformGetsNoChannelEitherWay) {
  // x trusts everyone, but a and b do not list x.
  auto to_b = Link(x_, b_);
  EXPECT_EQ(to_b.status().code(), StatusCode::kIntegrityViolation) << to_b.status();
  auto from_a = Link(a_, x_);
  EXPECT_EQ(from_a.status().code(), StatusCode::kIntegrityViolation) << from_a.status();
  // An enclave with no peer keys trusts nobody.
  Node lone;
  Make(&lone, "x");
  auto start = a_.enclave->PeerConnect();
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(lone.enclave->PeerAccept(start->hello).status().code(),
            StatusCode::kIntegrityViolation);
  EXPECT_EQ(lone.enclave->PeerConnect().status().code(), StatusCode::kFailedPrecondition);
  lone.enclave.reset();
}

TEST_F(EnclaveReplicationTest, TheClientsEpochDecidesWhetherABatchIsReplicated) {
  auto link = Link(a_, b_);
  ASSERT_TRUE(link.ok());
  std::vector<PeerChannelId> backups{*link};
  // A batch the client sent for epoch 4 does not run unreplicated (a host
  // skipping the backups) nor at another epoch.
  Bytes at4 = Seal(a_, WritesAndAnAtomic(a_.region), 4);
  EXPECT_EQ(a_.enclave->ExecuteSealedBatch(a_.session, a_.region, at4).status().code(),
            StatusCode::kIntegrityViolation);
  Bytes at4b = Seal(a_, WritesAndAnAtomic(a_.region), 4);
  EXPECT_EQ(a_.enclave->ExecuteReplicatedSealedBatch(a_.session, a_.region, at4b, 5, backups)
                .status()
                .code(),
            StatusCode::kIntegrityViolation);
  // A batch without an epoch does not run as a replicated one.
  Bytes plain = Seal(a_, WritesAndAnAtomic(a_.region), 0);
  EXPECT_EQ(a_.enclave->ExecuteReplicatedSealedBatch(a_.session, a_.region, plain, 4, backups)
                .status()
                .code(),
            StatusCode::kIntegrityViolation);
  // Unknown backup channel: nothing runs.
  Bytes at4c = Seal(a_, WritesAndAnAtomic(a_.region), 4);
  std::vector<PeerChannelId> unknown{12345};
  EXPECT_EQ(a_.enclave->ExecuteReplicatedSealedBatch(a_.session, a_.region, at4c, 4, unknown)
                .status()
                .code(),
            StatusCode::kNotFound);
  Bytes zero(geometry_.size);
  EXPECT_EQ(ReadAll(a_), zero);
  // A closed channel is gone on both ends' terms.
  ASSERT_TRUE(a_.enclave->ClosePeer(*link).ok());
  EXPECT_EQ(a_.enclave->ClosePeer(*link).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cosmos::sec
