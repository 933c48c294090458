// RESP2 parser tests: multibulk, inline, pipelining, half-sent frames,
// limits and hostile input; reply encoders.
#include "kv/resp.h"

#include <gtest/gtest.h>

#include <random>

namespace cosmos::kv {
namespace {

std::vector<std::string> ToStrings(const std::vector<std::string_view>& v) {
  return std::vector<std::string>(v.begin(), v.end());
}

TEST(RespParser, ParsesMultibulkCommand) {
  RespParser p;
  std::string in = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
  size_t consumed;
  std::vector<std::string_view> args;
  ASSERT_EQ(p.Parse(in, &consumed, &args), RespParser::Outcome::kCommand);
  EXPECT_EQ(consumed, in.size());
  EXPECT_EQ(ToStrings(args), (std::vector<std::string>{"SET", "k", "hello"}));
}

TEST(RespParser, ParsesPipelinedCommandsOneByOne) {
  RespParser p;
  std::string in = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n";
  std::vector<std::vector<std::string>> got;
  size_t off = 0, consumed;
  std::vector<std::string_view> args;
  while (off < in.size()) {
    ASSERT_EQ(p.Parse(std::string_view(in).substr(off), &consumed, &args),
              RespParser::Outcome::kCommand);
    got.push_back(ToStrings(args));
    off += consumed;
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1], (std::vector<std::string>{"GET", "a"}));
  EXPECT_EQ(got[2], (std::vector<std::string>{"PING"}));
}

TEST(RespParser, HandlesEveryByteSplitOfAFrame) {
  const std::string frame = "*2\r\n$4\r\nECHO\r\n$12\r\nhello\r\nworld\r\n";
  for (size_t cut = 0; cut < frame.size(); ++cut) {
    RespParser p;
    size_t consumed;
    std::vector<std::string_view> args;
    std::string buf = frame.substr(0, cut);
    auto o = p.Parse(buf, &consumed, &args);
    ASSERT_EQ(o, RespParser::Outcome::kNeedMore) << "cut " << cut;
    buf = frame;
    ASSERT_EQ(p.Parse(buf, &consumed, &args), RespParser::Outcome::kCommand) << "cut " << cut;
    EXPECT_EQ(consumed, frame.size());
    EXPECT_EQ(args[1], "hello\r\nworld");
  }
}

TEST(RespParser, ParsesInlineWithQuotes) {
  RespParser p;
  std::string in = "SET k \"a b\\x41\" 'c\\'d'\r\n";
  size_t consumed;
  std::vector<std::string_view> args;
  ASSERT_EQ(p.Parse(in, &consumed, &args), RespParser::Outcome::kCommand);
  EXPECT_EQ(ToStrings(args), (std::vector<std::string>{"SET", "k", "a bA", "c'd"}));
  std::string bad = "SET \"unterminated\r\n";
  RespParser q;
  EXPECT_EQ(q.Parse(bad, &consumed, &args), RespParser::Outcome::kError);
  EXPECT_NE(q.error().find("unbalanced quotes"), std::string::npos);
}

TEST(RespParser, EmptyArrayIsAnEmptyCommand) {
  RespParser p;
  size_t consumed;
  std::vector<std::string_view> args;
  ASSERT_EQ(p.Parse("*0\r\n", &consumed, &args), RespParser::Outcome::kCommand);
  EXPECT_TRUE(args.empty());
  EXPECT_EQ(consumed, 4u);
}

TEST(RespParser, RejectsBadAndHugeLengths) {
  struct Case {
    std::string in, error;
  } cases[] = {
      {"*abc\r\n", "invalid multibulk length"},  {"*99999999999\r\n", "invalid multibulk length"},
      {"*1\r\n$-5\r\n", "invalid bulk length"},  {"*1\r\n$999999999999\r\n", "invalid bulk length"},
      {"*1\r\n:5\r\n", "expected '$', got ':'"}, {"*1\r\n$x\r\n", "invalid bulk length"},
  };
  for (const auto& c : cases) {
    RespParser p;
    size_t consumed;
    std::vector<std::string_view> args;
    ASSERT_EQ(p.Parse(c.in, &consumed, &args), RespParser::Outcome::kError) << c.in;
    EXPECT_NE(p.error().find(c.error), std::string::npos) << p.error();
  }
}

TEST(RespParser, EnforcesConfiguredLimits) {
  RespLimits l;
  l.max_bulk_len = 10;
  l.max_array_len = 3;
  l.max_inline_len = 32;
  size_t consumed;
  std::vector<std::string_view> args;
  RespParser a(l);
  EXPECT_EQ(a.Parse("*1\r\n$11\r\n", &consumed, &args), RespParser::Outcome::kError);
  RespParser b(l);
  EXPECT_EQ(b.Parse("*4\r\n", &consumed, &args), RespParser::Outcome::kError);
  RespParser c(l);
  EXPECT_EQ(c.Parse(std::string(40, 'a'), &consumed, &args), RespParser::Outcome::kError);
  EXPECT_NE(c.error().find("too big inline request"), std::string::npos);
  RespParser d(l);
  EXPECT_EQ(d.Parse("*1\r\n" + std::string(40, '$'), &consumed, &args),
            RespParser::Outcome::kError);
}

TEST(RespParser, ReportsMissingBulkBytes) {
  RespParser p;
  size_t consumed;
  std::vector<std::string_view> args;
  std::string in = "*1\r\n$1000\r\nabc";
  ASSERT_EQ(p.Parse(in, &consumed, &args), RespParser::Outcome::kNeedMore);
  EXPECT_EQ(p.bulk_bytes_missing(in.size()), 1000u + 2 - 3);
}

TEST(RespParser, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(1);
  const char alphabet[] = "*$\r\n0123456789-abc \"'\\";
  for (int i = 0; i < 20000; ++i) {
    std::string in(rng() % 64, '\0');
    for (auto& ch : in) ch = alphabet[rng() % (sizeof(alphabet) - 1)];
    RespParser p;
    size_t off = 0, consumed;
    std::vector<std::string_view> args;
    while (off < in.size()) {
      auto o = p.Parse(std::string_view(in).substr(off), &consumed, &args);
      if (o != RespParser::Outcome::kCommand) break;
      ASSERT_GT(consumed, 0u);
      off += consumed;
    }
  }
}

TEST(RespEncoders, EncodeRedisReplies) {
  std::string out;
  AppendSimple(&out, "OK");
  AppendError(&out, "ERR bad\r\nthing");
  AppendInteger(&out, -42);
  AppendBulk(&out, "hi");
  AppendNull(&out);
  AppendArrayHeader(&out, 2);
  EXPECT_EQ(out, "+OK\r\n-ERR bad  thing\r\n:-42\r\n$2\r\nhi\r\n$-1\r\n*2\r\n");
}

}  // namespace
}  // namespace cosmos::kv
