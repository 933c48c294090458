// Tests of the RPM batch protocol: round trips and rejection of malformed input.
#include "protocol/rpm_protocol.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "common/endian.h"

namespace cosmos::protocol {
namespace {

std::vector<std::byte> Bytes(std::string_view s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

TEST(RpmProtocol, RequestRoundTripsEveryOpInOrder) {
  RequestBuilder b;
  auto data = Bytes("hello");
  Range ranges[2] = {{0, 5}, {64, 8}};
  b.Write(7, 100, data);
  b.Read(7, 100, 5);
  b.Flush(7, ranges);
  b.WriteAfterFlush(7, 64, 42);
  b.CompareAndSwap(7, 8, 1, 2);
  b.FetchAdd(7, 16, 3);
  b.Verify(7, ranges);
  b.CreateRegion("log", 4096, true, "p0");
  b.OpenRegion("log");
  b.ListRegions();
  b.DeleteRegion("log");
  b.Stat();
  std::vector<Op> ops;
  ASSERT_TRUE(ParseRequest(b.bytes(), &ops).ok());
  ASSERT_EQ(ops.size(), 12u);
  EXPECT_EQ(ops[0].opcode, Opcode::kWrite);
  EXPECT_EQ(ops[0].offset, 100u);
  EXPECT_EQ(ops[0].payload.size(), 5u);
  EXPECT_EQ(PayloadU64(ops[1].payload, 0), 5u);
  auto r = DecodeRanges(ops[2].payload);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].offset, 64u);
  EXPECT_EQ(PayloadU64(ops[4].payload, 1), 2u);
  EXPECT_EQ(ops[7].flags, kCreateFlagSecure);
  EXPECT_EQ(ops[7].offset, 4096u);
  std::string_view name, pool;
  std::span<const std::byte> user_key;
  ASSERT_TRUE(DecodeCreatePayload(ops[7].payload, ops[7].flags, &name, &pool, &user_key).ok());
  EXPECT_EQ(name, "log");
  EXPECT_EQ(pool, "p0");
  EXPECT_TRUE(user_key.empty());
  EXPECT_EQ(ops[11].opcode, Opcode::kStat);
}

TEST(RpmProtocol, RejectsTruncatedTrailingAndBadMagic) {
  RequestBuilder b;
  b.Write(1, 0, Bytes("abcdef"));
  auto bytes = std::vector<std::byte>(b.bytes().begin(), b.bytes().end());
  std::vector<Op> ops;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(ParseRequest(std::span(bytes.data(), cut), &ops).ok()) << cut;
  }
  bytes.push_back(std::byte{0});
  EXPECT_EQ(ParseRequest(bytes, &ops).code(), StatusCode::kCorruption);
  bytes.pop_back();
  bytes[0] = std::byte{0};
  EXPECT_EQ(ParseRequest(bytes, &ops).code(), StatusCode::kCorruption);
}

TEST(RpmProtocol, RejectsWrongVersionUnknownOpcodeAndBadShapes) {
  RequestBuilder b;
  b.Read(1, 0, 8);
  auto bytes = std::vector<std::byte>(b.bytes().begin(), b.bytes().end());
  std::vector<Op> ops;
  auto v = bytes;
  v[4] = std::byte{9};
  EXPECT_EQ(ParseRequest(v, &ops).code(), StatusCode::kFailedPrecondition);
  v = bytes;
  v[kBatchHeaderSize] = std::byte{99};
  EXPECT_EQ(ParseRequest(v, &ops).code(), StatusCode::kInvalidArgument);
  // A READ whose payload is 9 bytes instead of 8.
  v = bytes;
  v[kBatchHeaderSize + 4] = std::byte{9};
  v.push_back(std::byte{0});
  EXPECT_EQ(ParseRequest(v, &ops).code(), StatusCode::kCorruption);
  RequestBuilder empty;
  EXPECT_EQ(ParseRequest(empty.bytes(), &ops).code(), StatusCode::kInvalidArgument);
}

TEST(RpmProtocol, ResponseRoundTripsResultsAndErrors) {
  ResponseBuilder rb;
  rb.AddOk();
  rb.AddU64(99);
  rb.AddError(Status::OutOfRange("beyond region"));
  RegionDesc d{5, 4096, 1, true, "log"};
  rb.AddRegionDesc(d);
  std::vector<RegionDesc> list = {d, RegionDesc{6, 8192, 0, false, "x"}};
  rb.AddRegionList(list);
  rb.AddNodeStat(NodeStat{2, 1, 3, 4, 5, 6});
  std::vector<OpResult> res;
  ASSERT_TRUE(ParseResponse(rb.bytes(), &res).ok());
  ASSERT_EQ(res.size(), 6u);
  EXPECT_TRUE(ResultStatus(res[0]).ok());
  EXPECT_EQ(*DecodeU64(res[1].payload), 99u);
  Status e = ResultStatus(res[2]);
  EXPECT_EQ(e.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(e.message(), "beyond region");
  auto dd = DecodeRegionDesc(res[3].payload);
  ASSERT_TRUE(dd.ok());
  EXPECT_EQ(dd->name, "log");
  EXPECT_TRUE(dd->secure);
  auto l = DecodeRegionList(res[4].payload);
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[1].size, 8192u);
  EXPECT_EQ(DecodeNodeStat(res[5].payload)->bytes_written, 6u);
}

