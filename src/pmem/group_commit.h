// GroupCommitter: merges concurrent durability requests on a page-granular
// medium into as few sync system calls as possible (leader/follower).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>

#include "cosmos/status.h"

namespace cosmos::pmem {

// Callers register dirty ranges (AddRange) and wait for durability (Sync).
// The first caller of Sync while no sync runs becomes the leader: it takes
// the union of all registered ranges, issues one sync for it outside the
// lock, and wakes everyone. A caller that arrives while a sync runs waits for
// it to finish and then either returns (a later sync that started after its
// request covered it) or leads the next sync on behalf of all waiters.
//
// Errors are sticky (after a failed msync/fsync the kernel may have dropped
// the dirty pages, so a later "successful" sync proves nothing): every Sync
// whose request was not fully covered by an earlier successful sync returns
// the first error, forever.
// Thread-safety: all methods may be called concurrently.
class GroupCommitter {
 public:
  // Makes [begin, end) durable; called by one leader at a time, never under
  // the committer's lock. Must return a non-ok Status on any failure.
  using SyncFn = std::function<Status(size_t begin, size_t end)>;

  explicit GroupCommitter(SyncFn sync) : sync_(std::move(sync)) {}

  // Records [offset, offset+len) as needing a sync. Cheap: no syscall.
  void AddRange(size_t offset, size_t len);

  // Returns once every range added before the call is durable. Returns the
  // sync error (sticky) if a covering sync failed.
  Status Sync();

  // Number of sync calls issued and Sync() requests served so far.
  uint64_t syncs_issued() const;
  uint64_t sync_requests() const;

 private:
  const SyncFn sync_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t pending_begin_ = SIZE_MAX;  // union of ranges not yet taken by a leader
  size_t pending_end_ = 0;
  uint64_t requested_ = 0;  // tickets handed out
  uint64_t completed_ = 0;  // every ticket <= completed_ is covered by a finished sync
  bool in_progress_ = false;
  uint64_t first_failed_ticket_ = UINT64_MAX;  // lowest ticket covered by a failed sync
  Status error_;
  uint64_t syncs_issued_ = 0;
};

}  // namespace cosmos::pmem
