// Tests of the QoS building blocks with a fake clock (time never decides a
// pass or fail here: every "time" is an argument).
#include "server/qos.h"

#include <gtest/gtest.h>

#include <string>

namespace cosmos::server {
namespace {

TEST(TokenBucket, AdmitsBurstThenRefillsAtRate) {
  TokenBucket b(/*rate=*/1000, /*burst=*/100);
  uint64_t t = 1'000'000'000;
  EXPECT_TRUE(b.TryTake(100, t));
  EXPECT_FALSE(b.TryTake(1, t));
  EXPECT_FALSE(b.TryTake(10, t + 5'000'000));          // 5 ms -> 5 tokens
  EXPECT_TRUE(b.TryTake(10, t + 10'000'000));          // 10 ms -> 10 tokens
  EXPECT_TRUE(b.TryTake(100, t + 10'000'000'000ull));  // capped at burst
  EXPECT_FALSE(b.TryTake(1, t + 10'000'000'000ull));
}

TEST(TokenBucket, UnlimitedAlwaysAdmitsAndOversizedCostIsNotStarved) {
  TokenBucket unlimited;
  EXPECT_TRUE(unlimited.TryTake(1e12, 1));
  TokenBucket b(100, 10);
  EXPECT_TRUE(b.TryTake(50, 1'000'000'000));  // full bucket admits a big cost once
  EXPECT_FALSE(b.TryTake(1, 1'000'000'000));
  EXPECT_FALSE(b.CanTake(1, 1'100'000'000));  // still in debt
  EXPECT_TRUE(b.CanTake(1, 2'000'000'000));
}

TEST(FairQueue, GreedySessionCannotDelayLightSessionByMoreThanOneRound) {
  // Session 1 (greedy) queues 1000 batches, then session 2 (light) queues
  // one. Served round-robin, the light batch comes out after at most one
  // greedy batch: the bound on how far a greedy client can push a light
  // client's latency, in batches, independent of wall time.
  FairQueue<uint32_t, std::string> q;
  for (int i = 0; i < 1000; ++i) q.Push(1, "greedy");
  q.Push(2, "light");
  int greedy_before_light = 0;
  for (;;) {
    auto item = q.Pop();
    ASSERT_TRUE(item.has_value());
    if (item->first == 2) break;
    ++greedy_before_light;
  }
  EXPECT_LE(greedy_before_light, 1);
  EXPECT_EQ(q.size(), 1000u - greedy_before_light);
}

TEST(FairQueue, LightBatchesInterleaveUnderSustainedGreedyLoad) {
  // The light session issues a batch every time its previous one is served,
  // while the greedy session keeps 64 queued; count greedy batches between
  // consecutive light batches: never more than one per other session.
  FairQueue<uint32_t, int> q;
  for (int i = 0; i < 64; ++i) q.Push(7, i);
  q.Push(3, 0);
  int max_gap = 0, gap = 0, light_served = 0;
  while (light_served < 100) {
    auto item = q.Pop();
    ASSERT_TRUE(item.has_value());
    if (item->first == 7) {
      ++gap;
      q.Push(7, 0);  // greedy refills
    } else {
      max_gap = std::max(max_gap, gap);
      gap = 0;
      ++light_served;
      q.Push(3, 0);
    }
  }
  EXPECT_LE(max_gap, 1);
}

TEST(FairQueue, IneligibleHeadStaysQueuedAndOthersProceed) {
  FairQueue<int, int> q;
  q.Push(1, 10);
  q.Push(2, 20);
  auto item = q.Pop([](int key, int) { return key != 1; });
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->second, 20);
  EXPECT_FALSE(q.Pop([](int key, int) { return key != 1; }).has_value());
  EXPECT_EQ(q.Pop()->second, 10);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace cosmos::server
