// Tests for the transports: in-memory fault injection and kernel UDP batching/GSO.
#include <gtest/gtest.h>
#include <net/if.h>

#include <cstring>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "rpc/transport_memory.h"
#include "rpc/transport_udp.h"

namespace cosmos::rpc {
namespace {

std::vector<std::byte> Bytes(size_t n, uint8_t fill) {
  return std::vector<std::byte>(n, std::byte{fill});
}

size_t Drain(Transport& t, std::vector<std::vector<std::byte>>* got, uint64_t wait_ns = 0) {
  const uint64_t end = MonotonicNanos() + wait_ns;
  RxDatagram rx[32];
  do {
    size_t n;
    while ((n = t.RecvBurst(rx)) > 0) {
      for (size_t i = 0; i < n; ++i) got->emplace_back(rx[i].data, rx[i].data + rx[i].len);
    }
  } while (MonotonicNanos() < end);
  return got->size();
}

TEST(MemoryTransport, DeliversWithoutFaults) {
  auto net = std::make_shared<MemoryNetwork>();
  auto a = OpenMemoryTransport(net, {.address = {1, 1}});
  auto b = OpenMemoryTransport(net, {.address = {1, 2}});
  ASSERT_TRUE(a.ok() && b.ok());
  auto payload = Bytes(100, 7);
  TxDatagram d{{1, 2}, payload.data(), 100};
  EXPECT_EQ((*a)->SendBurst({&d, 1}), 1u);
  std::vector<std::vector<std::byte>> got;
  EXPECT_EQ(Drain(**b, &got), 1u);
  EXPECT_EQ(got[0], payload);
}

TEST(MemoryTransport, RefusesDuplicateAddress) {
  auto net = std::make_shared<MemoryNetwork>();
  auto a = OpenMemoryTransport(net, {.address = {1, 1}});
  auto b = OpenMemoryTransport(net, {.address = {1, 1}});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kAlreadyExists);
}

// Sends 1000 datagrams with the given faults; returns what arrived.
std::vector<std::vector<std::byte>> SendThrough(const FaultConfig& f) {
  auto net = std::make_shared<MemoryNetwork>();
  auto a = OpenMemoryTransport(net, {.address = {1, 1}, .faults = f});
  auto b = OpenMemoryTransport(net, {.address = {1, 2}});
  for (uint32_t i = 0; i < 1000; ++i) {
    std::vector<std::byte> p(8);
    std::memcpy(p.data(), &i, 4);
    TxDatagram d{{1, 2}, p.data(), 8};
    (*a)->SendBurst({&d, 1});
  }
  std::vector<std::vector<std::byte>> got;
  Drain(**b, &got);
  return got;
}

TEST(MemoryTransport, InjectsFaultsDeterministicallyFromSeed) {
  FaultConfig f{.drop = 0.1, .duplicate = 0.1, .reorder = 0.1, .corrupt = 0.1, .seed = 42};
  auto x = SendThrough(f);
  auto y = SendThrough(f);
  EXPECT_EQ(x, y);
  f.seed = 43;
  EXPECT_NE(SendThrough(f), x);
  // Roughly 10% lost and 10% duplicated: the count lands well inside [800, 1200].
  EXPECT_GT(x.size(), 800u);
  EXPECT_LT(x.size(), 1200u);
}

TEST(MemoryTransport, DropAllAndDuplicateAll) {
  EXPECT_TRUE(SendThrough({.drop = 1.0}).empty());
  EXPECT_EQ(SendThrough({.duplicate = 1.0}).size(), 2000u);
}

TEST(MemoryTransport, ReorderSwapsNeighbours) {
  auto got = SendThrough({.reorder = 0.3, .seed = 5});
  ASSERT_EQ(got.size(), 1000u);
  bool out_of_order = false;
  for (size_t i = 1; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, got[i - 1].data(), 4);
    std::memcpy(&b, got[i].data(), 4);
    if (b < a) out_of_order = true;
  }
  EXPECT_TRUE(out_of_order);
}

TEST(MemoryTransport, CorruptFlipsOneBit) {
  auto got = SendThrough({.corrupt = 1.0, .seed = 9});
  ASSERT_EQ(got.size(), 1000u);
  for (uint32_t i = 0; i < 1000; ++i) {
    std::vector<std::byte> p(8);
    std::memcpy(p.data(), &i, 4);
    int bits = 0;
    for (int k = 0; k < 8; ++k) bits += std::popcount(static_cast<unsigned>(p[k] ^ got[i][k]));
    EXPECT_EQ(bits, 1);
  }
}

