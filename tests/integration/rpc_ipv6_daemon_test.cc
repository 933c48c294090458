// IPv6 end to end (issue 15): cosmosd listening on "::" (dual stack) serves a
// plain and a secure client connecting to [::1]:port and an IPv4 client on
// 127.0.0.1:port, each writing, flushing and reading back. Skipped where the
// host has no IPv6 loopback.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cosmos/client.h"
#include "rpm_harness.h"
#include "sec/key_files.h"

namespace {

using cosmos::Status;

bool HaveIpv6Loopback() {
  int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

// Connects to `address`, creates region `name` (secure or not), writes,
// flushes and reads back 8 blocks; the first error.
Status Work(const std::string& address, const std::string& name, const std::string& keys) {
  cosmos::ClientOptions o;
  o.server = address;
  o.timeout_ms = 10000;
  if (!keys.empty()) {
    o.platform_public_key_file = keys + "/node/platform.pub";
    o.measurement_file = keys + "/node/measurement";
    o.client_key_file = keys + "/clients/alice.key";
  }
  auto c = cosmos::Client::Connect(o);
  if (!c.ok()) return c.status();
  auto info = (*c)->CreateRegion(name, 64 * 1024, {.secure = !keys.empty()});
  if (!info.ok()) return info.status();
  auto r = (*c)->OpenRegion(name);
  if (!r.ok()) return r.status();
  for (int i = 0; i < 8; ++i) {
    std::vector<std::byte> data(4096, static_cast<std::byte>(i + 7));
    const uint64_t off = static_cast<uint64_t>(i) * 4096;
    Status s = (*r)->Write(off, data);
    if (s.ok()) s = (*r)->Flush(off, data.size());
    if (!s.ok()) return s;
    std::vector<std::byte> out(4096);
    s = (*r)->Read(off, out);
    if (!s.ok()) return s;
    if (out != data) return Status::Internal("read returned other bytes than written");
  }
  return Status::Ok();
}

TEST(RpcIpv6Daemon, CosmosdListeningOnAllIpv6AddressesServesIpv6AndIpv4Clients) {
  if (!HaveIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback on this host";
  rpm_test::TempDir dir;
  ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir.path + "/node").ok());
  ASSERT_TRUE(cosmos::sec::GenerateClientCredentials(dir.path + "/clients", "alice").ok());
  rpm_test::Daemon daemon;
  ASSERT_TRUE(
      daemon.Start(dir.path, {"--listen", "::", "--workers", "2", "--pool",
                              "main=" + dir.path + "/v6.pool,size=16M,create", "--platform-keys",
                              dir.path + "/node", "--allow", dir.path + "/clients/alice.pub"}));
  const std::string v6 = "[::1]:" + std::to_string(daemon.port());
  const std::string v4 = "127.0.0.1:" + std::to_string(daemon.port());
  Status plain6 = Work(v6, "plain6", "");
  EXPECT_TRUE(plain6.ok()) << plain6;
  Status secure6 = Work(v6, "secure6", dir.path);
  EXPECT_TRUE(secure6.ok()) << secure6;
  Status plain4 = Work(v4, "plain4", "");
  EXPECT_TRUE(plain4.ok()) << plain4;
}

// The config check names both families now.
TEST(RpcIpv6Daemon, CosmosdRefusesAListenAddressThatIsNeither) {
  rpm_test::TempDir dir;
  rpm_test::Daemon daemon;
  EXPECT_FALSE(daemon.Start(
      dir.path, {"--listen", "::g", "--pool", "main=" + dir.path + "/x.pool,size=16M,create"}));
}

}  // namespace
