// Tests of the one size grammar shared by every binary and config file.
#include "common/size.h"

#include <gtest/gtest.h>

namespace cosmos {
namespace {

TEST(ParseSize, AcceptsBytesAndEverySpellingOfEachUnit) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("7b"), 7u);
  for (const char* s : {"64M", "64m", "64MB", "64mb", "64MiB", "64mib", "64Mb"}) {
    auto v = ParseSize(s);
    ASSERT_TRUE(v.ok()) << s << ": " << v.status();
    EXPECT_EQ(*v, 64ull << 20) << s;
  }
  EXPECT_EQ(*ParseSize("16K"), 16u << 10);
  EXPECT_EQ(*ParseSize("16kib"), 16u << 10);
  EXPECT_EQ(*ParseSize("2G"), 2ull << 30);
  EXPECT_EQ(*ParseSize("2gb"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1T"), 1ull << 40);
  EXPECT_EQ(*ParseSize("1TiB"), 1ull << 40);
}

TEST(ParseSize, RejectsBadUnitsSignsAndOverflowWithOneMessage) {
  for (const char* s : {"", "-1", "+5", "M", " 64M", "64 M", "64Q", "64MiBs", "1.5G", "64iB",
                        "99999999999999999999", "99999999999T"}) {
    auto v = ParseSize(s);
    ASSERT_FALSE(v.ok()) << s;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find("invalid size '" + std::string(s) + "'"), std::string::npos)
        << v.status();
    EXPECT_NE(v.status().message().find("e.g. 4096, 64K, 64M, 64MiB, 64mb"), std::string::npos);
  }
  EXPECT_NE(ParseSize("64Q").status().message().find("unknown unit 'Q'"), std::string::npos);
}

TEST(FormatSize, RoundTripsThroughParseSize) {
  EXPECT_EQ(FormatSize(64ull << 20), "64M");
  EXPECT_EQ(FormatSize(1536u << 10), "1536K");
  EXPECT_EQ(FormatSize(4097), "4097");
  EXPECT_EQ(FormatSize(0), "0");
  for (uint64_t n : {uint64_t{1}, uint64_t{4096}, uint64_t{3} << 30, UINT64_MAX}) {
    EXPECT_EQ(*ParseSize(FormatSize(n)), n);
  }
}

}  // namespace
}  // namespace cosmos