TEST(MemoryTransport, DelayHoldsDatagramsBack) {
  auto net = std::make_shared<MemoryNetwork>();
  auto a = OpenMemoryTransport(
      net, {.address = {1, 1}, .faults = {.delay = 1.0, .delay_ns = 20'000'000}});
  auto b = OpenMemoryTransport(net, {.address = {1, 2}});
  auto payload = Bytes(10, 1);
  TxDatagram d{{1, 2}, payload.data(), 10};
  (*a)->SendBurst({&d, 1});
  std::vector<std::vector<std::byte>> got;
  EXPECT_EQ(Drain(**b, &got), 0u);
  EXPECT_EQ(Drain(**b, &got, 200'000'000), 1u);
}

TEST(MemoryTransport, BoundedQueueDropsOverflow) {
  auto net = std::make_shared<MemoryNetwork>();
  auto a = OpenMemoryTransport(net, {.address = {1, 1}});
  auto b = OpenMemoryTransport(net, {.address = {1, 2}, .receive_buffer_bytes = 1000});
  auto payload = Bytes(100, 1);
  for (int i = 0; i < 20; ++i) {
    TxDatagram d{{1, 2}, payload.data(), 100};
    (*a)->SendBurst({&d, 1});
  }
  std::vector<std::vector<std::byte>> got;
  EXPECT_EQ(Drain(**b, &got), 10u);
  EXPECT_EQ((*b)->stats().overflow_drops, 10u);
}

