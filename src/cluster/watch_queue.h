// WatchQueue: the hand-off between the producer of a watch stream (a
// transfer thread, or the in-memory etcd) and its consumer's Next(). Shared
// by the etcd backends; not part of the layer's interface.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "cluster/etcd_client.h"

namespace cosmos::cluster {

// Thread-safety: every method may be called from any thread.
class WatchQueue {
 public:
  // Queues a batch; dropped once the queue has ended.
  void Push(WatchBatch batch);
  // Marks the watch confirmed by etcd (see WaitConfirmed).
  void Confirm();
  // Ends the stream with `status` (the first reason wins). Batches queued
  // before it are still delivered.
  void End(Status status);

  // Waits up to `timeout` for Confirm() or End(). Ok once confirmed; the end
  // status if it ended first; Timeout otherwise.
  Status WaitConfirmed(std::chrono::milliseconds timeout);
  // WatchStream::Next: the oldest batch, else the end status, else Timeout
  // after `timeout`.
  Result<WatchBatch> Next(std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WatchBatch> batches_;
  bool confirmed_ = false;
  bool ended_ = false;
  Status end_status_;
};

}  // namespace cosmos::cluster
