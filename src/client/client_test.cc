// Client + server over real UDP on loopback, in one process: every Region
// call, batching, ordering, async completions and per-op errors.
#include "cosmos/client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "pmem/fault_injection.h"
#include "pmem/mapping.h"
#include "server/server.h"

namespace cosmos {
namespace {

std::vector<std::byte> Pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
  return v;
}

struct Node {
  std::unique_ptr<server::Server> server;
  std::shared_ptr<pmem::FaultInjectionMedium> medium;
  std::string dir;
  ~Node() {
    if (server) server->Stop();
    server.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
};

// kind: "dram" (none), "fault" (fault-injection medium, reports cacheline),
// "file" (page pool in a temp dir: flushes take the flusher path).
std::unique_ptr<Node> StartNode(const std::string& kind, uint32_t workers = 2,
                                server::QosLimits qos = {}, size_t mtu = 1472) {
  auto node = std::make_unique<Node>();
  std::vector<server::ServedPool> pools;
  std::unique_ptr<pmem::Pool> pool;
  if (kind == "dram") {
    auto m = pmem::MapDram(16 << 20);
    EXPECT_TRUE(m.ok());
    pool = std::move(*pmem::Pool::CreateOnMapping(std::move(*m), "dram0"));
  } else if (kind == "fault") {
    node->medium = pmem::FaultInjectionMedium::Create(16 << 20);
    auto m = node->medium->Map();
    EXPECT_TRUE(m.ok());
    pool = std::move(*pmem::Pool::CreateOnMapping(std::move(*m), "fault0"));
  } else {
    char tmpl[] = "/tmp/cosmos_client_test_XXXXXX";
    node->dir = mkdtemp(tmpl);
    auto p = pmem::Pool::Create(node->dir + "/pool", 16 << 20);
    EXPECT_TRUE(p.ok()) << p.status();
    pool = std::move(*p);
  }
  pools.push_back(server::ServedPool{"p0", std::move(pool)});
  server::ServerOptions opts;
  opts.listen_ip = "127.0.0.1";
  opts.port = 0;
  opts.workers = workers;
  opts.qos = qos;
  opts.mtu = mtu;
  auto s = server::Server::Start(opts, std::move(pools));
  EXPECT_TRUE(s.ok()) << s.status();
  node->server = std::move(*s);
  return node;
}

std::unique_ptr<Client> ConnectTo(const Node& node, size_t batch_bytes = 8192, size_t mtu = 1472) {
  ClientOptions o;
  o.server = node.address();
  o.batch_bytes = batch_bytes;
  o.mtu = mtu;
  auto c = Client::Connect(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

TEST(Client, ZeroFailureDetectionOptionsAreRefused) {
  auto node = StartNode("dram");
  for (int which = 0; which < 3; ++which) {
    ClientOptions o;
    o.server = node->address();
    if (which == 0) o.heartbeat_interval_ms = 0;
    if (which == 1) o.missed_heartbeats = 0;
    if (which == 2) o.max_dead_peer_ms = 0;
    auto c = Client::Connect(o);
    ASSERT_FALSE(c.ok()) << which;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << which;
  }
}

TEST(Client, CreatesOpensListsAndDeletesRegions) {
  auto node = StartNode("dram");
  auto c = ConnectTo(*node);
  auto info = c->CreateRegion("log", 1 << 20);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, 1u << 20);
  EXPECT_EQ(info->durability, Durability::kNone);
  EXPECT_FALSE(info->secure);
  EXPECT_EQ(c->CreateRegion("log", 4096).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(c->CreateRegion("", 4096).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->CreateRegion("big", 1ull << 40).status().code(), StatusCode::kResourceExhausted);
  RegionOptions secure;
  secure.secure = true;
  EXPECT_EQ(c->CreateRegion("s", 4096, secure).status().code(), StatusCode::kFailedPrecondition);
  auto list = c->ListRegions();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "log");
  auto r = c->OpenRegion("log");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->info().size, 1u << 20);
  EXPECT_EQ(c->OpenRegion("nope").status().code(), StatusCode::kNotFound);
  r->reset();
  ASSERT_TRUE(c->DeleteRegion("log").ok());
  EXPECT_EQ(c->DeleteRegion("log").code(), StatusCode::kNotFound);
  EXPECT_TRUE(c->ListRegions()->empty());
}

// Errors a client gets name the node's pools, not their file paths (those
// stay in the node's log).
TEST(Client, ErrorsNameThePoolNotTheNodesFilePaths) {
  auto node = StartNode("file");
  auto c = ConnectTo(*node);
  auto big = c->CreateRegion("big", 1ull << 40);
  ASSERT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(big.status().message().find(node->dir), std::string::npos) << big.status();
  EXPECT_NE(big.status().message().find("pool 'p0'"), std::string::npos) << big.status();
}

TEST(Client, WriteFlushReadRoundTripsAndReadSeesBufferedWrites) {
  for (const char* kind : {"dram", "file"}) {
    SCOPED_TRACE(kind);
    auto node = StartNode(kind);
    auto c = ConnectTo(*node);
    ASSERT_TRUE(c->CreateRegion("r", 1 << 20).ok());
    auto r = std::move(*c->OpenRegion("r"));
    EXPECT_EQ(r->info().durability,
              std::string(kind) == "file" ? Durability::kPage : Durability::kNone);
    auto a = Pattern(64, 1), b = Pattern(4096, 2), big = Pattern(300000, 3);
    ASSERT_TRUE(r->Write(0, a).ok());
    ASSERT_TRUE(r->Write(4096, b).ok());
    std::vector<std::byte> out(64);
    ASSERT_TRUE(r->Read(0, out).ok());  // posted write travels with the read
    EXPECT_EQ(out, a);
    ASSERT_TRUE(r->Write(100000, big).ok());  // larger than batch_bytes: split
    Range ranges[] = {{0, 64}, {4096, 4096}, {100000, big.size()}};
    ASSERT_TRUE(r->Flush(ranges).ok());
    std::vector<std::byte> out_big(big.size());
    ASSERT_TRUE(r->Read(100000, out_big).ok());
    EXPECT_EQ(out_big, big);
    ASSERT_TRUE(r->Verify(4096, b).ok());
    auto wrong = b;
    wrong[17] ^= std::byte{1};
    EXPECT_EQ(r->Verify(4096, wrong).code(), StatusCode::kIntegrityViolation);
  }
}

// Node and client MTU options (server.mtu / ClientOptions::mtu) in every
// combination: the session settles on the smaller one (and never more than
// loopback's path MTU allows), and large writes and reads arrive intact.
TEST(Client, MtuOptionsOnEitherSideCarryLargeIo) {
  for (auto [server_mtu, client_mtu] :
       {std::pair<size_t, size_t>{8972, 8972}, {8972, 1472}, {1472, 8972}, {576, 8972}}) {
    SCOPED_TRACE("server " + std::to_string(server_mtu) + " client " + std::to_string(client_mtu));
    auto node = StartNode("dram", 1, {}, server_mtu);
    auto c = ConnectTo(*node, 8192, client_mtu);
    ASSERT_TRUE(c->CreateRegion("r", 1 << 20).ok());
    auto r = std::move(*c->OpenRegion("r"));
    auto big = Pattern(300000, 9), page = Pattern(4096, 10);
    ASSERT_TRUE(r->Write(0, big).ok());
    ASSERT_TRUE(r->Write(500000, page).ok());
    Range ranges[] = {{0, big.size()}, {500000, page.size()}};
    ASSERT_TRUE(r->Flush(ranges).ok());
    std::vector<std::byte> out_big(big.size()), out_page(page.size());
    ASSERT_TRUE(r->Read(0, out_big).ok());
    ASSERT_TRUE(r->Read(500000, out_page).ok());
    EXPECT_EQ(out_big, big);
    EXPECT_EQ(out_page, page);
  }
}

TEST(Client, AtomicsAndWriteAfterFlushAreDurableAndReturnOldValues) {
  auto node = StartNode("file");
  auto c = ConnectTo(*node);
  ASSERT_TRUE(c->CreateRegion("r", 65536).ok());
  auto r = std::move(*c->OpenRegion("r"));
  auto rec = Pattern(200, 9);
  ASSERT_TRUE(r->Write(64, rec).ok());
  ASSERT_TRUE(r->Flush(64, rec.size()).ok());
  ASSERT_TRUE(r->WriteAfterFlush(0, 264).ok());
  std::vector<std::byte> tail(8);
  ASSERT_TRUE(r->Read(0, tail).ok());
  uint64_t v;
  std::memcpy(&v, tail.data(), 8);
  EXPECT_EQ(v, 264u);
  EXPECT_EQ(*r->FetchAdd(8, 5), 0u);
  EXPECT_EQ(*r->FetchAdd(8, 5), 5u);
  EXPECT_EQ(*r->CompareAndSwap(8, 10, 77), 10u);
  EXPECT_EQ(*r->CompareAndSwap(8, 10, 99), 77u);  // mismatch: unchanged
  EXPECT_EQ(*r->FetchAdd(8, 0), 77u);
  EXPECT_GT(node->server->stats().deferred_batches, 0u);  // page pool used the flushers
}

TEST(Client, RejectsOutOfRangeAndUnalignedWithoutWriting) {
  auto node = StartNode("dram");
  auto c = ConnectTo(*node);
  ASSERT_TRUE(c->CreateRegion("r", 4096).ok());
  auto r = std::move(*c->OpenRegion("r"));
  auto d = Pattern(16, 1);
  EXPECT_EQ(r->Write(4090, d).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->Write(UINT64_MAX - 4, d).code(), StatusCode::kOutOfRange);
  std::vector<std::byte> out(16);
  EXPECT_EQ(r->Read(4088, out).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->Flush(0, 4097).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->Flush(UINT64_MAX, 2).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r->WriteAfterFlush(4, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r->FetchAdd(3, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r->CompareAndSwap(4096, 0, 1).status().code(), StatusCode::kOutOfRange);
  std::vector<std::byte> all(4096);
  ASSERT_TRUE(r->Read(0, all).ok());
  EXPECT_EQ(all, std::vector<std::byte>(4096));
}

TEST(Client, AsyncOperationsCompleteFromPollInOrder) {
  auto node = StartNode("file");
  auto c = ConnectTo(*node, 1024);
  ASSERT_TRUE(c->CreateRegion("r", 1 << 20).ok());
  auto r = std::move(*c->OpenRegion("r"));
  std::vector<std::vector<std::byte>> data;
  for (int i = 0; i < 20; ++i) data.push_back(Pattern(512, static_cast<uint8_t>(i)));
  int writes_ok = 0, flush_ok = 0, reads_ok = 0;
  for (int i = 0; i < 20; ++i) {
    r->WriteAsync(i * 512, data[i], [&](Status s) { writes_ok += s.ok(); });
  }
  Range all{0, 20 * 512};
  r->FlushAsync(std::span<const Range>(&all, 1), [&](Status s) { flush_ok += s.ok(); });
  std::vector<std::byte> back(20 * 512);
  r->ReadAsync(0, back, [&](Status s) { reads_ok += s.ok(); });
  for (int i = 0; i < 100000 && reads_ok + flush_ok + writes_ok < 22; ++i) c->Poll(1000);
  EXPECT_EQ(writes_ok, 20);
  EXPECT_EQ(flush_ok, 1);
  EXPECT_EQ(reads_ok, 1);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(0, std::memcmp(back.data() + i * 512, data[i].data(), 512)) << i;
  }
  // Transfers larger than one batch are split and complete once.
  auto big = Pattern(200000, 77);
  std::vector<std::byte> big_back(big.size());
  int big_done = 0;
  r->WriteAsync(300000, big, [&](Status s) { big_done += s.ok(); });
  r->ReadAsync(300000, big_back, [&](Status s) { big_done += s.ok() ? 10 : 0; });
  for (int i = 0; i < 100000 && big_done < 11; ++i) c->Poll(1000);
  EXPECT_EQ(big_done, 11);
  EXPECT_EQ(big_back, big);
  // AsyncFlush + Drain.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(r->Write(i * 64, Pattern(64, 50)).ok());
    Range rg{static_cast<uint64_t>(i) * 64, 64};
    ASSERT_TRUE(r->AsyncFlush(std::span<const Range>(&rg, 1)).ok());
  }
  EXPECT_TRUE(r->Drain().ok());
  ASSERT_TRUE(r->Verify(0, Pattern(64, 50)).ok());
}

TEST(Client, FailedSyncIsAnIoErrorAndTheNodeKeepsServing) {
  auto node = StartNode("fault");
  auto c = ConnectTo(*node);
  ASSERT_TRUE(c->CreateRegion("r", 65536).ok());
  auto r = std::move(*c->OpenRegion("r"));
  EXPECT_EQ(r->info().durability, Durability::kCacheLine);
  ASSERT_TRUE(r->Write(0, Pattern(128, 4)).ok());
  node->medium->FailSyncAt(1);
  Status s = r->Flush(0, 128);
  EXPECT_EQ(s.code(), StatusCode::kIoError) << s;
  // The batch after the failed op was cancelled; the node still serves.
  ASSERT_TRUE(r->Write(1024, Pattern(8, 1)).ok());
  EXPECT_TRUE(r->Flush(1024, 8).ok());
  auto c2 = ConnectTo(*node);
  EXPECT_TRUE(c2->ListRegions().ok());
}

TEST(Client, ClientsSpreadOverWorkersAndShareRegions) {
  auto node = StartNode("dram", 3);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(ConnectTo(*node));
  ASSERT_TRUE(clients[0]->CreateRegion("shared", 65536).ok());
  std::vector<std::unique_ptr<Region>> regions;
  for (auto& c : clients) regions.push_back(std::move(*c->OpenRegion("shared")));
  for (int round = 0; round < 10; ++round) {
    for (auto& r : regions) ASSERT_TRUE(r->FetchAdd(0, 1).ok());
  }
  EXPECT_EQ(*regions[2]->FetchAdd(0, 0), 30u);
  ASSERT_TRUE(regions[0]->Write(64, Pattern(32, 3)).ok());
  ASSERT_TRUE(regions[0]->Flush(64, 32).ok());
  std::vector<std::byte> out(32);
  ASSERT_TRUE(regions[1]->Read(64, out).ok());
  EXPECT_EQ(out, Pattern(32, 3));
}

TEST(Client, LogAppendOfWriteFlushAndWriteAfterFlushIsOneBatch) {
  auto node = StartNode("fault");
  auto c = ConnectTo(*node);
  ASSERT_TRUE(c->CreateRegion("log", 65536).ok());
  auto r = std::move(*c->OpenRegion("log"));
  uint64_t before = node->server->stats().batches;
  auto rec = Pattern(100, 5);
  ASSERT_TRUE(r->Write(64, rec).ok());
  Range rg{64, rec.size()};
  ASSERT_TRUE(r->AsyncFlush(std::span<const Range>(&rg, 1)).ok());
  ASSERT_TRUE(r->WriteAfterFlush(0, 164).ok());
  EXPECT_EQ(node->server->stats().batches - before, 1u);
  EXPECT_TRUE(r->Drain().ok());
  std::vector<std::byte> out(100);
  ASSERT_TRUE(r->Read(64, out).ok());
  EXPECT_EQ(out, rec);
}

TEST(Client, PostedWriteErrorSurfacesAtNextFlush) {
  auto node = StartNode("dram");
  auto c = ConnectTo(*node);
  ASSERT_TRUE(c->CreateRegion("r", 4096).ok());
  auto r = std::move(*c->OpenRegion("r"));
  auto other = ConnectTo(*node);
  ASSERT_TRUE(other->DeleteRegion("r").ok());
  ASSERT_TRUE(r->Write(0, Pattern(8, 1)).ok());  // posted: accepted locally
  EXPECT_EQ(r->Flush(0, 8).code(), StatusCode::kNotFound);
  EXPECT_TRUE(r->Drain().ok());  // reported once
}

TEST(Client, DeletedRegionHandleFailsWithNotFound) {
  auto node = StartNode("dram");
  auto c = ConnectTo(*node);
  ASSERT_TRUE(c->CreateRegion("r", 4096).ok());
  auto r = std::move(*c->OpenRegion("r"));
  auto c2 = ConnectTo(*node);
  ASSERT_TRUE(c2->DeleteRegion("r").ok());
  std::vector<std::byte> out(8);
  EXPECT_EQ(r->Read(0, out).code(), StatusCode::kNotFound);
}

TEST(Client, QosThrottledClientStillCompletes) {
  server::QosLimits q;
  q.client_ops_per_sec = 2000;
  q.burst_seconds = 0.01;
  auto node = StartNode("dram", 1, q);
  auto c = ConnectTo(*node);
  ASSERT_TRUE(c->CreateRegion("r", 4096).ok());
  auto r = std::move(*c->OpenRegion("r"));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(r->FetchAdd(0, 1).ok());
  EXPECT_EQ(*r->FetchAdd(0, 0), 100u);
}

// cosmosd's SIGHUP path: limits set on a running server delay a client, and
// lifting them serves the batch that was waiting for tokens.
TEST(Client, QosLimitsChangeOnARunningServer) {
  auto node = StartNode("dram", 1);
  auto c = ConnectTo(*node);
  ASSERT_TRUE(c->CreateRegion("r", 4096).ok());
  auto r = std::move(*c->OpenRegion("r"));
  ASSERT_TRUE(r->FetchAdd(0, 1).ok());
  EXPECT_EQ(node->server->stats().qos_delayed, 0u);
  server::QosLimits slow;
  slow.client_ops_per_sec = 0.001;  // per session: one batch now (the burst), the next in 1000 s
  ASSERT_TRUE(node->server->SetQosLimits(slow).ok());
  // A second client (a Client belongs to one thread): its open takes the
  // session's one token, its op waits for the next.
  std::thread waiting([&] {
    auto c2 = ConnectTo(*node);
    auto r2 = c2->OpenRegion("r");
    ASSERT_TRUE(r2.ok()) << r2.status();
    EXPECT_TRUE((*r2)->FetchAdd(0, 1).ok());
  });
  // Bounded wait for the server to queue that op.
  for (int i = 0; i < 1000 && node->server->stats().qos_delayed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(node->server->stats().qos_delayed, 1u);
  ASSERT_TRUE(node->server->SetQosLimits({}).ok());  // lifted: the waiting op is served
  waiting.join();
  EXPECT_EQ(*r->FetchAdd(0, 0), 2u);
  node->server->Stop();
  EXPECT_EQ(node->server->SetQosLimits(slow).code(), StatusCode::kUnavailable);
}

TEST(Client, ConnectToSilentAddressFailsWithUnavailable) {
  ClientOptions o;
  o.server = "127.0.0.1:9";
  o.timeout_ms = 300;
  auto c = Client::Connect(o);
  EXPECT_FALSE(c.ok());
  o.server = "not-an-address";
  EXPECT_EQ(Client::Connect(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cosmos
