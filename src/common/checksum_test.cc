// Tests for the checksum wrappers.
#include "common/checksum.h"

#include <gtest/gtest.h>

#include <string>

namespace cosmos {
namespace {

TEST(Checksum64, DetectsSingleBitFlipAndDependsOnSeed) {
  std::string data(4096, 'x');
  const uint64_t a = Checksum64(data.data(), data.size());
  data[1234] ^= 0x01;
  EXPECT_NE(a, Checksum64(data.data(), data.size()));
  EXPECT_NE(Checksum64(data.data(), data.size(), 1), Checksum64(data.data(), data.size(), 2));
}

TEST(Checksum64, StreamingEqualsOneShot) {
  std::string data = "the quick brown fox jumps over the lazy dog";
  Checksum64Builder b(7);
  b.Update(data.data(), 10);
  b.Update(data.data() + 10, data.size() - 10);
  EXPECT_EQ(b.Finish(), Checksum64(data.data(), data.size(), 7));
}

}  // namespace
}  // namespace cosmos
