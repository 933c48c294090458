// The host only ever holds ciphertext of a secure region: a secure client's
// batches on a secure region reach the enclave sealed end to end, and the
// enclave refuses a host that replays, re-routes or edits them. The host here
// is a SecureRegionEngine wrapped around the real one (the host owns
// everything outside the enclave, this code included).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cosmos/client.h"
#include "server/forwarding_engine_test_util.h"
#include "server/secure_node_test_util.h"

namespace cosmos::server {
namespace {

// A pattern the client writes; it must never appear in host memory.
std::vector<std::byte> Marker(size_t n) {
  std::vector<std::byte> v(n);
  const char* text = "COSMOS-PLAINTEXT-MARKER-";
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(text[i % 24]);
  return v;
}

bool Contains(std::span<const std::byte> hay, std::span<const std::byte> needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

enum class Attack { kNone, kReplay, kMisroute, kEditHeader };

// Records every byte the host hands to or gets from the engine for region
// data, and plays one attack on sealed batches.
class SpyingHost final : public ForwardingSecureEngine {
 public:
  SpyingHost(SecureRegionEngine* real, Attack attack)
      : ForwardingSecureEngine(real), attack_(attack) {}

  Status Write(Requester r, RegionEntry& e, uint64_t off, std::span<const std::byte> d,
               WaitMode w) override {
    Record(d);
    ++plaintext_calls;
    return real_->Write(r, e, off, d, w);
  }
  Status Read(Requester r, RegionEntry& e, uint64_t off, std::span<std::byte> out) override {
    Status s = real_->Read(r, e, off, out);
    Record(out);
    ++plaintext_calls;
    return s;
  }
  Result<std::vector<std::byte>> ExecuteSealedBatch(Requester r, RegionEntry& e,
                                                    std::span<const std::byte> message) override {
    Record(message);
    ++sealed_calls;
    std::vector<std::byte> edited(message.begin(), message.end());
    RegionEntry* target = &e;
    {
      std::lock_guard lock(mu_);
      if (attack_ == Attack::kMisroute && other_ != nullptr && other_ != &e) target = other_;
      if (attack_ == Attack::kEditHeader) edited[6] ^= std::byte{1};  // the read-only flag
      if (attack_ == Attack::kMisroute && other_ == nullptr) other_ = &e;
    }
    auto out = real_->ExecuteSealedBatch(r, *target, edited);
    if (out.ok()) Record(*out);
    if (attack_ == Attack::kReplay && out.ok()) {
      // The host runs the same message again (e.g. to repeat a write after
      // the client overwrote it): the enclave has seen this seq.
      auto again = real_->ExecuteSealedBatch(r, e, message);
      std::lock_guard lock(mu_);
      replay_results.push_back(again.status());
    }
    if (!out.ok()) {
      std::lock_guard lock(mu_);
      refusals.push_back(out.status());
    }
    return out;
  }

  bool SawPlaintext(std::span<const std::byte> needle) {
    std::lock_guard lock(mu_);
    for (const auto& b : seen_) {
      if (Contains(b, needle)) return true;
    }
    return false;
  }

  std::atomic<int> plaintext_calls{0}, sealed_calls{0};
  std::vector<Status> replay_results, refusals;

 private:
  void Record(std::span<const std::byte> b) {
    std::lock_guard lock(mu_);
    seen_.emplace_back(b.begin(), b.end());
  }
  Attack attack_;
  std::mutex mu_;
  RegionEntry* other_ = nullptr;
  std::vector<std::vector<std::byte>> seen_;
};

struct Node {
  explicit Node(Attack attack)
      : node([this, attack](SecureRegionEngine* real) {
          auto h = std::make_unique<SpyingHost>(real, attack);
          host = h.get();
          return h;
        }) {}
  SpyingHost* host = nullptr;
  InProcessSecureNode node;
};

TEST(SealedBatchHost, HostSeesOnlyCiphertextOfEveryDataOp) {
  Node n(Attack::kNone);
  ASSERT_TRUE(n.node.ok());
  auto c = Client::Connect(n.node.SecureClientOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->CreateRegion("s", 64 << 10, {.secure = true}).ok());
  auto r = (*c)->OpenRegion("s");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto marker = Marker(4096);
  ASSERT_TRUE((*r)->Write(8192, marker).ok());
  ASSERT_TRUE((*r)->Flush(8192, marker.size()).ok());
  std::vector<std::byte> back(marker.size());
  ASSERT_TRUE((*r)->Read(8192, back).ok());
  EXPECT_EQ(back, marker);
  ASSERT_TRUE((*r)->Verify(8192, marker).ok());
  // Atomics: their operands and results are region data too.
  const uint64_t secret = 0x5345435245543432ull;  // "SECRET42"
  ASSERT_TRUE((*r)->WriteAfterFlush(0, secret).ok());
  auto before = (*r)->CompareAndSwap(0, secret, secret + 1);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, secret);
  auto added = (*r)->FetchAdd(0, 1);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(*added, secret + 1);

  EXPECT_GT(n.host->sealed_calls.load(), 0);
  EXPECT_EQ(n.host->plaintext_calls.load(), 0);
  EXPECT_FALSE(n.host->SawPlaintext(std::span(marker).first(48)));
  std::byte word[8];
  std::memcpy(word, &secret, 8);
  EXPECT_FALSE(n.host->SawPlaintext(word));
}

TEST(SealedBatchHost, ReplayedBatchIsRefusedAndChangesNothing) {
  Node n(Attack::kReplay);
  ASSERT_TRUE(n.node.ok());
  auto c = Client::Connect(n.node.SecureClientOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->CreateRegion("s", 16 << 10, {.secure = true}).ok());
  auto r = (*c)->OpenRegion("s");
  ASSERT_TRUE(r.ok());
  // Each FetchAdd is one sealed batch; the host runs each one twice.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*r)->FetchAdd(0, 1).ok());
  auto value = (*r)->FetchAdd(0, 0);
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 3u) << "a replayed FetchAdd was applied";
  ASSERT_GE(n.host->replay_results.size(), 3u);
  for (const Status& s : n.host->replay_results) {
    EXPECT_EQ(s.code(), StatusCode::kIntegrityViolation) << s;
  }
}

TEST(SealedBatchHost, BatchRoutedToAnotherRegionIsRefused) {
  Node n(Attack::kMisroute);
  ASSERT_TRUE(n.node.ok());
  auto c = Client::Connect(n.node.SecureClientOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->CreateRegion("a", 16 << 10, {.secure = true}).ok());
  ASSERT_TRUE((*c)->CreateRegion("b", 16 << 10, {.secure = true}).ok());
  auto a = (*c)->OpenRegion("a");
  auto b = (*c)->OpenRegion("b");
  ASSERT_TRUE(a.ok() && b.ok());
  // The first sealed batch the host sees (on "a") marks the region it will
  // send later batches to.
  ASSERT_TRUE((*a)->FetchAdd(0, 7).ok());
  const auto marker = Marker(64);
  ASSERT_TRUE((*b)->Write(0, marker).ok());
  Status flushed = (*b)->Flush(0, marker.size());
  EXPECT_EQ(flushed.code(), StatusCode::kIntegrityViolation) << flushed;
  ASSERT_FALSE(n.host->refusals.empty());
  EXPECT_NE(n.host->refusals[0].message().find("routed to region 'a'"), std::string::npos)
      << n.host->refusals[0];
  // Region "a" did not take b's write.
  auto word = (*a)->FetchAdd(0, 0);
  ASSERT_TRUE(word.ok());
  EXPECT_EQ(*word, 7u);
}

TEST(SealedBatchHost, EditedClearHeaderIsRefused) {
  Node n(Attack::kEditHeader);
  ASSERT_TRUE(n.node.ok());
  auto c = Client::Connect(n.node.SecureClientOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->CreateRegion("s", 16 << 10, {.secure = true}).ok());
  auto r = (*c)->OpenRegion("s");
  ASSERT_TRUE(r.ok());
  auto v = (*r)->FetchAdd(0, 1);
  EXPECT_EQ(v.status().code(), StatusCode::kIntegrityViolation) << v.status();
}

}  // namespace
}  // namespace cosmos::server
