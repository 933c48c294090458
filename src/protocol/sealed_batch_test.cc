#include "protocol/sealed_batch.h"

#include <gtest/gtest.h>

#include <cstring>

#include "protocol/rpm_protocol.h"

namespace cosmos::protocol {
namespace {

std::vector<std::byte> Request(std::string_view name, size_t body) {
  SealedRequestHeader h;
  h.flags = kSealedFlagReadOnly;
  h.handle = 0x1122334455667788ull;
  h.seq = 42;
  h.name = name;
  std::vector<std::byte> out = EncodeSealedRequestHeader(h);
  out.resize(out.size() + body + kSealedTagSize, std::byte{0x5a});
  return out;
}

TEST(SealedBatch, RequestRoundTripSplitsHeaderBodyAndTag) {
  auto bytes = Request("region-a", 100);
  auto v = ParseSealedRequest(bytes);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->header.flags, kSealedFlagReadOnly);
  EXPECT_EQ(v->header.handle, 0x1122334455667788ull);
  EXPECT_EQ(v->header.seq, 42u);
  EXPECT_EQ(v->header.name, "region-a");
  EXPECT_EQ(v->associated_data.size(), kSealedRequestFixedSize + 8);
  EXPECT_EQ(v->ciphertext.size(), 100u);
  EXPECT_EQ(v->tag.size(), kSealedTagSize);
}

TEST(SealedBatch, MalformedRequestsAreRefused) {
  auto good = Request("r", 0);
  ASSERT_TRUE(ParseSealedRequest(good).ok());
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(ParseSealedRequest(std::span(good).first(cut)).ok()) << cut;
  }
  auto bad = good;
  bad[0] = std::byte{0};
  EXPECT_EQ(ParseSealedRequest(bad).status().code(), StatusCode::kCorruption);
  bad = good;
  bad[4] = std::byte{9};
  EXPECT_EQ(ParseSealedRequest(bad).status().code(), StatusCode::kFailedPrecondition);
  bad = good;
  bad[6] = std::byte{4};  // unknown flag
  EXPECT_EQ(ParseSealedRequest(bad).status().code(), StatusCode::kCorruption);
  bad = good;
  bad[24] = std::byte{0};  // empty name
  EXPECT_EQ(ParseSealedRequest(bad).status().code(), StatusCode::kCorruption);
  bad = good;
  bad[24] = std::byte{200};  // name longer than the message
  EXPECT_EQ(ParseSealedRequest(bad).status().code(), StatusCode::kCorruption);
  bad = good;
  bad[26] = std::byte{1};  // reserved
  EXPECT_EQ(ParseSealedRequest(bad).status().code(), StatusCode::kCorruption);
}

TEST(SealedBatch, EpochFlagCarriesTheEpochInTheAuthenticatedHeader) {
  SealedRequestHeader h;
  h.flags = kSealedFlagEpoch;
  h.handle = 7;
  h.seq = 3;
  h.name = "replicated";
  h.epoch = 0x0102030405060708ull;
  std::vector<std::byte> bytes = EncodeSealedRequestHeader(h);
  const size_t header = bytes.size();
  EXPECT_EQ(header, kSealedRequestFixedSize + 10 + 8);
  bytes.resize(header + 5 + kSealedTagSize);
  auto v = ParseSealedRequest(bytes);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->header.epoch, h.epoch);
  EXPECT_EQ(v->header.name, "replicated");
  EXPECT_EQ(v->associated_data.size(), header);  // the epoch is authenticated
  EXPECT_EQ(v->ciphertext.size(), 5u);
  h.epoch = 0;
  auto zero = EncodeSealedRequestHeader(h);
  zero.resize(zero.size() + kSealedTagSize);
  EXPECT_EQ(ParseSealedRequest(zero).status().code(), StatusCode::kCorruption);
}

TEST(SealedBatch, ReplicaBatchFramingRoundTripsAndRefusesMalformedHeaders) {
  ReplicaBatchHeader h;
  h.channel_id = 0xabcdefull;
  h.seq = 9;
  h.epoch = 4;
  h.name = "reg";
  std::vector<std::byte> good = EncodeReplicaBatchHeader(h);
  ASSERT_EQ(good.size(), kReplicaBatchFixedSize + 3);
  good.resize(good.size() + 11 + kSealedTagSize, std::byte{0x33});
  auto v = ParseReplicaBatch(good);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->header.channel_id, h.channel_id);
  EXPECT_EQ(v->header.seq, 9u);
  EXPECT_EQ(v->header.epoch, 4u);
  EXPECT_EQ(v->header.name, "reg");
  EXPECT_EQ(v->ciphertext.size(), 11u);
  for (size_t cut = 0; cut < kReplicaBatchFixedSize + 3 + kSealedTagSize; ++cut) {
    EXPECT_FALSE(ParseReplicaBatch(std::span(good).first(cut)).ok()) << cut;
  }
  auto bad = good;
  bad[0] = std::byte{0};
  EXPECT_EQ(ParseReplicaBatch(bad).status().code(), StatusCode::kCorruption);
  bad = good;
  bad[4] = std::byte{2};
  EXPECT_EQ(ParseReplicaBatch(bad).status().code(), StatusCode::kFailedPrecondition);
  bad = good;
  bad[6] = std::byte{1};  // flags
  EXPECT_EQ(ParseReplicaBatch(bad).status().code(), StatusCode::kCorruption);
  bad = good;
  std::memset(bad.data() + 24, 0, 8);  // epoch 0
  EXPECT_EQ(ParseReplicaBatch(bad).status().code(), StatusCode::kCorruption);
  bad = good;
  bad[32] = std::byte{0};  // empty name
  EXPECT_EQ(ParseReplicaBatch(bad).status().code(), StatusCode::kCorruption);
  bad = good;
  bad[34] = std::byte{1};  // reserved
  EXPECT_EQ(ParseReplicaBatch(bad).status().code(), StatusCode::kCorruption);
}

TEST(SealedBatch, ResponsesAndHostErrors) {
  std::vector<std::byte> sealed(kSealedResponseHeaderSize + 30 + kSealedTagSize);
  SealedResponseHeader h;
  h.request_seq = 7;
  h.response_seq = 9;
  EncodeSealedResponseHeader(
      h, std::span<std::byte, kSealedResponseHeaderSize>(sealed.data(), kSealedResponseHeaderSize));
  auto v = ParseSealedResponse(sealed);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->header.request_seq, 7u);
  EXPECT_EQ(v->header.response_seq, 9u);
  EXPECT_EQ(v->body.size(), 30u);
  EXPECT_EQ(v->tag.size(), kSealedTagSize);
  EXPECT_FALSE(ParseSealedResponse(std::span(sealed).first(kSealedResponseHeaderSize + 3)).ok());

  auto host = EncodeSealedHostError(7, Status::NotFound("no region"));
  auto e = ParseSealedResponse(host);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->header.flags, kSealedResponseHostError);
  EXPECT_TRUE(e->tag.empty());
  std::vector<OpResult> results;
  ASSERT_TRUE(ParseResponse(e->body, &results).ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(ResultStatus(results[0]).code(), StatusCode::kNotFound);
}

TEST(SealedBatch, OpRangeChecksRefuseOverflowAndMisalignment) {
  EXPECT_TRUE(CheckOpRange(0, 4096, 4096, "write").ok());
  EXPECT_EQ(CheckOpRange(1, 4096, 4096, "write").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(CheckOpRange(8, UINT64_MAX, 4096, "read").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(CheckOpAtomic(4, 4096, "cas").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckOpAtomic(4096, 4096, "cas").code(), StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace cosmos::protocol