TEST(UdpTransport, SendsAndReceivesBurstsOnLoopback) {
  auto a = OpenUdpTransport({.bind = {0x7f000001, 0}});
  auto b = OpenUdpTransport({.bind = {0x7f000001, 0}});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  const NetAddress to = (*b)->local_address();
  std::vector<std::vector<std::byte>> payloads;
  std::vector<TxDatagram> batch;
  for (int i = 0; i < 40; ++i) payloads.push_back(Bytes(100 + i, static_cast<uint8_t>(i)));
  for (auto& p : payloads) batch.push_back({to, p.data(), static_cast<uint32_t>(p.size())});
  EXPECT_EQ((*a)->SendBurst(batch), 40u);
  std::vector<std::vector<std::byte>> got;
  const uint64_t end = MonotonicNanos() + 2'000'000'000;
  while (got.size() < 40 && MonotonicNanos() < end) Drain(**b, &got);
  ASSERT_EQ(got.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(got[i], payloads[i]);
}

TEST(UdpTransport, SplitsGsoRunsIntoOriginalDatagrams) {
  auto a = OpenUdpTransport({.bind = {0x7f000001, 0}});
  auto b = OpenUdpTransport({.bind = {0x7f000001, 0}});
  ASSERT_TRUE(a.ok() && b.ok());
  const NetAddress to = (*b)->local_address();
  // 20 equal 1400-byte datagrams and a short tail: one GSO run where supported.
  std::vector<std::vector<std::byte>> payloads;
  for (int i = 0; i < 20; ++i) payloads.push_back(Bytes(1400, static_cast<uint8_t>(i)));
  payloads.push_back(Bytes(300, 99));
  std::vector<TxDatagram> batch;
  for (auto& p : payloads) batch.push_back({to, p.data(), static_cast<uint32_t>(p.size())});
  EXPECT_EQ((*a)->SendBurst(batch), payloads.size());
  std::vector<std::vector<std::byte>> got;
  const uint64_t end = MonotonicNanos() + 2'000'000'000;
  while (got.size() < payloads.size() && MonotonicNanos() < end) Drain(**b, &got);
  ASSERT_EQ(got.size(), payloads.size()) << (*a)->name();
  for (size_t i = 0; i < payloads.size(); ++i) EXPECT_EQ(got[i], payloads[i]);
  if ((*a)->name().find("gso") != std::string_view::npos) {
    EXPECT_GT((*a)->stats().gso_sends, 0u);
  }
}

// Datagrams packed back to back in one buffer (as the Rpc endpoint queues
// them) and two-part datagrams whose tail directly follows or lives apart
// from the head: the transport may merge contiguous pieces into one iovec,
// and every datagram must still arrive with exactly its own bytes.
TEST(UdpTransport, PackedAndTwoPartDatagramsKeepTheirBoundaries) {
  auto a = OpenUdpTransport({.bind = {0x7f000001, 0}});
  auto b = OpenUdpTransport({.bind = {0x7f000001, 0}});
  ASSERT_TRUE(a.ok() && b.ok());
  const NetAddress to = (*b)->local_address();
  constexpr size_t kSize = 1200;
  constexpr size_t kPacked = 30;
  std::vector<std::byte> packed(kPacked * kSize);
  for (size_t i = 0; i < packed.size(); ++i)
    packed[i] = std::byte(static_cast<uint8_t>(i * 7 + i / kSize));
  std::vector<std::byte> apart = Bytes(kSize - 40, 0xab);
  std::vector<TxDatagram> batch;
  std::vector<std::vector<std::byte>> expect;
  for (size_t i = 0; i < kPacked; ++i) {
    const std::byte* p = packed.data() + i * kSize;
    if (i % 3 == 1) {
      // Head and a tail that is contiguous with it.
      batch.push_back({to, p, 40, p + 40, static_cast<uint32_t>(kSize - 40)});
      expect.emplace_back(p, p + kSize);
    } else if (i % 3 == 2) {
      // Head here, tail elsewhere.
      batch.push_back({to, p, 40, apart.data(), static_cast<uint32_t>(apart.size())});
      std::vector<std::byte> e(kSize);
      std::memcpy(e.data(), p, 40);
      std::memcpy(e.data() + 40, apart.data(), apart.size());
      expect.push_back(std::move(e));
    } else {
      batch.push_back({to, p, static_cast<uint32_t>(kSize)});
      expect.emplace_back(p, p + kSize);
    }
  }
  // A shorter last datagram, packed right after the others.
  batch.push_back({to, packed.data(), 500});
  expect.emplace_back(packed.data(), packed.data() + 500);
  EXPECT_EQ((*a)->SendBurst(batch), batch.size());
  std::vector<std::vector<std::byte>> got;
  const uint64_t end = MonotonicNanos() + 2'000'000'000;
  while (got.size() < expect.size() && MonotonicNanos() < end) Drain(**b, &got);
  ASSERT_EQ(got.size(), expect.size()) << (*a)->name();
  for (size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(got[i], expect[i]) << "datagram " << i;
}

TEST(NetAddress, ParsesAndPrints) {
  auto a = NetAddress::Parse("10.1.2.3:4567");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ToString(), "10.1.2.3:4567");
  EXPECT_EQ(NetAddress::Parse("localhost:1")->ip, 0x7f000001u);
  EXPECT_FALSE(NetAddress::Parse("10.1.2.3").ok());
  EXPECT_FALSE(NetAddress::Parse("10.1.2:80").ok());
  EXPECT_FALSE(NetAddress::Parse("10.1.2.3:99999").ok());
}

TEST(NetAddress, ParsesAndPrintsIpv6) {
  auto a = NetAddress::Parse("[::1]:7410");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->v6);
  EXPECT_EQ(a->port, 7410);
  EXPECT_TRUE(a->IsLoopback());
  EXPECT_EQ(a->ToString(), "[::1]:7410");
  // Without brackets the last colon starts the port (cosmosd builds
  // listen + ":" + port).
  auto b = NetAddress::Parse(":::7410");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->v6);
  EXPECT_EQ(b->ToString(), "[::]:7410");
  EXPECT_EQ(NetAddress::Parse("fe80::1:2:80")->ToString(), "[fe80::1:2]:80");
  // A v4-mapped address is the IPv4 address.
  auto m = NetAddress::Parse("[::ffff:10.1.2.3]:9");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->v6);
  EXPECT_EQ(*m, (NetAddress{0x0a010203, 9}));
  EXPECT_FALSE(NetAddress::Parse("[::1]").ok());
  EXPECT_FALSE(NetAddress::Parse("[::g]:1").ok());
  // Distinct host keys for v4 and v6, equal for the same host on two ports.
  EXPECT_NE(a->HostKey(), (NetAddress{0x7f000001, 7410}).HostKey());
  NetAddress other_port = *a;
  other_port.port = 1;
  EXPECT_EQ(a->HostKey(), other_port.HostKey());
  // Socket address round trips, including v4 on an IPv6 socket (v4-mapped).
  sockaddr_storage ss;
  ASSERT_EQ(a->ToSockaddr(AF_INET6, &ss), sizeof(sockaddr_in6));
  EXPECT_EQ(NetAddress::FromSockaddr(ss), *a);
  EXPECT_EQ(a->ToSockaddr(AF_INET, &ss), 0u);
  ASSERT_EQ(m->ToSockaddr(AF_INET6, &ss), sizeof(sockaddr_in6));
  EXPECT_EQ(NetAddress::FromSockaddr(ss), *m);
}

