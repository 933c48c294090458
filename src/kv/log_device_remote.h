// RemoteLogDevice: a LogDevice over one region of a remote cosmosd, plain or
// secure (include/cosmos/client.h). The cosmos::Client is thread-affine, so a
// dedicated I/O thread creates and owns it and serves a queue of operations;
// any number of store threads may call the device concurrently and block
// until the I/O thread has run their operation. Flush maps to Region::Flush,
// WriteAfterFlush to Region::WriteAfterFlush (one round trip), Read to
// Region::Read; the durability level is the node's RegionInfo.durability.
// With ClientOptions::cluster set the region is a replicated region of a
// cluster (docs/cluster.md): the cluster client talks to its primary, and a
// completed Flush / WriteAfterFlush is durable on every replica of the
// region's current epoch; a failover is ridden out inside those calls.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cosmos/client.h"
#include "cosmos/result.h"
#include "kv/log_device.h"

namespace cosmos::kv {

struct RemoteLogDeviceOptions {
  // Server address (or, with client.cluster set, the etcd endpoints of a
  // cluster), timeout, secure credentials.
  ClientOptions client;
  std::string region = "kv";  // region name on the node
  // Size of the region when it does not exist yet; 0: it must exist
  // (NotFound otherwise).
  uint64_t region_size = 0;
  // Create the region secure, and refuse an existing region that is not
  // (FailedPrecondition). Requires the secure client credentials. An
  // existing secure region is always accepted (and reported as secure).
  bool secure = false;
  // Cluster mode only: copies (1..5) of the region when Open creates it; 0
  // means 1. An existing region keeps its replication factor.
  int replicas = 0;
  // Idle I/O thread polls the client this often (session heartbeats).
  uint32_t idle_poll_ms = 20;
};

// Thread-safety: every LogDevice method may be called from any thread; the
// calls are serialized on the I/O thread in arrival order (so a Read issued
// after a Write returned sees it). After a transport or medium failure
// (anything but InvalidArgument/OutOfRange) the device is failed for good:
// every later call returns that error. Posted writes the node may have lost
// are never made to look durable; restart and reopen to recover.
class RemoteLogDevice final : public LogDevice {
 public:
  // Starts the I/O thread, connects, and opens (or creates, see
  // options.region_size / secure) the region. Errors: the client's Connect
  // errors (InvalidArgument, Unavailable, PermissionDenied,
  // IntegrityViolation), NotFound (region missing, no size), the
  // CreateRegion errors, FailedPrecondition (secure requested but the region
  // is plain, or secure without credentials), InvalidArgument (region
  // smaller than 1 MiB).
  static Result<std::unique_ptr<RemoteLogDevice>> Open(const RemoteLogDeviceOptions& options);
  // Finishes queued operations, closes the region and the connection.
  ~RemoteLogDevice() override;

  uint64_t Size() const override { return size_; }
  std::string_view DurabilityLevel() const override { return durability_; }
  // E.g. "remote 127.0.0.1:7410 region kv (secure, simulated enclave)", or
  // "cluster http://127.0.0.1:2379 region kv (plain, replicated: 2 copies at
  // open)".
  std::string_view BackendName() const override { return name_; }

  // True if the region is protected by the node's enclave (secure region).
  bool secure() const { return secure_; }
  // True if the enclave pinned by the measurement file is the simulated one
  // (no hardware isolation). False for plain regions.
  bool simulated_enclave() const { return simulated_enclave_; }
  // True if Open created the region.
  bool created() const { return created_; }
  // True for a region of a cluster (client.cluster set).
  bool replicated() const { return !options_.client.cluster.empty(); }
  // Copies of the region (primary included) in the configuration of the
  // latest completed operation; 1 when not replicated. Any thread.
  uint32_t copies() const { return copies_.load(std::memory_order_relaxed); }

  Status Read(uint64_t offset, void* out, size_t len) override;
  Status Write(uint64_t offset, const void* data, size_t len) override;
  Status Flush(uint64_t offset, uint64_t len) override;
  Status WriteAfterFlush(uint64_t offset, uint64_t value) override;
  // Replicated: flushes the first 8 bytes (a round trip the primary forwards
  // to every backup of the current epoch, riding out a failover) and returns
  // copies() - 1 of that configuration. 0 at once when not replicated.
  Result<uint32_t> DurableBackups() override;

 private:
  struct Op;
  struct OpenState;
  explicit RemoteLogDevice(RemoteLogDeviceOptions options);
  Status Submit(Op* op);
  void IoLoop(std::shared_ptr<OpenState> open_state);
  Status RunOp(Region* region, Op* op);
  Status CheckRange(uint64_t offset, uint64_t len) const;
  // "127.0.0.1:7410" or "cluster http://...:2379" (for messages).
  std::string Where() const;

  const RemoteLogDeviceOptions options_;
  uint64_t size_ = 0;
  std::string durability_;
  std::string name_;
  bool secure_ = false;
  bool simulated_enclave_ = false;
  bool created_ = false;
  std::atomic<uint32_t> copies_{1};  // written by the I/O thread

  std::mutex mu_;
  std::condition_variable work_cv_;  // I/O thread waits for operations
  std::condition_variable done_cv_;  // callers wait for their operation
  std::deque<Op*> queue_;
  bool stopping_ = false;
  Status failed_;  // sticky; guarded by mu_
  std::thread io_;
};

}  // namespace cosmos::kv
