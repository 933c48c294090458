// Tests for Status, Result and the propagation macros.
#include "cosmos/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>

#include "cosmos/result.h"

namespace cosmos {
namespace {

Status FailIf(bool fail) { return fail ? Status::Corruption("pool p: header") : Status::Ok(); }

Status Propagates(bool fail) {
  COSMOS_RETURN_IF_ERROR(FailIf(fail));
  return Status::NotFound("reached end");
}

Result<int> Half(int v) {
  if (v % 2) return Status::InvalidArgument("odd");
  return v / 2;
}

Result<int> Quarter(int v) {
  COSMOS_ASSIGN_OR_RETURN(int h, Half(v));
  COSMOS_ASSIGN_OR_RETURN(auto q, Half(h));
  return q;
}

TEST(Status, OkByDefaultAndPrintsCodeAndMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
  Status c = Status::Corruption("pool a: region table checksum mismatch");
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.code(), StatusCode::kCorruption);
  EXPECT_EQ(c.ToString(), "corruption: pool a: region table checksum mismatch");
}

TEST(Status, WithContextPrefixesMessageAndKeepsCode) {
  Status s = Status::IoError("fsync failed").WithContext("pool /x");
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_EQ(s.message(), "pool /x: fsync failed");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(Status, FromErrnoMapsCommonErrors) {
  EXPECT_EQ(Status::FromErrno(ENOENT, "open").code(), StatusCode::kNotFound);
  EXPECT_EQ(Status::FromErrno(EROFS, "open").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Status::FromErrno(ENOSPC, "write").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(Status::FromErrno(EIO, "fsync").code(), StatusCode::kIoError);
  EXPECT_NE(Status::FromErrno(EIO, "fsync").message().find("fsync: "), std::string::npos);
}

TEST(Status, CodeByteRoundTripsAndUnknownBecomesInternal) {
  for (uint8_t b = 0; b <= static_cast<uint8_t>(StatusCode::kWouldBlock); ++b) {
    EXPECT_EQ(static_cast<uint8_t>(StatusCodeFromByte(b)), b);
    EXPECT_NE(StatusCodeName(StatusCodeFromByte(b)), "unknown");
  }
  EXPECT_EQ(StatusCodeName(StatusCode::kAborted), "aborted");
  EXPECT_EQ(StatusCodeName(StatusCode::kWouldBlock), "would_block");
  EXPECT_EQ(StatusCodeFromByte(200), StatusCode::kInternal);
}

TEST(Status, ReturnIfErrorPropagatesFirstFailure) {
  EXPECT_EQ(Propagates(true).code(), StatusCode::kCorruption);
  EXPECT_EQ(Propagates(false).code(), StatusCode::kNotFound);
}

TEST(Result, AssignOrReturnChainsValuesAndErrors) {
  auto q = Quarter(8);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(6).value_or(-1), -1);
}

TEST(Result, HoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> r(Status::NotFound("nope"));
  EXPECT_DEATH((void)r.value(), "not_found: nope");
}

}  // namespace
}  // namespace cosmos