TEST(RpmProtocol, AccessAdministrationOpsRoundTrip) {
  std::vector<std::byte> identity(kIdentityKeySize);
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = std::byte(i + 1);
  RequestBuilder b;
  b.GrantAccess("vault", identity, 3);
  b.ListAccess("vault");
  b.RotateKey("vault");
  std::vector<Op> ops;
  ASSERT_TRUE(ParseRequest(b.bytes(), &ops).ok());
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops[0].opcode, Opcode::kGrantAccess);
  EXPECT_EQ(OpcodeName(ops[0].opcode), "grant_access");
  std::string_view name;
  std::span<const std::byte> got_identity;
  uint8_t rights = 0;
  ASSERT_TRUE(DecodeGrantPayload(ops[0].payload, &name, &got_identity, &rights).ok());
  EXPECT_EQ(name, "vault");
  EXPECT_TRUE(std::equal(got_identity.begin(), got_identity.end(), identity.begin()));
  EXPECT_EQ(rights, 3);
  EXPECT_EQ(ops[1].opcode, Opcode::kListAccess);
  EXPECT_EQ(ops[2].opcode, Opcode::kRotateKey);
  EXPECT_EQ(
      std::string_view(reinterpret_cast<const char*>(ops[2].payload.data()), ops[2].payload.size()),
      "vault");

  // Rights above read|write|admin, a grant without a name, one cut short.
  RequestBuilder bad;
  bad.GrantAccess("v", identity, 8);
  ASSERT_TRUE(ParseRequest(bad.bytes(), &ops).ok());
  EXPECT_EQ(DecodeGrantPayload(ops[0].payload, &name, &got_identity, &rights).code(),
            StatusCode::kInvalidArgument);
  RequestBuilder unnamed;
  unnamed.GrantAccess("", identity, 1);
  EXPECT_EQ(ParseRequest(unnamed.bytes(), &ops).code(), StatusCode::kInvalidArgument);
  auto cut = std::vector<std::byte>(unnamed.bytes().begin(), unnamed.bytes().end());
  cut.resize(cut.size() - 1);
  StoreLE<uint32_t>(cut.data() + kBatchHeaderSize + 4, kGrantFixedSize - 1);
  EXPECT_EQ(ParseRequest(cut, &ops).code(), StatusCode::kCorruption);

  AccessInfo info;
  info.key_epoch = 4;
  AccessEntry e;
  e.fingerprint[0] = std::byte{0xab};
  e.rights = 7;
  info.entries = {e, e};
  info.entries[1].fingerprint[15] = std::byte{1};
  info.entries[1].rights = 1;
  ResponseBuilder r;
  r.AddAccessInfo(info);
  std::vector<OpResult> results;
  ASSERT_TRUE(ParseResponse(r.bytes(), &results).ok());
  auto back = DecodeAccessInfo(results[0].payload);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->key_epoch, 4u);
  EXPECT_EQ(back->entries, info.entries);
  auto payload = std::vector<std::byte>(results[0].payload.begin(), results[0].payload.end());
  payload.pop_back();
  EXPECT_EQ(DecodeAccessInfo(payload).status().code(), StatusCode::kCorruption);
  payload = std::vector<std::byte>(results[0].payload.begin(), results[0].payload.end());
  payload.back() = std::byte{0};  // rights 0 is never listed
  EXPECT_EQ(DecodeAccessInfo(payload).status().code(), StatusCode::kCorruption);
}

TEST(RpmProtocol, HelloRoundTripsAndRejectsOtherVersions) {
  auto h = EncodeHello(Hello{kVersion, kHelloWantsAssignment});
  auto d = DecodeHello(h);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->flags, kHelloWantsAssignment);
  h[4] = std::byte{2};
  EXPECT_EQ(DecodeHello(h).status().code(), StatusCode::kFailedPrecondition);
  auto r = DecodeHelloReply(EncodeHelloReply(HelloReply{kVersion, 7411, 2}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->worker_port, 7411);
  EXPECT_FALSE(DecodeHelloReply(std::span<const std::byte>()).ok());
}

TEST(RpmProtocol, EpochOpRoundTripsOnlyAsFirstOp) {
  RequestBuilder b;
  b.Epoch(7, 42, kEpochFlagReplica);
  b.Write(7, 0, Bytes("x"));
  std::vector<Op> ops;
  ASSERT_TRUE(ParseRequest(b.bytes(), &ops).ok());
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].opcode, Opcode::kEpoch);
  EXPECT_EQ(ops[0].handle, 7u);
  EXPECT_EQ(ops[0].offset, 42u);
  EXPECT_EQ(ops[0].flags, kEpochFlagReplica);

  RequestBuilder late;  // an epoch op after another op
  late.Write(7, 0, Bytes("x"));
  late.Epoch(7, 42, 0);
  EXPECT_EQ(ParseRequest(late.bytes(), &ops).code(), StatusCode::kCorruption);
  RequestBuilder flags;  // resync without replica
  flags.Epoch(7, 42, kEpochFlagResync);
  EXPECT_EQ(ParseRequest(flags.bytes(), &ops).code(), StatusCode::kCorruption);
  RequestBuilder unknown;  // unknown flag bits
  unknown.Epoch(7, 42, kEpochFlagReplica | 4);
  EXPECT_EQ(ParseRequest(unknown.bytes(), &ops).code(), StatusCode::kCorruption);
  RequestBuilder resync;  // a primary resyncing a joining node
  resync.Epoch(7, 42, kEpochFlagReplica | kEpochFlagResync);
  ASSERT_TRUE(ParseRequest(resync.bytes(), &ops).ok());
  EXPECT_EQ(ops[0].flags, kEpochFlagReplica | kEpochFlagResync);
}

