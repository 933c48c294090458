// LogDevice tests: one conformance suite run against every backend (memory,
// local file, local pmem pool on a file and on DRAM, remote cosmosd region
// through an in-process server), reopen tests for the durable ones, the
// memory device's fault injection, and backend-specific behaviour.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include "common/file_system.h"
#include "common/testing/unprivileged.h"
#include "kv/log_device_file.h"
#include "kv/log_device_memory.h"
#include "kv/log_device_pool.h"
#include "kv/log_device_remote.h"
#include "kv/store.h"
#include "pmem/mapping.h"
#include "pmem/pool.h"
#include "server/server.h"

namespace cosmos::kv {
namespace {

constexpr uint64_t kDeviceSize = 4u << 20;

std::string TempDir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("kv_dev_" + tag + "_XXXXXX"));
  char* d = mkdtemp(tmpl.data());
  EXPECT_NE(d, nullptr);
  return tmpl;
}

// A cosmosd server in this process serving one pool (file or DRAM).
struct RemoteNode {
  std::string dir;
  std::unique_ptr<server::Server> server;
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
  ~RemoteNode() {
    if (server) server->Stop();
    server.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

std::unique_ptr<RemoteNode> StartNode(bool file_pool) {
  auto node = std::make_unique<RemoteNode>();
  std::unique_ptr<pmem::Pool> pool;
  if (file_pool) {
    node->dir = TempDir("node");
    auto p = pmem::Pool::Create(node->dir + "/pool", 32u << 20);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return nullptr;
    pool = std::move(*p);
  } else {
    auto m = pmem::MapDram(32u << 20);
    EXPECT_TRUE(m.ok());
    auto p = pmem::Pool::CreateOnMapping(std::move(*m), "dram0");
    EXPECT_TRUE(p.ok());
    pool = std::move(*p);
  }
  std::vector<server::ServedPool> pools;
  pools.push_back(server::ServedPool{"p0", std::move(pool)});
  server::ServerOptions opts;
  opts.listen_ip = "127.0.0.1";
  opts.port = 0;
  opts.workers = 1;
  auto s = server::Server::Start(opts, std::move(pools));
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return nullptr;
  node->server = std::move(*s);
  return node;
}

// One backend under test: opens a device over the same storage each time
// Open() is called (so a second Open after destroying the first is a reopen).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<std::unique_ptr<LogDevice>> Open() = 0;
  // Whether flushed data survives closing and reopening the device.
  virtual bool persistent() const { return true; }
};

class MemoryBackend final : public Backend {
 public:
  Result<std::unique_ptr<LogDevice>> Open() override {
    return std::unique_ptr<LogDevice>(std::make_unique<MemoryLogDevice>(kDeviceSize));
  }
  bool persistent() const override { return false; }
};

class FileBackend final : public Backend {
 public:
  FileBackend() : dir_(TempDir("file")) {}
  ~FileBackend() override { std::filesystem::remove_all(dir_); }
  Result<std::unique_ptr<LogDevice>> Open() override {
    auto d = FileLogDevice::Open(dir_ + "/kv.log", kDeviceSize);
    if (!d.ok()) return d.status();
    return std::unique_ptr<LogDevice>(std::move(*d));
  }

 private:
  std::string dir_;
};

class PoolFileBackend final : public Backend {
 public:
  PoolFileBackend() : dir_(TempDir("pool")) {}
  ~PoolFileBackend() override { std::filesystem::remove_all(dir_); }
  Result<std::unique_ptr<LogDevice>> Open() override {
    PoolLogDeviceOptions o;
    o.path = dir_ + "/kv.pool";
    o.pool_size = 16u << 20;
    o.region_size = kDeviceSize;
    auto d = PoolLogDevice::Open(o);
    if (!d.ok()) return d.status();
    return std::unique_ptr<LogDevice>(std::move(*d));
  }

