// The producer/consumer hand-off of a watch stream.
#include "cluster/watch_queue.h"

namespace cosmos::cluster {

void WatchQueue::Push(WatchBatch batch) {
  std::lock_guard lock(mu_);
  if (ended_) return;
  batches_.push_back(std::move(batch));
  cv_.notify_all();
}

void WatchQueue::Confirm() {
  std::lock_guard lock(mu_);
  confirmed_ = true;
  cv_.notify_all();
}

void WatchQueue::End(Status status) {
  std::lock_guard lock(mu_);
  if (ended_) return;
  ended_ = true;
  end_status_ = std::move(status);
  cv_.notify_all();
}

Status WatchQueue::WaitConfirmed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return confirmed_ || ended_; });
  if (confirmed_) return Status::Ok();
  if (ended_) return end_status_;
  return Status::Timeout("etcd did not confirm the watch within " +
                         std::to_string(timeout.count()) + " ms");
}

Result<WatchBatch> WatchQueue::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return !batches_.empty() || ended_; });
  if (!batches_.empty()) {
    WatchBatch batch = std::move(batches_.front());
    batches_.pop_front();
    return batch;
  }
  if (ended_) return end_status_;
  return Status::Timeout("no watch event within " + std::to_string(timeout.count()) + " ms");
}

}  // namespace cosmos::cluster
