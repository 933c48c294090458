// Tests for the leader/follower group commit.
#include "pmem/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace cosmos::pmem {
namespace {

TEST(GroupCommitter, SyncsTheUnionOfRegisteredRanges) {
  std::vector<std::pair<size_t, size_t>> calls;
  GroupCommitter gc([&](size_t b, size_t e) {
    calls.emplace_back(b, e);
    return Status::Ok();
  });
  gc.AddRange(100, 10);
  gc.AddRange(5000, 100);
  ASSERT_TRUE(gc.Sync().ok());
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].first, 100u);
  EXPECT_EQ(calls[0].second, 5100u);
}

TEST(GroupCommitter, SyncWithNothingPendingIssuesNoSyscall) {
  int calls = 0;
  GroupCommitter gc([&](size_t, size_t) {
    ++calls;
    return Status::Ok();
  });
  ASSERT_TRUE(gc.Sync().ok());
  EXPECT_EQ(calls, 0);
}

// Waiters that arrive while a sync runs are all served by one later sync.
TEST(GroupCommitter, WaitersDuringASyncShareTheNextOne) {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> calls{0};
  GroupCommitter gc([&](size_t, size_t) {
    if (calls.fetch_add(1) == 0) {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return release; });
    }
    return Status::Ok();
  });
  gc.AddRange(0, 8);
  std::thread leader([&] { EXPECT_TRUE(gc.Sync().ok()); });
  while (calls.load() == 0) std::this_thread::yield();  // leader is inside the sync
  constexpr int kFollowers = 16;
  std::vector<std::thread> followers;
  for (int i = 0; i < kFollowers; ++i) {
    followers.emplace_back([&, i] {
      gc.AddRange(static_cast<size_t>(i) * 4096, 64);
      EXPECT_TRUE(gc.Sync().ok());
    });
  }
  while (gc.sync_requests() < 1 + kFollowers) std::this_thread::yield();
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  leader.join();
  for (auto& t : followers) t.join();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(gc.syncs_issued(), 2u);
}

TEST(GroupCommitter, FailureIsStickyForEveryLaterSync) {
  int calls = 0;
  GroupCommitter gc([&](size_t, size_t) {
    ++calls;
    return calls == 1 ? Status::IoError("disk on fire") : Status::Ok();
  });
  gc.AddRange(0, 8);
  Status first = gc.Sync();
  EXPECT_EQ(first.code(), StatusCode::kIoError);
  gc.AddRange(0, 8);
  Status second = gc.Sync();
  EXPECT_EQ(second.code(), StatusCode::kIoError);
  EXPECT_EQ(second.message(), "disk on fire");
  EXPECT_EQ(calls, 1);  // no sync is attempted after a failure
}

TEST(GroupCommitter, ManyThreadsAllSucceed) {
  std::atomic<int> calls{0};
  GroupCommitter gc([&](size_t, size_t) {
    calls.fetch_add(1);
    return Status::Ok();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        gc.AddRange(static_cast<size_t>(t) * 64, 64);
        EXPECT_TRUE(gc.Sync().ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(gc.sync_requests(), 1600u);
  EXPECT_LE(calls.load(), 1600);
  EXPECT_GE(calls.load(), 1);
}

}  // namespace
}  // namespace cosmos::pmem