 private:
  std::string dir_;
};

class PoolDramBackend final : public Backend {
 public:
  Result<std::unique_ptr<LogDevice>> Open() override {
    auto m = pmem::MapDram(16u << 20);
    if (!m.ok()) return m.status();
    auto p = pmem::Pool::CreateOnMapping(std::move(*m), "dram-kv");
    if (!p.ok()) return p.status();
    auto r = (*p)->CreateRegion("kv", kDeviceSize);
    if (!r.ok()) return r.status();
    return std::unique_ptr<LogDevice>(
        PoolLogDevice::Wrap(std::move(*p), std::move(*r), "local-pool dram (test)"));
  }
  bool persistent() const override { return false; }
};

class RemoteBackend final : public Backend {
 public:
  explicit RemoteBackend(bool file_pool) : node_(StartNode(file_pool)), file_pool_(file_pool) {}
  Result<std::unique_ptr<LogDevice>> Open() override {
    if (!node_) return Status::Unavailable("node did not start");
    RemoteLogDeviceOptions o;
    o.client.server = node_->address();
    o.client.timeout_ms = 5000;
    o.region = "kv";
    o.region_size = kDeviceSize;
    auto d = RemoteLogDevice::Open(o);
    if (!d.ok()) return d.status();
    return std::unique_ptr<LogDevice>(std::move(*d));
  }
  bool persistent() const override { return file_pool_; }

 private:
  std::unique_ptr<RemoteNode> node_;
  bool file_pool_;
};

struct BackendCase {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};

class LogDeviceConformance : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    auto d = backend_->Open();
    ASSERT_TRUE(d.ok()) << d.status();
    dev_ = std::move(*d);
  }
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<LogDevice> dev_;
};

TEST_P(LogDeviceConformance, ReportsSizeDurabilityAndName) {
  EXPECT_EQ(dev_->Size(), kDeviceSize);
  const std::string_view d = dev_->DurabilityLevel();
  EXPECT_TRUE(d == "none" || d == "page" || d == "cacheline" || d == "byte") << d;
  if (!backend_->persistent()) {
    EXPECT_EQ(d, "none");
  }
  EXPECT_FALSE(dev_->BackendName().empty());
}

TEST_P(LogDeviceConformance, PostedWriteIsVisibleAtOnce) {
  ASSERT_TRUE(dev_->Write(1000, "hello", 5).ok());
  char buf[5] = {};
  ASSERT_TRUE(dev_->Read(1000, buf, 5).ok());
  EXPECT_EQ(std::string(buf, 5), "hello");
  // Untouched bytes of a fresh device read as zeros.
  uint64_t z = 1;
  ASSERT_TRUE(dev_->Read(kDeviceSize - 8, &z, 8).ok());
  EXPECT_EQ(z, 0u);
}

TEST_P(LogDeviceConformance, FlushAndWriteAfterFlushSucceedAndAreReadable) {
  std::string big(300000, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 23);
  ASSERT_TRUE(dev_->Write(4096, big.data(), big.size()).ok());
  ASSERT_TRUE(dev_->Flush(4096, big.size()).ok());
  ASSERT_TRUE(dev_->WriteAfterFlush(16, 0x1122334455667788ull).ok());
  std::string back(big.size(), '\0');
  ASSERT_TRUE(dev_->Read(4096, back.data(), back.size()).ok());
  EXPECT_EQ(back, big);
  uint64_t v = 0;
  ASSERT_TRUE(dev_->Read(16, &v, 8).ok());
  EXPECT_EQ(v, 0x1122334455667788ull);
}

TEST_P(LogDeviceConformance, RejectsMisalignedWriteAfterFlush) {
  EXPECT_EQ(dev_->WriteAfterFlush(12, 1).code(), StatusCode::kInvalidArgument);
  // The device stays usable.
  EXPECT_TRUE(dev_->WriteAfterFlush(8, 1).ok());
}

