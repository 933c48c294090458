// cosmosd in secure mode as a real process: a client with pinned platform key
// and measurement writes, reads, flushes and verifies a secure region through
// the secure channel; a wrong platform key, a client off the allow list and a
// client without rights on the region are refused; the pool file holds no
// written plaintext; a bit flip in the pool file is reported as an integrity
// error after a restart, never as wrong data.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cosmos/client.h"
#include "pmem/pool.h"
#include "rpm_harness.h"
#include "sec/key_files.h"

namespace {

std::vector<std::byte> Bytes(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SecDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir_.path + "/node").ok());
    ASSERT_TRUE(cosmos::sec::GeneratePlatformKeys(dir_.path + "/impostor").ok());
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

  cosmos::Result<std::unique_ptr<cosmos::Client>> ConnectAs(const rpm_test::Daemon& d,
                                                            const std::string& name,
                                                            const std::string& node = "node") {
    cosmos::ClientOptions o;
    o.server = d.address();
    o.timeout_ms = 10000;
    if (!name.empty()) {
      o.platform_public_key_file = dir_.path + "/" + node + "/platform.pub";
      o.measurement_file = dir_.path + "/" + node + "/measurement";
      o.client_key_file = dir_.path + "/clients/" + name + ".key";
    }
    return cosmos::Client::Connect(o);
  }

  rpm_test::TempDir dir_;
  std::string pool_;
};

TEST_F(SecDaemonTest, SecureRegionRoundTripsRefusesOthersAndDetectsTampering) {
  const std::string secret = "COSMOS-SECURE-PLAINTEXT-MARKER-42";
  const std::string big(4096, 'K');
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    auto alice = ConnectAs(d, "alice");
    ASSERT_TRUE(alice.ok()) << alice.status();
    auto info = (*alice)->CreateRegion("vault", 64 * 1024, {.secure = true});
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_TRUE(info->secure);
    EXPECT_EQ(info->size, 64u * 1024);
    auto r = (*alice)->OpenRegion("vault");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE((*r)->Write(0, Bytes(secret)).ok());
    ASSERT_TRUE((*r)->Write(8192, Bytes(big)).ok());
    ASSERT_TRUE((*r)->Flush(0, 64 * 1024).ok());
    std::vector<std::byte> out(secret.size());
    ASSERT_TRUE((*r)->Read(0, out).ok());
    EXPECT_EQ(out, Bytes(secret));
    std::vector<std::byte> out_big(big.size());
    ASSERT_TRUE((*r)->Read(8192, out_big).ok());
    EXPECT_EQ(out_big, Bytes(big));
    EXPECT_TRUE((*r)->Verify(0, Bytes(secret)).ok());
    EXPECT_EQ((*r)->Verify(0, Bytes("COSMOS-SECURE-PLAINTEXT-MARKER-43")).code(),
              cosmos::StatusCode::kIntegrityViolation);

    // bob may connect but holds no right on alice's region.
    auto bob = ConnectAs(d, "bob");
    ASSERT_TRUE(bob.ok()) << bob.status();
    // Opening needs a right in the region's sealed access list.
    auto rb = (*bob)->OpenRegion("vault");
    EXPECT_EQ(rb.status().code(), cosmos::StatusCode::kPermissionDenied) << rb.status();
    // A plain connection cannot reach a secure region at all, nor learn of it.
    auto plain = ConnectAs(d, "");
    ASSERT_TRUE(plain.ok()) << plain.status();
    auto rp = (*plain)->OpenRegion("vault");
    EXPECT_EQ(rp.status().code(), cosmos::StatusCode::kNotFound) << rp.status();
    // mallory is not on the allow list; a client pinning another platform
    // key refuses the node's quote.
    EXPECT_EQ(ConnectAs(d, "mallory").status().code(), cosmos::StatusCode::kPermissionDenied);
    EXPECT_EQ(ConnectAs(d, "alice", "impostor").status().code(),
              cosmos::StatusCode::kIntegrityViolation);
    r->reset();
    int status = d.Stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }

  // The pool file holds no written plaintext.
  std::string file = FileBytes(pool_);
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(file.find(secret), std::string::npos);
  EXPECT_EQ(file.find(std::string(64, 'K')), std::string::npos);

  // Restart: the data reads back.
  {
    rpm_test::Daemon d;
    ASSERT_TRUE(StartDaemon(d));
    auto alice = ConnectAs(d, "alice");
    ASSERT_TRUE(alice.ok()) << alice.status();
    auto r = (*alice)->OpenRegion("vault");
    ASSERT_TRUE(r.ok());
    std::vector<std::byte> out(secret.size());
    ASSERT_TRUE((*r)->Read(0, out).ok());
    EXPECT_EQ(out, Bytes(secret));
    r->reset();
    d.Stop(SIGTERM);
  }

  // Flip one bit of block 0's ciphertext (the data area ends the region).
  uint64_t region_offset = 0, region_size = 0;
  {
    auto pool = cosmos::pmem::Pool::Open(pool_, {.read_only = true});
    ASSERT_TRUE(pool.ok()) << pool.status();
    for (const auto& info : (*pool)->ListRegions()) {
      if (info.name == "vault") {
        region_offset = info.offset;
        region_size = info.size;
      }
    }
  }
  ASSERT_GT(region_size, 64u * 1024);
  {
    std::fstream f(pool_, std::ios::in | std::ios::out | std::ios::binary);
    const std::streamoff at =
        static_cast<std::streamoff>(region_offset + region_size - 64 * 1024 + 5);
    f.seekg(at);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x04);
    f.seekp(at);
    f.write(&c, 1);
  }
  rpm_test::Daemon d;
  ASSERT_TRUE(StartDaemon(d));
  auto alice = ConnectAs(d, "alice");
  ASSERT_TRUE(alice.ok()) << alice.status();
  auto r = (*alice)->OpenRegion("vault");
  ASSERT_TRUE(r.ok());
  std::vector<std::byte> out(secret.size());
  EXPECT_EQ((*r)->Read(0, out).code(), cosmos::StatusCode::kIntegrityViolation);
  // Other blocks are still served.
  std::vector<std::byte> out_big(big.size());
  ASSERT_TRUE((*r)->Read(8192, out_big).ok());
  EXPECT_EQ(out_big, Bytes(big));
}

TEST_F(SecDaemonTest, PlainNodeRefusesSecureConnects) {
  rpm_test::Daemon d;
  ASSERT_TRUE(d.Start(dir_.path, {"--listen", "127.0.0.1", "--pool", pool_ + ",size=16,create"}));
  auto alice = ConnectAs(d, "alice");
  EXPECT_FALSE(alice.ok());
  auto plain = ConnectAs(d, "");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)->CreateRegion("v", 64 * 1024, {.secure = true}).status().code(),
            cosmos::StatusCode::kFailedPrecondition);
}

}  // namespace