TEST(RpmProtocol, AbortedGoesOnTheWireAndWouldBlockNever) {
  ResponseBuilder rb;
  rb.AddError(Status::Aborted("stale epoch"));
  rb.AddError(Status::WouldBlock("internal"));
  std::vector<OpResult> results;
  ASSERT_TRUE(ParseResponse(rb.bytes(), &results).ok());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].code, StatusCode::kAborted);
  EXPECT_EQ(results[1].code, StatusCode::kInternal);
  // A code beyond kAborted from a peer is Corruption.
  std::vector<std::byte> bad(rb.bytes().begin(), rb.bytes().end());
  bad[kBatchHeaderSize] = std::byte{static_cast<uint8_t>(StatusCode::kWouldBlock)};
  EXPECT_EQ(ParseResponse(bad, &results).code(), StatusCode::kCorruption);
}

TEST(RpmProtocol, UserKeysTravelAfterTheNameAndReceiptsAfterTheResult) {
  std::vector<std::byte> wrapped(kWrappedUserKeySize);
  for (size_t i = 0; i < wrapped.size(); ++i) wrapped[i] = std::byte(i);
  RequestBuilder b;
  b.CreateRegion("vault", 8192, true, "p1", wrapped);
  b.RotateKey("vault", wrapped);
  b.RotateKey("plain");
  std::vector<Op> ops;
  ASSERT_TRUE(ParseRequest(b.bytes(), &ops).ok());
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops[0].flags, kCreateFlagSecure | kCreateFlagUserKey);
  std::string_view name, pool;
  std::span<const std::byte> key;
  ASSERT_TRUE(DecodeCreatePayload(ops[0].payload, ops[0].flags, &name, &pool, &key).ok());
  EXPECT_EQ(name, "vault");
  EXPECT_EQ(pool, "p1");
  EXPECT_TRUE(std::equal(key.begin(), key.end(), wrapped.begin(), wrapped.end()));
  ASSERT_TRUE(DecodeRotatePayload(ops[1].payload, ops[1].flags, &name, &key).ok());
  EXPECT_EQ(name, "vault");
  EXPECT_EQ(key.size(), kWrappedUserKeySize);
  ASSERT_TRUE(DecodeRotatePayload(ops[2].payload, ops[2].flags, &name, &key).ok());
  EXPECT_EQ(name, "plain");
  EXPECT_TRUE(key.empty());

  // A user key for a plain region, or unknown flag bits, are refused.
  RequestBuilder plain;
  plain.CreateRegion("p", 4096, false, "");
  auto bytes = std::vector<std::byte>(plain.bytes().begin(), plain.bytes().end());
  bytes[kBatchHeaderSize + 1] = std::byte{kCreateFlagUserKey};
  EXPECT_EQ(ParseRequest(bytes, &ops).code(), StatusCode::kInvalidArgument);
  bytes[kBatchHeaderSize + 1] = std::byte{0x80};
  EXPECT_EQ(ParseRequest(bytes, &ops).code(), StatusCode::kInvalidArgument);

  ResponseBuilder r;
  std::vector<std::byte> receipt(kUserKeyReceiptSize, std::byte{7});
  RegionDesc d;
  d.handle = 5;
  d.size = 8192;
  d.secure = true;
  d.name = "vault";
  r.AddRegionDesc(d, receipt);
  r.AddU64WithReceipt(3, receipt);
  std::vector<OpResult> results;
  ASSERT_TRUE(ParseResponse(r.bytes(), &results).ok());
  ASSERT_EQ(results.size(), 2u);
  std::vector<std::byte> got(kUserKeyReceiptSize);
  auto desc = DecodeRegionDescWithReceipt(results[0].payload, got);
  ASSERT_TRUE(desc.ok()) << desc.status();
  EXPECT_EQ(desc->name, "vault");
  EXPECT_EQ(got, receipt);
  auto epoch = DecodeU64WithReceipt(results[1].payload, got);
  ASSERT_TRUE(epoch.ok());
  EXPECT_EQ(*epoch, 3u);
  // A result without the receipt is refused where one is expected.
  EXPECT_FALSE(DecodeRegionDescWithReceipt(results[1].payload, got).ok());
  EXPECT_FALSE(DecodeU64WithReceipt(results[0].payload, got).ok());
}

}  // namespace
}  // namespace cosmos::protocol