// Link-local IPv6 with a zone: "%interface" by name or index, printed by
// name, carried in the socket address both ways, part of equality and of
// the host key (fe80::1 on two interfaces are two neighbours).
TEST(NetAddress, ParsesAndPrintsIpv6Zones) {
  const unsigned lo = ::if_nametoindex("lo");
  if (lo == 0) GTEST_SKIP() << "no 'lo' interface";
  auto by_name = NetAddress::Parse("[fe80::1%lo]:7410");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_TRUE(by_name->v6);
  EXPECT_EQ(by_name->scope_id, lo);
  EXPECT_EQ(by_name->ToString(), "[fe80::1%lo]:7410");
  auto by_index = NetAddress::Parse("fe80::1%" + std::to_string(lo) + ":7410");
  ASSERT_TRUE(by_index.ok()) << by_index.status();
  EXPECT_EQ(*by_index, *by_name);
  auto plain = NetAddress::Parse("[fe80::1]:7410");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->scope_id, 0u);
  EXPECT_NE(*plain, *by_name);
  EXPECT_NE(plain->HostKey(), by_name->HostKey());
  sockaddr_storage ss;
  ASSERT_EQ(by_name->ToSockaddr(AF_INET6, &ss), sizeof(sockaddr_in6));
  sockaddr_in6 s6;
  std::memcpy(&s6, &ss, sizeof(s6));
  EXPECT_EQ(s6.sin6_scope_id, lo);
  EXPECT_EQ(NetAddress::FromSockaddr(ss), *by_name);
  // An interface index without a name prints as the number.
  NetAddress unnamed = *plain;
  unnamed.scope_id = 999999;
  EXPECT_EQ(unnamed.ToString(), "[fe80::1%999999]:7410");
  EXPECT_FALSE(NetAddress::Parse("[fe80::1%no-such-if0]:1").ok());
  EXPECT_FALSE(NetAddress::Parse("[fe80::1%]:1").ok());
  EXPECT_FALSE(NetAddress::Parse("10.0.0.1%lo:1").ok()) << "a zone needs an IPv6 address";
  EXPECT_FALSE(NetAddress::Parse("[::ffff:10.0.0.1%lo]:1").ok());
}

// A datagram over ::1, and an IPv4 peer of a dual-stack socket bound to ::,
// seen as its IPv4 address. Skipped where the host has no IPv6 loopback.
TEST(UdpTransport, CarriesIpv6AndDualStackDatagrams) {
  auto any6 = NetAddress::Parse("[::]:0");
  auto loop6 = NetAddress::Parse("[::1]:0");
  ASSERT_TRUE(any6.ok() && loop6.ok());
  auto server = OpenUdpTransport({.bind = *any6});
  if (!server.ok()) GTEST_SKIP() << "no IPv6 socket: " << server.status();
  auto c6 = OpenUdpTransport({.bind = *loop6});
  if (!c6.ok()) GTEST_SKIP() << "no IPv6 loopback: " << c6.status();
  auto c4 = OpenUdpTransport({.bind = {0x7f000001, 0}});
  ASSERT_TRUE(c4.ok());
  NetAddress to6 = *loop6;
  to6.port = (*server)->local_address().port;
  const NetAddress to4{0x7f000001, to6.port};
  for (auto* client : {c6->get(), c4->get()}) {
    const std::byte msg[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
    const NetAddress to = client == c6->get() ? to6 : to4;
    TxDatagram d{to, msg, 3};
    ASSERT_EQ(client->SendBurst({&d, 1}), 1u) << to.ToString();
    RxDatagram rx[4];
    size_t n = 0;
    for (int i = 0; i < 2000 && n == 0; ++i) {
      n = (*server)->RecvBurst(rx);
      if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(n, 1u) << to.ToString();
    EXPECT_EQ(rx[0].len, 3u);
    NetAddress want = client->local_address();
    EXPECT_EQ(rx[0].from, want) << rx[0].from.ToString() << " vs " << want.ToString();
    // And the answer back to the address as received.
    TxDatagram back{rx[0].from, msg, 3};
    ASSERT_EQ((*server)->SendBurst({&back, 1}), 1u);
    RxDatagram got[4];
    size_t m = 0;
    for (int i = 0; i < 2000 && m == 0; ++i) {
      m = client->RecvBurst(got);
      if (m == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(m, 1u);
  }
  // An IPv4 socket cannot reach an IPv6 peer: counted as a send error.
  const std::byte one[1] = {std::byte{9}};
  TxDatagram unreachable{to6, one, 1};
  const uint64_t errors = (*c4)->stats().send_errors;
  EXPECT_EQ((*c4)->SendBurst({&unreachable, 1}), 0u);
  EXPECT_EQ((*c4)->stats().send_errors, errors + 1);
  EXPECT_LE((*server)->PathMtu(to6), (*server)->max_datagram_size());
  EXPECT_FALSE((*server)->congestion_controlled(to6)) << "::1 stays inside the host";
}

}  // namespace
}  // namespace cosmos::rpc