TEST_P(LogDeviceConformance, RejectsOutOfRangeWithoutSideEffects) {
  char b[16] = {};
  EXPECT_EQ(dev_->Write(kDeviceSize - 8, b, 16).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(dev_->Read(UINT64_MAX, b, 8).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(dev_->Read(kDeviceSize, b, 1).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(dev_->Flush(kDeviceSize - 4, 8).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(dev_->WriteAfterFlush(kDeviceSize, 1).code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(dev_->Write(kDeviceSize - 8, "12345678", 8).ok());
  ASSERT_TRUE(dev_->Read(kDeviceSize - 8, b, 8).ok());
  EXPECT_EQ(std::string(b, 8), "12345678");
}

// Several threads write, flush and read disjoint ranges at once (the store's
// flusher, compactor and event loop do this).
TEST_P(LogDeviceConformance, ConcurrentCallsOnDisjointRanges) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const uint64_t base = 65536 + static_cast<uint64_t>(t) * 65536;
      for (int r = 0; r < kRounds; ++r) {
        std::string v(1000 + r, static_cast<char>('A' + t));
        v[0] = static_cast<char>(r);
        const uint64_t off = base + static_cast<uint64_t>(r % 8) * 4096;
        if (!dev_->Write(off, v.data(), v.size()).ok()) ++failures;
        if (!dev_->Flush(off, v.size()).ok()) ++failures;
        std::string back(v.size(), '\0');
        if (!dev_->Read(off, back.data(), back.size()).ok() || back != v) ++failures;
        if (!dev_->WriteAfterFlush(static_cast<uint64_t>(t) * 8, static_cast<uint64_t>(r)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    uint64_t v = 0;
    ASSERT_TRUE(dev_->Read(static_cast<uint64_t>(t) * 8, &v, 8).ok());
    EXPECT_EQ(v, static_cast<uint64_t>(kRounds - 1));
  }
}

// Flushed bytes and the WriteAfterFlush word survive closing and reopening
// the device (for persistent backends).
TEST_P(LogDeviceConformance, FlushedDataSurvivesReopen) {
  if (!backend_->persistent()) GTEST_SKIP() << "backend is not persistent";
  ASSERT_TRUE(dev_->Write(8192, "durable!", 8).ok());
  ASSERT_TRUE(dev_->Flush(8192, 8).ok());
  ASSERT_TRUE(dev_->WriteAfterFlush(24, 4242).ok());
  dev_.reset();
  auto d = backend_->Open();
  ASSERT_TRUE(d.ok()) << d.status();
  char buf[8];
  ASSERT_TRUE((*d)->Read(8192, buf, 8).ok());
  EXPECT_EQ(std::string(buf, 8), "durable!");
  uint64_t v = 0;
  ASSERT_TRUE((*d)->Read(24, &v, 8).ok());
  EXPECT_EQ(v, 4242u);
  EXPECT_EQ((*d)->Size(), kDeviceSize);
}

// The store on this backend: acknowledged writes are there after reopening
// the store and the device.
TEST_P(LogDeviceConformance, StoreRecoversAfterReopen) {
  if (!backend_->persistent()) GTEST_SKIP() << "backend is not persistent";
  StoreOptions so;
  so.background_compaction = false;
  {
    auto store = Store::Open(dev_.get(), so);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < 100; ++i) {
      WriteBatch b;
      const std::string k = "key" + std::to_string(i);
      const std::string v = "value-" + std::to_string(i * i);
      b.Put(k, v);
      auto seq = (*store)->Apply(b);
      ASSERT_TRUE(seq.ok()) << seq.status();
      (*store)->RequestFlush();
      ASSERT_TRUE((*store)->WaitDurable(*seq).ok());
    }
    WriteBatch del;
    del.Delete("key7");
    auto seq = (*store)->Apply(del);
    ASSERT_TRUE(seq.ok());
    (*store)->RequestFlush();
    ASSERT_TRUE((*store)->WaitDurable(*seq).ok());
  }
  dev_.reset();
  auto d = backend_->Open();
  ASSERT_TRUE(d.ok()) << d.status();
  auto store = Store::Open(d->get(), so);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->KeyCount(), 99u);
  std::string v;
  auto got = (*store)->Get("key9", &v);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got);
  EXPECT_EQ(v, "value-81");
  got = (*store)->Get("key7", &v);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(*got);
  store->reset();
}

INSTANTIATE_TEST_SUITE_P(
    Backends, LogDeviceConformance,
    ::testing::Values(
        BackendCase{"Memory", [] { return std::unique_ptr<Backend>(new MemoryBackend()); }},
        BackendCase{"File", [] { return std::unique_ptr<Backend>(new FileBackend()); }},
        BackendCase{"PoolFile", [] { return std::unique_ptr<Backend>(new PoolFileBackend()); }},
        BackendCase{"PoolDram", [] { return std::unique_ptr<Backend>(new PoolDramBackend()); }},
        BackendCase{"RemoteDram",
                    [] { return std::unique_ptr<Backend>(new RemoteBackend(false)); }},
        BackendCase{"RemoteFilePool",
                    [] { return std::unique_ptr<Backend>(new RemoteBackend(true)); }}),
    [](const ::testing::TestParamInfo<BackendCase>& info) { return info.param.name; });

TEST(MemoryLogDevice, CrashKeepsOnlyFlushedBytes) {
  MemoryLogDevice dev(4096);
  ASSERT_TRUE(dev.Write(0, "aaaa", 4).ok());
  ASSERT_TRUE(dev.Flush(0, 4).ok());
  ASSERT_TRUE(dev.Write(8, "bbbb", 4).ok());
  char buf[4];
  ASSERT_TRUE(dev.Read(8, buf, 4).ok());
  EXPECT_EQ(std::string(buf, 4), "bbbb");
  dev.Crash();
  ASSERT_TRUE(dev.Read(0, buf, 4).ok());
  EXPECT_EQ(std::string(buf, 4), "aaaa");
  ASSERT_TRUE(dev.Read(8, buf, 4).ok());
  EXPECT_EQ(std::string(buf, 4), std::string(4, '\0'));
}

TEST(MemoryLogDevice, WriteAfterFlushIsDurableAndAligned) {
  MemoryLogDevice dev(4096);
  ASSERT_TRUE(dev.WriteAfterFlush(16, 42).ok());
  EXPECT_EQ(dev.WriteAfterFlush(12, 1).code(), StatusCode::kInvalidArgument);
  dev.Crash();
  uint64_t v = 0;
  ASSERT_TRUE(dev.Read(16, &v, 8).ok());
  EXPECT_EQ(v, 42u);
}

TEST(MemoryLogDevice, CrashPointFailsThatAndLaterPersists) {
  MemoryLogDevice dev(4096);
  dev.CrashAtPersistPoint(2);
  ASSERT_TRUE(dev.Write(0, "x", 1).ok());
  EXPECT_TRUE(dev.Flush(0, 1).ok());
  EXPECT_FALSE(dev.Flush(0, 1).ok());
  EXPECT_FALSE(dev.WriteAfterFlush(8, 1).ok());
  EXPECT_EQ(dev.persist_count(), 3u);
  dev.Crash();
  EXPECT_TRUE(dev.Flush(0, 1).ok());
}

TEST(MemoryLogDevice, FailNextPersistsThenRecovers) {
  MemoryLogDevice dev(4096);
  dev.FailNextPersists(1);
  EXPECT_EQ(dev.Flush(0, 8).code(), StatusCode::kIoError);
  EXPECT_TRUE(dev.Flush(0, 8).ok());
}

TEST(FileLogDevice, ReportsPageDurabilityAndKeepsSizeOnReopen) {
  // Beside the test binary (a build directory on a disk), not in TMPDIR,
  // which may be tmpfs.
  const std::string dir = "file_log_device_test_" + std::to_string(getpid());
  std::filesystem::create_directory(dir);
  {
    auto dev = FileLogDevice::Open(dir + "/kv.log", 64 * 1024);
    ASSERT_TRUE(dev.ok()) << dev.status();
    const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    auto volatile_fs = IsVolatileFileSystem(fd);
    close(fd);
    ASSERT_TRUE(volatile_fs.ok());
    if (*volatile_fs) {
      std::filesystem::remove_all(dir);
      GTEST_SKIP() << "the build directory is on tmpfs/ramfs: nothing here is page-durable";
    }
    EXPECT_EQ((*dev)->DurabilityLevel(), "page");
  }
  auto dev = FileLogDevice::Open(dir + "/kv.log", 0);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->Size(), 64u * 1024);
  std::filesystem::remove_all(dir);
}

// A log file on tmpfs survives nothing: the level must say so (it said
// "page" before the shared volatile-file-system check).
TEST(FileLogDevice, ReportsNoDurabilityOnTmpfs) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm tmpfs here";
  const std::string path = "/dev/shm/cosmos_kv_log_test_" + std::to_string(getpid());
  std::filesystem::remove(path);
  {
    auto dev = FileLogDevice::Open(path, 64 * 1024);
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_EQ((*dev)->DurabilityLevel(), "none");
  }
  std::filesystem::remove(path);
}

// Creating the log file must make its directory entry durable: in a
// directory that can be written but not opened (so not fsynced), Open fails
// and leaves no file behind instead of serving a log a crash could lose.
TEST(FileLogDevice, NewFileFailsWhenItsDirectoryCannotBeSynced) {
  const std::string dir = TempDir("dirsync");
  const int rc = cosmos::testing::RunAsOwnerOf(dir, [&] {
    if (chmod(dir.c_str(), cosmos::testing::kWriteOnlyDirectory) != 0) return 10;
    auto dev = FileLogDevice::Open(dir + "/kv.log", 64 * 1024);
    if (dev.ok()) return 1;  // served a log whose directory entry may vanish
    if (access((dir + "/kv.log").c_str(), F_OK) == 0) return 2;  // left a file behind
    return 0;
  });
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(rc, 0) << "1: Open succeeded without a directory fsync; 2: file left behind";
}

TEST(FileLogDevice, RejectsBadNewSize) {
  const std::string dir = TempDir("badsize");
  EXPECT_EQ(FileLogDevice::Open(dir + "/kv.log", 1000).status().code(),
            StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST(PoolLogDevice, CreatesPoolAndRegionThenReopensWithoutSize) {
  const std::string dir = TempDir("poolopen");
  PoolLogDeviceOptions o;
  o.path = dir + "/kv.pool";
  o.pool_size = 8u << 20;
  o.region = "kv";
  {
    auto dev = PoolLogDevice::Open(o);
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_TRUE((*dev)->created());
    // Region size 0: the whole free space of the new pool.
    EXPECT_GT((*dev)->Size(), 6u << 20);
    EXPECT_LE((*dev)->Size(), 8u << 20);
    EXPECT_NE((*dev)->BackendName().find("local-pool " + o.path + " region kv"),
              std::string_view::npos)
        << (*dev)->BackendName();
    ASSERT_TRUE((*dev)->Write(0, "pool", 4).ok());
    ASSERT_TRUE((*dev)->Flush(0, 4).ok());
  }
  o.pool_size = 0;  // an existing pool needs no size
  auto dev = PoolLogDevice::Open(o);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_FALSE((*dev)->created());
  // The honest level of a pool file on this file system, as the pool says.
  auto pool = pmem::Pool::Open(o.path, {.read_only = true});
  if (pool.ok()) {
    EXPECT_EQ((*dev)->DurabilityLevel(), pmem::DurabilityName((*pool)->durability()));
  }
  char buf[4];
  ASSERT_TRUE((*dev)->Read(0, buf, 4).ok());
  EXPECT_EQ(std::string(buf, 4), "pool");
  dev->reset();
  std::filesystem::remove_all(dir);
}

TEST(PoolLogDevice, MissingPoolWithoutSizeAndHeldPoolAreErrors) {
  const std::string dir = TempDir("poolerr");
  PoolLogDeviceOptions o;
  o.path = dir + "/kv.pool";
  EXPECT_EQ(PoolLogDevice::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.pool_size = 8u << 20;
  auto first = PoolLogDevice::Open(o);
  ASSERT_TRUE(first.ok()) << first.status();
  // A second opener (another cosmos-kv on the same pool) is refused.
  auto second = PoolLogDevice::Open(o);
  EXPECT_FALSE(second.ok());
  first->reset();
  std::filesystem::remove_all(dir);
}

TEST(PoolLogDevice, DramPoolReportsNoDurability) {
  PoolDramBackend b;
  auto dev = b.Open();
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->DurabilityLevel(), "none");
}

TEST(RemoteLogDevice, ReportsRegionAndRefusesMissingRegionWithoutSize) {
  auto node = StartNode(true);
  ASSERT_NE(node, nullptr);
  RemoteLogDeviceOptions o;
  o.client.server = node->address();
  o.region = "absent";
  auto missing = RemoteLogDevice::Open(o);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status();
  o.region_size = 2u << 20;
  auto dev = RemoteLogDevice::Open(o);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_TRUE((*dev)->created());
  EXPECT_FALSE((*dev)->secure());
  EXPECT_EQ((*dev)->BackendName(), "remote " + node->address() + " region absent (plain)");
  EXPECT_EQ((*dev)->DurabilityLevel(), "page");
  EXPECT_EQ((*dev)->Size(), 2u << 20);
}

TEST(RemoteLogDevice, SecureWithoutCredentialsIsRefused) {
  RemoteLogDeviceOptions o;
  o.client.server = "127.0.0.1:1";
  o.secure = true;
  EXPECT_EQ(RemoteLogDevice::Open(o).status().code(), StatusCode::kFailedPrecondition);
}

TEST(RemoteLogDevice, UnreachableServerIsAnError) {
  RemoteLogDeviceOptions o;
  o.client.server = "127.0.0.1:1";
  o.client.timeout_ms = 300;
  o.region_size = 2u << 20;
  auto dev = RemoteLogDevice::Open(o);
  EXPECT_FALSE(dev.ok());
}

// A node that goes away: the flush fails (never reported durable) and the
// device stays failed, even for calls that would not need the node.
TEST(RemoteLogDevice, LostNodeFailsFlushAndStaysFailed) {
  auto node = StartNode(false);
  ASSERT_NE(node, nullptr);
  RemoteLogDeviceOptions o;
  o.client.server = node->address();
  o.client.timeout_ms = 500;
  o.region_size = 2u << 20;
  auto dev = RemoteLogDevice::Open(o);
  ASSERT_TRUE(dev.ok()) << dev.status();
  ASSERT_TRUE((*dev)->Write(0, "abcd", 4).ok());
  ASSERT_TRUE((*dev)->Flush(0, 4).ok());
  node->server->Stop();
  node->server.reset();
  ASSERT_TRUE((*dev)->Write(64, "efgh", 4).ok());  // posted: may be buffered
  Status f = (*dev)->Flush(64, 4);
  EXPECT_FALSE(f.ok());
  EXPECT_FALSE((*dev)->WriteAfterFlush(8, 1).ok());
  char buf[4];
  EXPECT_FALSE((*dev)->Read(0, buf, 4).ok());
  EXPECT_FALSE((*dev)->Flush(0, 4).ok());
}

}  // namespace
}  // namespace cosmos::kv
