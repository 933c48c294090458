// cosmosd as a process: config file, clean SIGTERM shutdown, restart with the
// data intact, and hostile or broken input sent with a raw RPC endpoint: each
// gets a specific error, nothing outside the target range changes, and the
// node keeps serving others.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "cosmos/client.h"
#include "protocol/rpm_protocol.h"
#include "rpc/rpc.h"
#include "rpc/transport_udp.h"
#include "rpm_harness.h"

namespace {

using cosmos::Status;
using cosmos::StatusCode;
using namespace cosmos::protocol;

std::vector<std::byte> Pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<uint8_t>(seed + i * 13));
  return v;
}

std::unique_ptr<cosmos::Client> Connect(const rpm_test::Daemon& d) {
  cosmos::ClientOptions o;
  o.server = d.address();
  auto c = cosmos::Client::Connect(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

// A raw RPC client that sends hand-made RPM batches.
class RawClient {
 public:
  explicit RawClient(const rpm_test::Daemon& d,
                     std::vector<std::byte> hello = EncodeHello(Hello{})) {
    auto t = cosmos::rpc::OpenUdpTransport({});
    EXPECT_TRUE(t.ok());
    auto r = cosmos::rpc::Rpc::Create(&nexus_, std::move(*t), {});
    EXPECT_TRUE(r.ok());
    rpc_ = std::move(*r);
    auto addr = cosmos::rpc::NetAddress::Parse(d.address());
    auto s = rpc_->Connect(*addr, hello, 3'000'000'000ull);
    connect_status_ = s.status();
    if (s.ok()) session_ = *s;
  }
  const Status& connect_status() const { return connect_status_; }
  cosmos::rpc::Rpc& rpc() { return *rpc_; }
  cosmos::rpc::SessionId session() const { return session_; }

  // Sends `bytes`, waits, parses; returns the transport status.
  Status Call(std::span<const std::byte> bytes, std::vector<std::byte>* response) {
    bool done = false;
    Status st;
    Status e = rpc_->EnqueueRequest(session_, kRpmRequestType, bytes,
                                    [&](const Status& s, std::span<const std::byte> r) {
                                      st = s;
                                      response->assign(r.begin(), r.end());
                                      done = true;
                                    });
    if (!e.ok()) return e;
    if (!rpc_->RunUntil([&] { return done; }, 5'000'000'000ull)) return Status::Timeout("raw call");
    return st;
  }
  // Sends a batch and returns the per-op result codes.
  std::vector<StatusCode> Codes(std::span<const std::byte> bytes,
                                std::vector<std::vector<std::byte>>* payloads = nullptr) {
    std::vector<std::byte> resp;
    Status s = Call(bytes, &resp);
    EXPECT_TRUE(s.ok()) << s;
    std::vector<OpResult> results;
    Status p = ParseResponse(resp, &results);
    EXPECT_TRUE(p.ok()) << p;
    std::vector<StatusCode> codes;
    for (const auto& r : results) {
      codes.push_back(r.code);
      if (payloads) payloads->emplace_back(r.payload.begin(), r.payload.end());
    }
    return codes;
  }

 private:
  cosmos::rpc::Nexus nexus_;
  std::unique_ptr<cosmos::rpc::Rpc> rpc_;
  cosmos::rpc::SessionId session_ = 0;
  Status connect_status_;
};

uint64_t OpenHandle(RawClient& raw, const std::string& name) {
  RequestBuilder b;
  b.OpenRegion(name);
  std::vector<std::vector<std::byte>> payloads;
  auto codes = raw.Codes(b.bytes(), &payloads);
  EXPECT_EQ(codes.size(), 1u);
  auto d = DecodeRegionDesc(payloads.at(0));
  EXPECT_TRUE(d.ok());
  return d.ok() ? d->handle : 0;
}

TEST(RpmDaemon, StartsFromTomlStopsCleanlyOnSigtermAndKeepsFlushedData) {
  rpm_test::TempDir dir;
  std::string cfg = dir.path + "/cosmosd.toml";
  {
    std::ofstream f(cfg);
    f << "[server]\nlisten = \"127.0.0.1\"\nworkers = 2\n[[pool]]\nname = \"main\"\npath = \""
      << dir.path << "/main.pool\"\nsize_mb = 16\ncreate = true\n";
  }
  auto data = Pattern(4096, 3);
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(d.Start(dir.path, {"--config", cfg}));
    auto c = Connect(d);
    ASSERT_TRUE(c);
    auto info = c->CreateRegion("r", 1 << 20);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->durability, cosmos::Durability::kPage);
    auto r = std::move(*c->OpenRegion("r"));
    ASSERT_TRUE(r->Write(8192, data).ok());
    ASSERT_TRUE(r->Flush(8192, data.size()).ok());
    r.reset();
    int status = d.Stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir.path, {"--config", cfg}));
  auto c = Connect(d);
  auto r = c->OpenRegion("r");
  ASSERT_TRUE(r.ok());
  std::vector<std::byte> out(4096);
  ASSERT_TRUE((*r)->Read(8192, out).ok());
  EXPECT_EQ(out, data);
  EXPECT_TRUE((*r)->Verify(8192, data).ok());
}

TEST(RpmDaemon, RefusesBadConfigAndMissingPool) {
  rpm_test::TempDir dir;
  rpm_test::Daemon d;
  EXPECT_FALSE(d.Start(dir.path, {"--pool", dir.path + "/absent.pool"}));
  rpm_test::Daemon d2;
  EXPECT_FALSE(d2.Start(dir.path, {"--workers", "0", "--pool", dir.path + "/p,create"}));
}

TEST(RpmDaemon, HostileBatchesGetSpecificErrorsAndWriteNothingOutsideTheTarget) {
  rpm_test::TempDir dir;
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir.path, {"--workers", "1", "--pool", dir.path + "/p.pool,size=32,create"}));
  auto c = Connect(d);
  ASSERT_TRUE(c->CreateRegion("r", 65536).ok());
  ASSERT_TRUE(c->CreateRegion("neighbor", 65536).ok());
  auto r = std::move(*c->OpenRegion("r"));
  auto n = std::move(*c->OpenRegion("neighbor"));
  auto fill = Pattern(65536, 7);
  ASSERT_TRUE(r->Write(0, fill).ok());
  ASSERT_TRUE(n->Write(0, fill).ok());
  ASSERT_TRUE(r->Flush(0, fill.size()).ok());
  ASSERT_TRUE(n->Flush(0, fill.size()).ok());

  RawClient raw(d);
  ASSERT_TRUE(raw.connect_status().ok()) << raw.connect_status();
  const uint64_t h = OpenHandle(raw, "r");
  auto eight = Pattern(8, 99);

  // Garbage and wrong version: one error result, nothing executed.
  std::vector<std::byte> garbage(100, std::byte{0x5a});
  EXPECT_EQ(raw.Codes(garbage), std::vector<StatusCode>{StatusCode::kCorruption});
  RequestBuilder v;
  v.Write(h, 0, eight);
  std::vector<std::byte> wrong(v.bytes().begin(), v.bytes().end());
  wrong[4] = std::byte{7};
  EXPECT_EQ(raw.Codes(wrong), std::vector<StatusCode>{StatusCode::kFailedPrecondition});
  // Truncated batch (the op claims more payload than the message has).
  std::vector<std::byte> cut(v.bytes().begin(), v.bytes().end() - 3);
  EXPECT_EQ(raw.Codes(cut), std::vector<StatusCode>{StatusCode::kCorruption});

  // Unknown handle first: it fails, the valid write after it is cancelled.
  RequestBuilder b1;
  b1.Write(h ^ 0x77, 0, eight);
  b1.Write(h, 0, eight);
  EXPECT_EQ(raw.Codes(b1.bytes()),
            (std::vector<StatusCode>{StatusCode::kNotFound, StatusCode::kCancelled}));
  // Out of range and overflowing offsets; unaligned atomics; oversized read.
  RequestBuilder b2;
  b2.Write(h, 65536 - 4, eight);
  EXPECT_EQ(raw.Codes(b2.bytes()), std::vector<StatusCode>{StatusCode::kOutOfRange});
  RequestBuilder b3;
  b3.Write(h, UINT64_MAX - 2, eight);
  EXPECT_EQ(raw.Codes(b3.bytes()), std::vector<StatusCode>{StatusCode::kOutOfRange});
  RequestBuilder b4;
  Range bad{UINT64_MAX - 10, 20};
  b4.Flush(h, std::span<const Range>(&bad, 1));
  EXPECT_EQ(raw.Codes(b4.bytes()), std::vector<StatusCode>{StatusCode::kOutOfRange});
  RequestBuilder b5;
  b5.CompareAndSwap(h, 4, 0, 1);
  b5.FetchAdd(h, 65536, 1);
  EXPECT_EQ(raw.Codes(b5.bytes()),
            (std::vector<StatusCode>{StatusCode::kInvalidArgument, StatusCode::kCancelled}));
  RequestBuilder b6;
  b6.WriteAfterFlush(h, 65536, 1);
  EXPECT_EQ(raw.Codes(b6.bytes()), std::vector<StatusCode>{StatusCode::kOutOfRange});
  RequestBuilder b7;
  b7.Read(h, 0, UINT64_MAX);
  EXPECT_EQ(raw.Codes(b7.bytes()), std::vector<StatusCode>{StatusCode::kOutOfRange});
  RequestBuilder b8;
  b8.OpenRegion("no-such-region");
  EXPECT_EQ(raw.Codes(b8.bytes()), std::vector<StatusCode>{StatusCode::kNotFound});
  // Oversized request: refused by the RPC layer before it leaves.
  std::vector<std::byte> huge(9u << 20);
  std::vector<std::byte> resp;
  EXPECT_EQ(raw.Call(huge, &resp).code(), StatusCode::kInvalidArgument);

  // Nothing changed in either region; the node still serves normal clients.
  std::vector<std::byte> out(65536);
  ASSERT_TRUE(r->Read(0, out).ok());
  EXPECT_EQ(out, fill);
  ASSERT_TRUE(n->Read(0, out).ok());
  EXPECT_EQ(out, fill);
  EXPECT_TRUE(r->Verify(0, fill).ok());
}

