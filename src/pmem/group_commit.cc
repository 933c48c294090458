// Leader/follower group commit for page-granular durability.
#include "pmem/group_commit.h"

#include <algorithm>

namespace cosmos::pmem {

void GroupCommitter::AddRange(size_t offset, size_t len) {
  if (len == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_begin_ = std::min(pending_begin_, offset);
  pending_end_ = std::max(pending_end_, offset + len);
}

Status GroupCommitter::Sync() {
  std::unique_lock<std::mutex> lock(mu_);
  // Every range registered before this point is in pending_ or in a sync
  // already running; the ticket orders this request against leaders.
  const uint64_t ticket = ++requested_;
  while (true) {
    if (completed_ >= ticket) {
      return ticket >= first_failed_ticket_ ? error_ : Status::Ok();
    }
    if (!in_progress_) {
      // Lead: this sync starts after every request up to `covers` was made,
      // so it covers their ranges.
      const uint64_t covers = requested_;
      const uint64_t first_ticket = completed_ + 1;
      const size_t begin = pending_begin_;
      const size_t end = pending_end_;
      pending_begin_ = SIZE_MAX;
      pending_end_ = 0;
      Status status;
      if (!error_.ok()) {
        status = error_;  // sticky: never claim durability after a failure
      } else if (begin < end) {
        in_progress_ = true;
        ++syncs_issued_;
        lock.unlock();
        status = sync_(begin, end);
        lock.lock();
        in_progress_ = false;
      }
      if (!status.ok() && error_.ok()) error_ = status;
      if (!status.ok()) first_failed_ticket_ = std::min(first_failed_ticket_, first_ticket);
      completed_ = covers;
      cv_.notify_all();
      continue;
    }
    cv_.wait(lock);
  }
}

uint64_t GroupCommitter::syncs_issued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_issued_;
}

uint64_t GroupCommitter::sync_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requested_;
}

}  // namespace cosmos::pmem
