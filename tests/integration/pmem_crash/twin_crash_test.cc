// Crash tests on the fault-injection twin: the workload is cut at every
// persist point (discarding or tearing what was not yet durable), then the
// pool is reopened and every invariant checked: it opens, passes Check(),
// holds exactly the state of the completed operations (or of one more, for
// the interrupted metadata operation), and keeps working.
// COSMOS_CRASH_SEEDS=N scales the tear-mode seeds (scripts/soak_pmem.sh).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "pmem/fault_injection.h"
#include "workload.h"

namespace cosmos::pmem::crashtest {
namespace {

constexpr size_t kMediumSize = 512 * 1024;
constexpr uint32_t kMaxRegions = 8;

uint64_t TearSeeds() {
  const char* env = std::getenv("COSMOS_CRASH_SEEDS");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 5;
}

struct Outcome {
  bool pool_created = false;
  size_t completed = 0;  // operations that returned Ok before the crash
};

// Runs the workload on `medium` until the armed crash hits (or to the end).
Outcome RunUntilCrash(FaultInjectionMedium& medium, const std::vector<Op>& ops) {
  Outcome out;
  auto mapping = medium.Map();
  if (!mapping.ok()) return out;
  auto pool = Pool::CreateOnMapping(std::move(*mapping), "twin", kMaxRegions);
  if (!pool.ok()) return out;
  out.pool_created = true;
  for (const Op& op : ops) {
    if (!Execute(**pool, op).ok()) break;
    ++out.completed;
  }
  return out;
}

// Reopens after the crash and checks every invariant; "" if all hold.
std::string Verify(FaultInjectionMedium& medium, const std::vector<Op>& ops,
                   const std::vector<Model>& models, const Outcome& outcome) {
  auto mapping = medium.Map();
  if (!mapping.ok()) return mapping.status().ToString();
  auto pool = Pool::OpenOnMapping(std::move(*mapping), "twin");
  if (!pool.ok()) {
    // Only a pool whose creation never finished may fail to open.
    if (!outcome.pool_created) return "";
    return "reopen failed: " + pool.status().ToString();
  }
  if (Status s = (*pool)->Check(); !s.ok()) return "check failed: " + s.ToString();
  const size_t done = outcome.completed;
  std::string skip;
  if (done < ops.size() && (ops[done].kind == Op::kWrite || ops[done].kind == Op::kAtomic)) {
    skip = ops[done].region;  // interrupted data write: its bytes are indeterminate
  }
  std::string diff = Diff(**pool, models[done], skip);
  if (!diff.empty() && done < ops.size()) {
    const std::string next = Diff(**pool, models[done + 1], skip);
    if (next.empty()) diff.clear();
  }
  if (!diff.empty()) return "after " + std::to_string(done) + " ops: " + diff;
  // The recovered pool keeps working.
  {
    auto r = (*pool)->CreateRegion("after-crash", 4096);
    if (!r.ok()) return "create after recovery: " + r.status().ToString();
  }
  if (Status s = (*pool)->DeleteRegion("after-crash"); !s.ok()) return s.ToString();
  if (Status s = (*pool)->Check(); !s.ok()) return "check after use: " + s.ToString();
  return "";
}

uint64_t CountPersistPoints(const std::vector<Op>& ops) {
  auto medium = FaultInjectionMedium::Create(kMediumSize);
  const Outcome o = RunUntilCrash(*medium, ops);
  EXPECT_EQ(o.completed, ops.size());
  return medium->persist_points();
}

TEST(TwinCrash, EveryPersistPointRecoversToACompletedPrefix) {
  const auto ops = MakeWorkload(42);
  const auto models = ModelsOf(ops);
  const uint64_t points = CountPersistPoints(ops);
  ASSERT_GT(points, 30u);
  const uint64_t seeds = TearSeeds();
  uint64_t crashes = 0;
  // Mode 0 discards everything not durable; modes 1..seeds tear it.
  for (uint64_t mode = 0; mode <= seeds; ++mode) {
    for (uint64_t point = 1; point <= points; ++point) {
      auto medium = FaultInjectionMedium::Create(kMediumSize);
      medium->CrashAtPersistPoint(
          point, mode == 0 ? CrashMode::kDiscardUnpersisted : CrashMode::kTearUnpersisted, mode);
      const Outcome outcome = RunUntilCrash(*medium, ops);
      ASSERT_TRUE(medium->crashed()) << "point " << point;
      const std::string failure = Verify(*medium, ops, models, outcome);
      ASSERT_EQ(failure, "") << "crash at persist point " << point << " of " << points << ", mode "
                             << mode;
      ++crashes;
    }
  }
  std::printf("twin crash test: %llu crash points (%llu persist points x %llu modes)\n",
              static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(points),
              static_cast<unsigned long long>(seeds + 1));
  EXPECT_GE(crashes, 200u);
}

// A crash during recovery itself (replaying a record) must also recover.
TEST(TwinCrash, CrashDuringRecoveryRecoversAgain) {
  const auto ops = MakeWorkload(7);
  const auto models = ModelsOf(ops);
  const uint64_t points = CountPersistPoints(ops);
  uint64_t checked = 0;
  for (uint64_t point = 1; point <= points; ++point) {
    auto medium = FaultInjectionMedium::Create(kMediumSize);
    medium->CrashAtPersistPoint(point);
    const Outcome outcome = RunUntilCrash(*medium, ops);
    // Crash at the first persist point of the recovery, if it has any.
    medium->CrashAtPersistPoint(1, CrashMode::kTearUnpersisted, point);
    {
      auto mapping = medium->Map();
      ASSERT_TRUE(mapping.ok());
      auto pool = Pool::OpenOnMapping(std::move(*mapping), "twin");
      if (pool.ok() && !medium->crashed()) continue;  // recovery had nothing to persist
    }
    medium->CrashAtPersistPoint(0);
    ASSERT_EQ(Verify(*medium, ops, models, outcome), "") << "point " << point;
    ++checked;
  }
  EXPECT_GT(checked, 0u);
}

TEST(TwinCrash, InjectedSyncFailureAtEveryPointNeverCorruptsThePool) {
  const auto ops = MakeWorkload(3);
  const uint64_t points = CountPersistPoints(ops);
  for (uint64_t point = 1; point <= points; ++point) {
    auto medium = FaultInjectionMedium::Create(kMediumSize);
    medium->FailSyncAt(point);
    auto pool = Pool::CreateOnMapping(*medium->Map(), "twin", kMaxRegions);
    if (pool.ok()) {
      for (const Op& op : ops) {
        if (!Execute(**pool, op).ok()) break;  // the error reached the caller
      }
    }
    auto reopened = Pool::OpenOnMapping(*medium->Map(), "twin");
    if (reopened.ok()) {
      ASSERT_TRUE((*reopened)->Check().ok()) << "point " << point;
    } else {
      ASSERT_TRUE(!pool.ok()) << "point " << point << ": " << reopened.status();
    }
  }
}

}  // namespace
}  // namespace cosmos::pmem::crashtest
