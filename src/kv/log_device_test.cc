// Tests for the LogDevice implementations: memory device fault injection
// and the local-file device.
#include <gtest/gtest.h>

#include <filesystem>

#include "kv/log_device_file.h"
#include "kv/log_device_memory.h"

namespace cosmos::kv {
namespace {

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

TEST(MemoryLogDevice, RejectsOutOfRange) {
  MemoryLogDevice dev(4096);
  char b[8] = {};
  EXPECT_EQ(dev.Write(4090, b, 8).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(dev.Read(UINT64_MAX, b, 8).code(), StatusCode::kOutOfRange);
}

TEST(FileLogDevice, PersistsAcrossReopen) {
  const auto path =
      std::filesystem::temp_directory_path() / ("kv_filedev_" + std::to_string(getpid()));
  std::filesystem::remove(path);
  {
    auto dev = FileLogDevice::Open(path.string(), 64 * 1024);
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_EQ((*dev)->DurabilityLevel(), "page");
    ASSERT_TRUE((*dev)->Write(100, "hello", 5).ok());
    ASSERT_TRUE((*dev)->Flush(100, 5).ok());
    ASSERT_TRUE((*dev)->WriteAfterFlush(8, 7).ok());
    char buf[5];
    ASSERT_TRUE((*dev)->Read(100, buf, 5).ok());
    EXPECT_EQ(std::string(buf, 5), "hello");
  }
  {
    auto dev = FileLogDevice::Open(path.string(), 0);
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_EQ((*dev)->Size(), 64u * 1024);
    char buf[5];
    ASSERT_TRUE((*dev)->Read(100, buf, 5).ok());
    EXPECT_EQ(std::string(buf, 5), "hello");
    uint64_t v;
    ASSERT_TRUE((*dev)->Read(8, &v, 8).ok());
    EXPECT_EQ(v, 7u);
  }
  std::filesystem::remove(path);
}

TEST(FileLogDevice, RejectsBadNewSize) {
  const auto path = std::filesystem::temp_directory_path() / "kv_filedev_badsize";
  std::filesystem::remove(path);
  EXPECT_EQ(FileLogDevice::Open(path.string(), 1000).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cosmos::kv
