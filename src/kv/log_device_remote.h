// RemoteLogDevice: a LogDevice over one region of a remote cosmosd, plain or
// secure (include/cosmos/client.h). The cosmos::Client is thread-affine, so a
// dedicated I/O thread creates and owns it and serves a queue of operations;
// any number of store threads may call the device concurrently and block
// until the I/O thread has run their operation. Flush maps to Region::Flush,
// WriteAfterFlush to Region::WriteAfterFlush (one round trip), Read to
// Region::Read; the durability level is the node's RegionInfo.durability.
#pragma once

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
  ClientOptions client;       // server address, timeout, secure credentials
  std::string region = "kv";  // region name on the node
  // Size of the region when it does not exist yet; 0: it must exist
  // (NotFound otherwise).
  uint64_t region_size = 0;
  // Create the region secure, and refuse an existing region that is not
  // (FailedPrecondition). Requires the secure client credentials. An
  // existing secure region is always accepted (and reported as secure).
  bool secure = false;
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
  // E.g. "remote 127.0.0.1:7410 region kv (secure, simulated enclave)".
  std::string_view BackendName() const override { return name_; }

  // True if the region is protected by the node's enclave (secure region).
  bool secure() const { return secure_; }
  // True if the enclave pinned by the measurement file is the simulated one
  // (no hardware isolation). False for plain regions.
  bool simulated_enclave() const { return simulated_enclave_; }
  // True if Open created the region.
  bool created() const { return created_; }

  Status Read(uint64_t offset, void* out, size_t len) override;
  Status Write(uint64_t offset, const void* data, size_t len) override;
  Status Flush(uint64_t offset, uint64_t len) override;
  Status WriteAfterFlush(uint64_t offset, uint64_t value) override;

 private:
  struct Op;
  struct OpenState;
  explicit RemoteLogDevice(RemoteLogDeviceOptions options);
  Status Submit(Op* op);
  void IoLoop(std::shared_ptr<OpenState> open_state);
  Status RunOp(Region* region, Op* op);
  Status CheckRange(uint64_t offset, uint64_t len) const;

  const RemoteLogDeviceOptions options_;
  uint64_t size_ = 0;
  std::string durability_;
  std::string name_;
  bool secure_ = false;
  bool simulated_enclave_ = false;
  bool created_ = false;

  std::mutex mu_;
  std::condition_variable work_cv_;  // I/O thread waits for operations
  std::condition_variable done_cv_;  // callers wait for their operation
  std::deque<Op*> queue_;
  bool stopping_ = false;
  Status failed_;  // sticky; guarded by mu_
  std::thread io_;
};

}  // namespace cosmos::kv
