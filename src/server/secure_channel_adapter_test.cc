// Secure connections end to end over the RPC layer (in-memory network): the
// ClientHello/ServerHello ride in the connect payloads, both sides install
// the sec-backed protectors, requests and responses round-trip encrypted
// (no plaintext on the wire) even with corrupted packets, and a wrong
// platform key, a wrong measurement or a client off the allow list is refused.
#include "server/secure_channel_adapter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "client/secure_session.h"
#include "common/clock.h"
#include "pmem/mapping.h"
#include "rpc/rpc.h"
#include "rpc/transport_memory.h"
#include "rpc/wire.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/enclave_region_engine.h"

namespace cosmos::server {
namespace {

constexpr uint16_t kEcho = 1;
constexpr rpc::NetAddress kServerAddr{0x0a000001, 1000};
constexpr rpc::NetAddress kClientAddr{0x0a000002, 2000};
constexpr uint64_t kSecond = 1'000'000'000;

rpc::RpcOptions TestOptions() {
  rpc::RpcOptions o;
  o.initial_rto_ns = 2'000'000;
  o.min_rto_ns = 1'000'000;
  o.max_rto_ns = 20'000'000;
  o.heartbeat_interval_ns = 20'000'000;
  o.max_missed_heartbeats = 5;
  o.connect_retry_ns = 5'000'000;
  o.connect_attempts = 40;
  return o;
}

std::span<const std::byte> AsSpan(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A simulated enclave with alice on its allow list, and an RPC server (echo
// handler, secure connect hook) and client on one thread.
class SecureRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cosmos_secwire_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(sec::GeneratePlatformKeys(dir_ + "/node").ok());
    ASSERT_TRUE(sec::GenerateClientCredentials(dir_ + "/clients", "alice").ok());
    ASSERT_TRUE(sec::GenerateClientCredentials(dir_ + "/clients", "mallory").ok());
    ASSERT_TRUE(sec::GenerateClientCredentials(dir_ + "/clients", "bob").ok());
    sec::SimulatedEnclaveOptions eo;
    eo.platform_key_path = dir_ + "/node/platform.key";
    eo.sealing_secret_path = dir_ + "/node/sealing.secret";
    eo.state_dir = dir_ + "/state";
    auto enclave = sec::SimulatedEnclave::Create(std::move(eo));
    ASSERT_TRUE(enclave.ok()) << enclave.status();
    enclave_ = std::move(*enclave);
    auto alice = sec::LoadPublicKey(dir_ + "/clients/alice.pub", sec::KeyKind::kClientPublic);
    ASSERT_TRUE(alice.ok());
    auto bob = sec::LoadPublicKey(dir_ + "/clients/bob.pub", sec::KeyKind::kClientPublic);
    ASSERT_TRUE(bob.ok());
    std::vector<sec::Ed25519PublicKey> allow{*alice, *bob};
    ASSERT_TRUE(enclave_->SetClientAllowList(allow).ok());

    nexus_.RegisterHandler(kEcho, [this](rpc::Rpc& rpc, const rpc::IncomingRequest& req) {
      seen_by_server_.assign(req.payload.begin(), req.payload.end());
      ASSERT_TRUE(rpc.EnqueueResponse(req.handle, req.payload).ok());
    });
    nexus_.SetConnectHook([this](const rpc::ConnectRequestInfo& info) {
      SecureConnectOutcome out = AcceptSecureConnect(enclave_.get(), info.payload);
      if (out.decision.status.ok()) ++accepted_;
      return std::move(out.decision);
    });
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    enclave_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartEndpoints(rpc::FaultConfig client_faults = {}, rpc::FaultConfig server_faults = {}) {
    auto st = rpc::OpenMemoryTransport(net_, {.address = kServerAddr, .faults = server_faults});
    ASSERT_TRUE(st.ok());
    auto s = rpc::Rpc::Create(&nexus_, std::move(*st), TestOptions());
    ASSERT_TRUE(s.ok());
    server_ = std::move(*s);
    auto ct = rpc::OpenMemoryTransport(net_, {.address = kClientAddr, .faults = client_faults});
    ASSERT_TRUE(ct.ok());
    auto c = rpc::Rpc::Create(&nexus_, std::move(*ct), TestOptions());
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
  }

  bool RunUntil(const std::function<bool()>& done, uint64_t timeout_ns = 20 * kSecond) {
    const uint64_t end = MonotonicNanos() + timeout_ns;
    while (!done()) {
      if (MonotonicNanos() > end) return false;
      server_->RunEventLoopOnce();
      client_->RunEventLoopOnce();
    }
    return true;
  }

  // Connects with `config`; on success installs the protector.
  Result<rpc::SessionId> SecureConnect(const client::SecureClientConfig& config) {
    COSMOS_ASSIGN_OR_RETURN(auto connector, client::SecureConnector::Start(config));
    struct State {
      bool done = false;
      Status status;
      std::vector<std::byte> reply;
    };
    auto state = std::make_shared<State>();
    COSMOS_ASSIGN_OR_RETURN(
        rpc::SessionId sid,
        client_->CreateSession(kServerAddr, connector->connect_payload(),
                               [state](rpc::SessionId, rpc::SessionEvent ev, const Status& s,
                                       std::span<const std::byte> r) {
                                 if (state->done) return;
                                 state->done = true;
                                 state->status =
                                     ev == rpc::SessionEvent::kConnected ? Status::Ok() : s;
                                 state->reply.assign(r.begin(), r.end());
                               }));
    if (!RunUntil([&] { return state->done; })) return Status::Timeout("connect");
    COSMOS_RETURN_IF_ERROR(state->status);
    COSMOS_ASSIGN_OR_RETURN(client::SecureSessionKeys keys, connector->Finish(state->reply));
    COSMOS_RETURN_IF_ERROR(client_->SetSessionProtector(sid, std::move(keys.protector)));
    return sid;
  }

  Result<client::SecureClientConfig> Config(const std::string& name,
                                            const std::string& node = "node") {
    return client::SecureClientConfig::Load(dir_ + "/" + node + "/platform.pub",
                                            dir_ + "/" + node + "/measurement",
                                            dir_ + "/clients/" + name + ".key");
  }

  // Sends one echo and returns the response (or the error).
  Result<std::string> Echo(rpc::SessionId sid, const std::string& text) {
    bool done = false;
    Status status;
    std::string response;
    COSMOS_RETURN_IF_ERROR(client_->EnqueueRequest(
        sid, kEcho, AsSpan(text), [&](const Status& s, std::span<const std::byte> r) {
          done = true;
          status = s;
          response.assign(reinterpret_cast<const char*>(r.data()), r.size());
        }));
    if (!RunUntil([&] { return done; })) return Status::Timeout("echo");
    COSMOS_RETURN_IF_ERROR(status);
    return response;
  }

  std::string dir_;
  std::unique_ptr<sec::SimulatedEnclave> enclave_;
  std::shared_ptr<rpc::MemoryNetwork> net_ = std::make_shared<rpc::MemoryNetwork>();
  rpc::Nexus nexus_;
  std::unique_ptr<rpc::Rpc> server_;
  std::unique_ptr<rpc::Rpc> client_;
  std::vector<std::byte> seen_by_server_;
  int accepted_ = 0;
};

TEST_F(SecureRpcTest, RequestsRoundTripThroughTheSecureChannel) {
  StartEndpoints();
  auto config = Config("alice");
  ASSERT_TRUE(config.ok()) << config.status();
  auto sid = SecureConnect(*config);
  ASSERT_TRUE(sid.ok()) << sid.status();
  EXPECT_EQ(accepted_, 1);
  const std::string big(5000, 'z');
  for (const std::string& text : {std::string("secret-hello"), big}) {
    auto r = Echo(*sid, text);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, text);
    EXPECT_EQ(
        std::string(reinterpret_cast<const char*>(seen_by_server_.data()), seen_by_server_.size()),
        text);
  }
  EXPECT_EQ(server_->counters().auth_failures, 0u);
}

TEST_F(SecureRpcTest, CorruptedPacketsAreRejectedAndRetransmissionRecovers) {
  StartEndpoints({.corrupt = 0.1, .seed = 31}, {.corrupt = 0.1, .seed = 32});
  auto config = Config("alice");
  ASSERT_TRUE(config.ok());
  auto sid = SecureConnect(*config);
  // The handshake itself travels unprotected; a corrupted hello is refused
  // (IntegrityViolation) and the test only needs one clean connect.
  for (int attempt = 0; attempt < 5 && !sid.ok(); ++attempt) sid = SecureConnect(*config);
  ASSERT_TRUE(sid.ok()) << sid.status();
  for (int i = 0; i < 40; ++i) {
    const std::string text = "message-" + std::to_string(i) + std::string(i * 50, 'q');
    auto r = Echo(*sid, text);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, text);
  }
  EXPECT_GT(server_->counters().auth_failures + client_->counters().auth_failures, 0u);
}

TEST_F(SecureRpcTest, SealedPacketHidesPayloadAndRejectsReplayOrModifiedHeader) {
  // The protectors directly, without the RPC layer: what a sealed packet
  // looks like on the wire, and what the receiver refuses.
  auto config = Config("alice");
  ASSERT_TRUE(config.ok());
  auto connector = client::SecureConnector::Start(*config);
  ASSERT_TRUE(connector.ok());
  SecureConnectOutcome out = AcceptSecureConnect(enclave_.get(), (*connector)->connect_payload());
  ASSERT_TRUE(out.decision.status.ok()) << out.decision.status;
  auto keys = (*connector)->Finish(out.decision.reply);
  ASSERT_TRUE(keys.ok()) << keys.status();
  std::vector<std::byte> header(rpc::kHeaderSize, std::byte{0});
  header[rpc::kOffSeq] = std::byte{1};
  const std::string secret = "the plaintext the host must not see";
  std::vector<std::byte> payload(secret.size());
  std::memcpy(payload.data(), secret.data(), secret.size());
  std::vector<std::byte> tag(keys->protector->tag_size());
  keys->protector->Seal(header, payload, tag);
  EXPECT_NE(std::memcmp(payload.data(), secret.data(), secret.size()), 0);
  // The server opens it; a replay of the same packet is refused.
  std::vector<std::byte> copy = payload;
  ASSERT_TRUE(out.decision.protector->Open(header, payload, tag).ok());
  EXPECT_EQ(std::memcmp(payload.data(), secret.data(), secret.size()), 0);
  EXPECT_EQ(out.decision.protector->Open(header, copy, tag).code(),
            StatusCode::kIntegrityViolation);
  // A modified header (AAD) is refused too.
  std::vector<std::byte> p2(secret.size());
  std::memcpy(p2.data(), secret.data(), secret.size());
  header[rpc::kOffSeq] = std::byte{2};
  keys->protector->Seal(header, p2, tag);
  header[rpc::kOffReqType] = std::byte{9};
  EXPECT_EQ(out.decision.protector->Open(header, p2, tag).code(), StatusCode::kIntegrityViolation);
}

TEST_F(SecureRpcTest, WrongPlatformKeyOrMeasurementIsRefusedByTheClient) {
  ASSERT_TRUE(sec::GeneratePlatformKeys(dir_ + "/impostor").ok());
  StartEndpoints();
  // Pins another platform's public key: the quote does not verify.
  auto config = Config("alice", "impostor");
  ASSERT_TRUE(config.ok());
  auto sid = SecureConnect(*config);
  EXPECT_EQ(sid.status().code(), StatusCode::kIntegrityViolation) << sid.status();
  // Right key, wrong measurement.
  auto good = Config("alice");
  ASSERT_TRUE(good.ok());
  good->policy.expected_measurement[0] ^= 1;
  auto sid2 = SecureConnect(*good);
  EXPECT_EQ(sid2.status().code(), StatusCode::kIntegrityViolation) << sid2.status();
}

TEST_F(SecureRpcTest, ClientOffTheAllowListIsRefused) {
  StartEndpoints();
  auto config = Config("mallory");
  ASSERT_TRUE(config.ok());
  auto sid = SecureConnect(*config);
  EXPECT_EQ(sid.status().code(), StatusCode::kPermissionDenied) << sid.status();
  EXPECT_EQ(accepted_, 0);
}

TEST_F(SecureRpcTest, ClosedEnclaveSessionRejectsPackets) {
  auto config = Config("alice");
  ASSERT_TRUE(config.ok());
  auto connector = client::SecureConnector::Start(*config);
  ASSERT_TRUE(connector.ok());
  SecureConnectOutcome out = AcceptSecureConnect(enclave_.get(), (*connector)->connect_payload());
  ASSERT_TRUE(out.decision.status.ok());
  auto keys = (*connector)->Finish(out.decision.reply);
  ASSERT_TRUE(keys.ok());
  ASSERT_TRUE(enclave_->CloseSession(out.session).ok());
  std::vector<std::byte> header(rpc::kHeaderSize, std::byte{0});
  std::vector<std::byte> payload(16, std::byte{7});
  std::vector<std::byte> tag(16);
  keys->protector->Seal(header, payload, tag);
  EXPECT_EQ(out.decision.protector->Open(header, payload, tag).code(),
            StatusCode::kIntegrityViolation);
  // Sealing on a closed session sends nothing readable.
  std::vector<std::byte> reply(16, std::byte{7});
  out.decision.protector->Seal(header, reply, tag);
  EXPECT_TRUE(
      std::all_of(reply.begin(), reply.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_F(SecureRpcTest, EndedSessionDropsItsEnclaveBindingInTheRegionEngine) {
  EnclaveRegionEngine engine(enclave_.get(), 4096);
  auto config = Config("alice");
  ASSERT_TRUE(config.ok());
  auto connector = client::SecureConnector::Start(*config);
  ASSERT_TRUE(connector.ok());
  const SessionKey key = (uint64_t{1} << 32) | 5;
  rpc::ConnectDecision first = engine.AcceptConnect(key, (*connector)->connect_payload());
  ASSERT_TRUE(first.status.ok()) << first.status;
  const uint64_t first_binding = engine.SecureSessionOf(key);
  EXPECT_NE(first_binding, 0u);
  // A newer connect on the same session number replaces the binding; the end
  // of the older session must not drop the newer one.
  auto connector2 = client::SecureConnector::Start(*config);
  ASSERT_TRUE(connector2.ok());
  rpc::ConnectDecision second = engine.AcceptConnect(key, (*connector2)->connect_payload());
  ASSERT_TRUE(second.status.ok());
  EXPECT_NE(engine.SecureSessionOf(key), first_binding);
  first.protector.reset();
  EXPECT_NE(engine.SecureSessionOf(key), 0u);
  // The RPC session ends (its protector is destroyed): the binding goes.
  second.protector.reset();
  EXPECT_EQ(engine.SecureSessionOf(key), 0u);
}

// A batch is admitted under alice's session and deferred (a flush waiting
// for the counter); alice's session ends and bob connects on the same session
// number before the deferred op runs. The op must fail as alice's ended
// session, not run as bob (who holds rights on the region).
TEST_F(SecureRpcTest, DeferredOpKeepsTheSessionItWasAdmittedUnder) {
  auto mapping = pmem::MapDram(8 << 20);
  ASSERT_TRUE(mapping.ok());
  auto pool = pmem::Pool::CreateOnMapping(std::move(*mapping), "p0");
  ASSERT_TRUE(pool.ok()) << pool.status();
  std::vector<ServedPool> pools;
  pools.push_back(ServedPool{"p0", std::move(*pool)});
  // The engine outlives the table: the table closes its secure regions in it.
  EnclaveRegionEngine engine(enclave_.get(), 4096);
  RegionTable table(std::move(pools));
  table.set_secure_engine(&engine);
  const SessionKey key = (uint64_t{2} << 32) | 9;

  auto alice_config = Config("alice");
  ASSERT_TRUE(alice_config.ok());
  auto alice = client::SecureConnector::Start(*alice_config);
  ASSERT_TRUE(alice.ok());
  rpc::ConnectDecision alice_connect = engine.AcceptConnect(key, (*alice)->connect_payload());
  ASSERT_TRUE(alice_connect.status.ok()) << alice_connect.status;
  const Requester admitted{key, engine.SecureSessionOf(key)};

  // Bob creates the region (he is its admin) on a later session that reused
  // alice's session number.
  alice_connect.protector.reset();  // alice's RPC session ends
  auto bob_config = Config("bob");
  ASSERT_TRUE(bob_config.ok());
  auto bob = client::SecureConnector::Start(*bob_config);
  ASSERT_TRUE(bob.ok());
  rpc::ConnectDecision bob_connect = engine.AcceptConnect(key, (*bob)->connect_payload());
  ASSERT_TRUE(bob_connect.status.ok()) << bob_connect.status;
  const Requester bob_now{key, engine.SecureSessionOf(key)};
  auto size = engine.StoreSize(4096);
  ASSERT_TRUE(size.ok());
  auto created = table.Create("bobs", *size, /*secure=*/true, "");
  ASSERT_TRUE(created.ok()) << created.status();
  auto entry = table.Lookup(created->handle);
  ASSERT_TRUE(entry.ok());
  ASSERT_TRUE(engine.Format(bob_now, *entry->get(), nullptr).ok());
  const std::byte data[8] = {std::byte{1}};
  ASSERT_TRUE(engine.Write(bob_now, *entry->get(), 0, data, WaitMode::kMayWait).ok());

  // The op admitted under alice's session now runs.
  Status s = engine.Write(admitted, *entry->get(), 0, data, WaitMode::kMayWait);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s;
  EXPECT_FALSE(engine.Flush(admitted, *entry->get(), WaitMode::kMayWait).ok());
}

}  // namespace
}  // namespace cosmos::server
