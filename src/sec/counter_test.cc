// Unit tests of the simulated trusted counter (no timing: injected clock).
#include "sec/counter.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace cosmos::sec {
namespace {

class CounterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cosmos_counter_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  SimulatedCounter::Options Opts(uint64_t delay) {
    SimulatedCounter::Options o;
    o.path = (dir_ / "ctr").string();
    o.stabilisation_delay_ns = delay;
    o.now_ns = [this] { return now_; };
    o.sleep_ns = [this](uint64_t ns) { now_ += ns; };  // sleeping advances fake time
    return o;
  }
  std::filesystem::path dir_;
  uint64_t now_ = 1000;
};

TEST_F(CounterTest, ValueBecomesStableOnlyAfterTheDelay) {
  auto c = SimulatedCounter::Open(Opts(50));
  ASSERT_TRUE(c.ok());
  auto v = (*c)->Increment();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 1u);
  EXPECT_FALSE((*c)->IsStable(1));
  now_ += 49;
  EXPECT_FALSE((*c)->IsStable(1));
  now_ += 1;
  EXPECT_TRUE((*c)->IsStable(1));
  EXPECT_EQ(*SimulatedCounter::ReadFile(Opts(0).path), 1u);
}

TEST_F(CounterTest, WaitStableSleepsUntilDueAndRejectsFutureValues) {
  auto c = SimulatedCounter::Open(Opts(30));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Increment().ok());
  ASSERT_TRUE((*c)->Increment().ok());
  EXPECT_TRUE((*c)->WaitStable(2).ok());
  EXPECT_EQ((*c)->Stable(), 2u);
  EXPECT_EQ((*c)->WaitStable(3).code(), StatusCode::kInvalidArgument);
}

TEST_F(CounterTest, UnstableIncrementsAreLostOnCrash) {
  {
    auto c = SimulatedCounter::Open(Opts(100));
    ASSERT_TRUE((*c)->Increment().ok());
    ASSERT_TRUE((*c)->WaitStable(1).ok());
    ASSERT_TRUE((*c)->Increment().ok());  // never stabilised: "crash"
  }
  auto c = SimulatedCounter::Open(Opts(100));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Current(), 1u);
}

TEST_F(CounterTest, ManualModeStabilisesOnlyOnRequest) {
  auto o = Opts(0);
  o.manual = true;
  auto c = SimulatedCounter::Open(o);
  ASSERT_TRUE((*c)->Increment().ok());
  EXPECT_FALSE((*c)->IsStable(1));
  EXPECT_EQ((*c)->WaitStable(1).code(), StatusCode::kUnavailable);
  ASSERT_TRUE((*c)->StabiliseAll().ok());
  EXPECT_TRUE((*c)->IsStable(1));
}

TEST_F(CounterTest, ZeroDelayPersistsImmediatelyAndAdvanceToRaises) {
  auto c = SimulatedCounter::Open(Opts(0));
  ASSERT_TRUE((*c)->Increment().ok());
  EXPECT_TRUE((*c)->IsStable(1));
  ASSERT_TRUE((*c)->AdvanceTo(7).ok());
  EXPECT_EQ((*c)->Current(), 7u);
  EXPECT_EQ(*SimulatedCounter::ReadFile(Opts(0).path), 7u);
  ASSERT_TRUE((*c)->AdvanceTo(3).ok());
  EXPECT_EQ((*c)->Current(), 7u);
}

TEST_F(CounterTest, CorruptFileIsReported) {
  {
    auto c = SimulatedCounter::Open(Opts(0));
    ASSERT_TRUE(c.ok());
  }
  std::FILE* f = std::fopen(Opts(0).path.c_str(), "r+b");
  std::fseek(f, 9, SEEK_SET);
  std::fputc(0x55, f);
  std::fclose(f);
  EXPECT_EQ(SimulatedCounter::Open(Opts(0)).status().code(), StatusCode::kCorruption);
}

TEST_F(CounterTest, MustExistRefusesAMissingFile) {
  auto o = Opts(0);
  o.must_exist = true;
  EXPECT_EQ(SimulatedCounter::Open(o).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(o.path));
  ASSERT_TRUE(SimulatedCounter::Open(Opts(0)).ok());  // creates it
  EXPECT_TRUE(SimulatedCounter::Open(o).ok());
}

// Background mode (real clock, as in cosmosd): rounds in a stabiliser thread.
SimulatedCounter::Options RealClock(const std::filesystem::path& dir, uint64_t delay_ns) {
  SimulatedCounter::Options o;
  o.path = (dir / "bg").string();
  o.stabilisation_delay_ns = delay_ns;
  return o;
}

TEST_F(CounterTest, BackgroundRoundsCoalesceManyIncrementsIntoFewFileWrites) {
  auto c = SimulatedCounter::Open(RealClock(dir_, 50'000'000));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->background());
  // Increment never waits for the file: 100 increments are made long before
  // the first is due (50 ms), so rounds cover many values each.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*c)->Increment().ok());
  EXPECT_EQ((*c)->Current(), 100u);
  ASSERT_TRUE((*c)->WaitStable(100).ok());
  EXPECT_TRUE((*c)->IsStable(100));
  EXPECT_EQ(*SimulatedCounter::ReadFile(RealClock(dir_, 0).path), 100u);
  EXPECT_LT((*c)->rounds(), 100u);
  EXPECT_GE((*c)->rounds(), 1u);
  EXPECT_EQ((*c)->WaitStable(101).code(), StatusCode::kInvalidArgument);
}

TEST_F(CounterTest, BackgroundCloseStabilisesPendingValues) {
  {
    auto c = SimulatedCounter::Open(RealClock(dir_, 10'000'000));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Increment().ok());
    ASSERT_TRUE((*c)->AdvanceTo(5).ok());
  }  // clean close: nothing stays unstable
  EXPECT_EQ(*SimulatedCounter::ReadFile(RealClock(dir_, 0).path), 5u);
  auto c = SimulatedCounter::Open(RealClock(dir_, 10'000'000));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Current(), 5u);
  EXPECT_EQ((*c)->Stable(), 5u);
}

}  // namespace
}  // namespace cosmos::sec
