// Crash-safety tests: a simulated power loss at every persist point (each
// Flush and WriteAfterFlush) during appends and compactions, with torn
// unflushed words, must recover every acknowledged write and no partial batch.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <thread>

#include "kv/log_device_memory.h"
#include "kv/store.h"

namespace cosmos::kv {
namespace {

using Model = std::map<std::string, std::string>;

struct Step {
  enum Kind { kPut, kDelete, kMultiPut, kCompact } kind;
  std::string key, value;
};

std::vector<Step> Workload() {
  std::vector<Step> steps;
  for (int i = 0; i < 12; ++i) {
    steps.push_back({Step::kPut, "k" + std::to_string(i % 5), "w" + std::to_string(i)});
  }
  steps.push_back({Step::kDelete, "k1", ""});
  steps.push_back({Step::kMultiPut, "m", "batch"});
  steps.push_back({Step::kCompact, "", ""});
  for (int i = 0; i < 6; ++i) {
    steps.push_back({Step::kPut, "k" + std::to_string(i % 3), "x" + std::to_string(i)});
  }
  steps.push_back({Step::kCompact, "", ""});
  steps.push_back({Step::kDelete, "k2", ""});
  steps.push_back({Step::kPut, "k9", "last"});
  return steps;
}

void ApplyToModel(const Step& st, Model* m) {
  switch (st.kind) {
    case Step::kPut:
      (*m)[st.key] = st.value;
      break;
    case Step::kDelete:
      m->erase(st.key);
      break;
    case Step::kMultiPut:
      for (int j = 0; j < 4; ++j) (*m)[st.key + std::to_string(j)] = st.value;
      break;
    case Step::kCompact:
      break;
  }
}

Model ReadAll(Store* s) {
  Model m;
  auto keys = s->Keys("*");
  EXPECT_TRUE(keys.ok());
  for (const auto& k : *keys) {
    std::string v;
    EXPECT_TRUE(*s->Get(k, &v));
    m[k] = v;
  }
  return m;
}

// Runs the workload with power lost at persist point `base + k`; returns
// false once k is beyond the workload's last persist point.
bool RunCrashAt(uint64_t k, uint64_t tear_seed) {
  MemoryLogDevice dev(256 * 1024);
  StoreOptions o;
  o.background_compaction = false;
  Model acked;
  std::optional<Model> maybe;  // state if the interrupted step took effect
  bool reached = false;
  {
    auto s = Store::Open(&dev, o);
    EXPECT_TRUE(s.ok()) << s.status();
    // Prefill so compaction has garbage and live data in the old half.
    for (int i = 0; i < 40; ++i) {
      WriteBatch b;
      const std::string key = "k" + std::to_string(i % 7);
      const std::string v = "pre" + std::to_string(i);
      b.Put(key, v);
      EXPECT_TRUE((*s)->WaitDurable(*(*s)->Apply(b)).ok());
      acked[key] = v;
    }
    const uint64_t base = dev.persist_count();
    dev.CrashAtPersistPoint(base + k);
    for (const Step& st : Workload()) {
      Status result;
      if (st.kind == Step::kCompact) {
        result = (*s)->Compact();
      } else {
        WriteBatch b;
        std::vector<std::string> keys;
        if (st.kind == Step::kPut) b.Put(st.key, st.value);
        if (st.kind == Step::kDelete) b.Delete(st.key);
        if (st.kind == Step::kMultiPut) {
          for (int j = 0; j < 4; ++j) keys.push_back(st.key + std::to_string(j));
          for (const auto& key : keys) b.Put(key, st.value);
        }
        auto seq = (*s)->Apply(b);
        result = seq.ok() ? (*s)->WaitDurable(*seq) : seq.status();
      }
      if (!result.ok()) {
        reached = true;
        Model after = acked;
        ApplyToModel(st, &after);
        maybe = after;
        break;
      }
      ApplyToModel(st, &acked);
    }
  }
  dev.Crash(tear_seed);
  auto s = Store::Open(&dev, o);
  EXPECT_TRUE(s.ok()) << "crash at point " << k << ": " << s.status();
  if (!s.ok()) return false;
  const Model got = ReadAll(s->get());
  if (maybe.has_value()) {
    EXPECT_TRUE(got == acked || got == *maybe) << "crash at persist point " << k;
  } else {
    EXPECT_EQ(got, acked) << "crash at persist point " << k;
  }
  // The recovered store accepts writes and survives another restart.
  WriteBatch b;
  b.Put("after", "crash");
  EXPECT_TRUE((*s)->WaitDurable(*(*s)->Apply(b)).ok());
  s->reset();
  auto again = Store::Open(&dev, o);
  EXPECT_TRUE(again.ok());
  return reached;
}

// The workload's persist points: one flush per append (22) and five per
// compaction (2). A crash test that crashed nowhere would pass vacuously, so
// each sweep asserts it crashed at least this often.
constexpr uint64_t kMinCrashPoints = 32;

TEST(StoreCrash, RecoversAckedStateAtEveryPersistPoint) {
  uint64_t points = 0;
  for (uint64_t k = 1; k < 1000; ++k) {
    if (!RunCrashAt(k, 0)) break;
    ++points;
  }
  EXPECT_GE(points, kMinCrashPoints);
}

TEST(StoreCrash, RecoversAtEveryPersistPointWithTornUnflushedWords) {
  uint64_t points = 0;
  for (uint64_t k = 1; k < 1000; ++k) {
    if (!RunCrashAt(k, 1000 + k)) break;
    ++points;
  }
  EXPECT_GE(points, kMinCrashPoints);
}

TEST(StoreCrash, ConcurrentWritersKeepAcknowledgedWrites) {
  for (uint64_t crash_point : {7u, 23u, 61u, 150u, 333u}) {
    MemoryLogDevice dev(512 * 1024);
    constexpr int kThreads = 4;
    std::vector<int> acked(kThreads, -1), attempted(kThreads, -1);
    {
      auto s = Store::Open(&dev);
      ASSERT_TRUE(s.ok());
      const uint64_t crash_at = dev.persist_count() + crash_point;
      dev.CrashAtPersistPoint(crash_at);
      std::vector<std::thread> ts;
      for (int t = 0; t < kThreads; ++t) {
        ts.emplace_back([&, t] {
          for (int i = 0; i < 2000; ++i) {
            WriteBatch b;
            const std::string key = "t" + std::to_string(t);
            const std::string v = std::to_string(i);
            const std::string copy_key = key + "-copy";
            b.Put(key, v);
            b.Put(copy_key, v);  // same batch: must never be half-present
            auto seq = (*s)->Apply(b);
            attempted[t] = i;
            if (!seq.ok() || !(*s)->WaitDurable(*seq).ok()) return;
            acked[t] = i;
          }
        });
      }
      for (auto& t : ts) t.join();
      // The writers ran into the crash (else this round proves nothing).
      EXPECT_GE(dev.persist_count(), crash_at) << "crash point " << crash_point;
    }
    dev.Crash(crash_point);
    auto s = Store::Open(&dev);
    ASSERT_TRUE(s.ok()) << s.status();
    for (int t = 0; t < kThreads; ++t) {
      std::string v, copy;
      const std::string key = "t" + std::to_string(t);
      const bool has = *(*s)->Get(key, &v);
      const bool has_copy = *(*s)->Get(key + "-copy", &copy);
      ASSERT_EQ(has, has_copy);
      if (acked[t] >= 0) {
        ASSERT_TRUE(has);
      }
      if (has) {
        EXPECT_EQ(v, copy);
        EXPECT_GE(std::stoi(v), acked[t]);
        EXPECT_LE(std::stoi(v), attempted[t]);
      }
    }
  }
}

}  // namespace
}  // namespace cosmos::kv