TEST(RpmDaemon, RefusesForeignHelloWithItsReason) {
  rpm_test::TempDir dir;
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir.path, {"--pool", dir.path + "/p.pool,size=16,create"}));
  std::vector<std::byte> bad(12, std::byte{1});
  RawClient raw(d, bad);
  EXPECT_EQ(raw.connect_status().code(), StatusCode::kInvalidArgument) << raw.connect_status();
  auto old = EncodeHello(Hello{});
  old[4] = std::byte{9};
  RawClient raw2(d, old);
  EXPECT_EQ(raw2.connect_status().code(), StatusCode::kFailedPrecondition);
}

TEST(RpmDaemon, ClientVanishingMidFlushLeavesTheNodeServingOthers) {
  rpm_test::TempDir dir;
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir.path, {"--pool", dir.path + "/p.pool,size=32,create"}));
  auto c = Connect(d);
  ASSERT_TRUE(c->CreateRegion("r", 1 << 20).ok());
  for (int round = 0; round < 5; ++round) {
    auto raw = std::make_unique<RawClient>(d);
    ASSERT_TRUE(raw->connect_status().ok());
    uint64_t h = OpenHandle(*raw, "r");
    RequestBuilder b;
    b.Write(h, 0, Pattern(256 << 10, static_cast<uint8_t>(round)));
    Range all{0, 1 << 20};
    b.Flush(h, std::span<const Range>(&all, 1));
    bool done = false;
    ASSERT_TRUE(raw->rpc()
                    .EnqueueRequest(raw->session(), kRpmRequestType, b.bytes(),
                                    [&](const Status&, std::span<const std::byte>) { done = true; })
                    .ok());
    raw->rpc().RunEventLoopFor(200'000 * round);  // vanish at different points
    raw.reset();                                  // gone without a goodbye
  }
  auto r = std::move(*c->OpenRegion("r"));
  auto mine = Pattern(512, 42);
  ASSERT_TRUE(r->Write(1000, mine).ok());
  ASSERT_TRUE(r->Flush(1000, mine.size()).ok());
  EXPECT_TRUE(r->Verify(1000, mine).ok());
  EXPECT_TRUE(c->ListRegions().ok());
}

}  // namespace
