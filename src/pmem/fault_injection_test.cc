// Tests for the fault-injection twin: persisted bytes survive a crash,
// unpersisted bytes do not, and injected failures are reported.
#include "pmem/fault_injection.h"

#include <gtest/gtest.h>

#include <cstring>

namespace cosmos::pmem {
namespace {

TEST(FaultInjection, PersistedBytesSurviveARemap) {
  auto medium = FaultInjectionMedium::Create(4096);
  auto m = medium->Map();
  ASSERT_TRUE(m.ok());
  std::memcpy((*m)->base(), "hello", 5);
  ASSERT_TRUE((*m)->Persist(0, 5).ok());
  std::memcpy((*m)->base() + 100, "lost", 4);  // never persisted
  auto again = medium->Map();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(std::memcmp((*again)->base(), "hello", 5), 0);
  EXPECT_EQ((*again)->base()[100], std::byte{0});
  EXPECT_EQ(medium->persist_points(), 1u);
}

TEST(FaultInjection, FlushWithoutDrainIsNotDurable) {
  auto medium = FaultInjectionMedium::Create(4096);
  auto m = medium->Map();
  ASSERT_TRUE(m.ok());
  (*m)->base()[0] = std::byte{7};
  ASSERT_TRUE((*m)->Flush(0, 1).ok());
  EXPECT_EQ(medium->DurableImage()[0], std::byte{0});
  ASSERT_TRUE((*m)->Drain().ok());
  EXPECT_EQ(medium->DurableImage()[0], std::byte{7});
}

TEST(FaultInjection, CrashDiscardsTheCrashingPersistAndFreezesTheMedium) {
  auto medium = FaultInjectionMedium::Create(4096);
  auto m = medium->Map();
  ASSERT_TRUE(m.ok());
  medium->CrashAtPersistPoint(2);
  (*m)->base()[0] = std::byte{1};
  ASSERT_TRUE((*m)->Persist(0, 1).ok());
  (*m)->base()[8] = std::byte{2};
  EXPECT_EQ((*m)->Persist(8, 1).code(), StatusCode::kIoError);
  EXPECT_TRUE(medium->crashed());
  (*m)->base()[16] = std::byte{3};
  EXPECT_EQ((*m)->Persist(16, 1).code(), StatusCode::kIoError);
  auto image = medium->DurableImage();
  EXPECT_EQ(image[0], std::byte{1});
  EXPECT_EQ(image[8], std::byte{0});
  EXPECT_EQ(image[16], std::byte{0});
}

TEST(FaultInjection, TearModeLandsSomeUnpersistedWordsDeterministically) {
  auto run = [](uint64_t seed) {
    auto medium = FaultInjectionMedium::Create(64 * 1024);
    auto m = medium->Map();
    std::memset((*m)->base(), 0xab, 64 * 1024);
    medium->CrashAtPersistPoint(1, CrashMode::kTearUnpersisted, seed);
    EXPECT_FALSE((*m)->Persist(0, 64).ok());
    return medium->DurableImage();
  };
  auto a = run(1);
  auto b = run(1);
  EXPECT_EQ(a, b);
  size_t landed = 0;
  for (size_t i = 0; i < a.size(); i += 8) landed += a[i] == std::byte{0xab};
  EXPECT_GT(landed, 0u);
  EXPECT_LT(landed, a.size() / 8);
}

TEST(FaultInjection, FailedSyncReportsIoErrorAndLaterSyncsWork) {
  auto medium = FaultInjectionMedium::Create(4096);
  auto m = medium->Map();
  ASSERT_TRUE(m.ok());
  medium->FailSyncAt(1);
  (*m)->base()[0] = std::byte{9};
  EXPECT_EQ((*m)->Persist(0, 1).code(), StatusCode::kIoError);
  EXPECT_EQ(medium->DurableImage()[0], std::byte{0});
  EXPECT_FALSE(medium->crashed());
  ASSERT_TRUE((*m)->Persist(0, 1).ok());
  EXPECT_EQ(medium->DurableImage()[0], std::byte{9});
}

TEST(FaultInjection, OldMappingsDieWhenTheMediumIsRemapped) {
  auto medium = FaultInjectionMedium::Create(4096);
  auto first = medium->Map();
  auto second = medium->Map();
  EXPECT_EQ((*first)->Persist(0, 1).code(), StatusCode::kIoError);
  EXPECT_TRUE((*second)->Persist(0, 1).ok());
}

}  // namespace
}  // namespace cosmos::pmem
