// RemoteLogDevice implementation: one I/O thread owns the cosmos::Client and
// runs queued operations in order; callers block on their operation.
#include "kv/log_device_remote.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <span>

#include "sec/attestation.h"
#include "sec/key_files.h"

namespace cosmos::kv {

namespace {

constexpr uint64_t kMinRegionSize = 1u << 20;

std::span<const std::byte> AsBytes(const void* p, size_t n) {
  return {static_cast<const std::byte*>(p), n};
}

// Errors that say nothing about the session or the medium: the device stays
// usable after them.
bool IsCallerError(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kOutOfRange;
}

}  // namespace

struct RemoteLogDevice::Op {
  enum class Kind { kRead, kWrite, kFlush, kWriteAfterFlush } kind;
  uint64_t offset = 0;
  uint64_t len = 0;
  void* out = nullptr;
  const void* in = nullptr;
  uint64_t value = 0;
  Status status;
  bool done = false;
};

// Result of the I/O thread's connect + open, handed to Open().
struct RemoteLogDevice::OpenState {
  std::promise<Status> ready;
};

RemoteLogDevice::RemoteLogDevice(RemoteLogDeviceOptions options) : options_(std::move(options)) {}

RemoteLogDevice::~RemoteLogDevice() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (io_.joinable()) io_.join();
}

Result<std::unique_ptr<RemoteLogDevice>> RemoteLogDevice::Open(
    const RemoteLogDeviceOptions& options) {
  if (options.replicas < 0 || options.replicas > 5) {
    return Status::InvalidArgument("replicas must be 1..5, got " +
                                   std::to_string(options.replicas));
  }
  if (options.secure && !options.client.secure()) {
    return Status::FailedPrecondition(
        "a secure region needs --platform-pub, --measurement and --client-key");
  }
  std::unique_ptr<RemoteLogDevice> dev(new RemoteLogDevice(options));
  if (options.client.secure()) {
    // The measurement the client pins names the enclave build; the only one
    // that exists today is the simulated enclave (no hardware isolation).
    auto policy = sec::LoadAttestationPolicy(options.client.platform_public_key_file,
                                             options.client.measurement_file);
    if (policy.ok()) {
      dev->simulated_enclave_ =
          policy->expected_measurement == sec::SimulatedMeasurement(sec::kSimulatedEnclaveIdentity);
    }
  }
  auto state = std::make_shared<OpenState>();
  std::future<Status> ready = state->ready.get_future();
  dev->io_ = std::thread([raw = dev.get(), state] { raw->IoLoop(state); });
  Status s = ready.get();
  if (!s.ok()) return s;  // the destructor joins the (finished) I/O thread
  return dev;
}

void RemoteLogDevice::IoLoop(std::shared_ptr<OpenState> open_state) {
  // Everything the Client touches lives on this thread.
  auto client = Client::Connect(options_.client);
  if (!client.ok()) {
    open_state->ready.set_value(
        Status(client.status().code(),
               "connect to cosmosd " + Where() + ": " + client.status().message()));
    return;
  }
  auto region = (*client)->OpenRegion(options_.region);
  if (!region.ok() && region.status().code() == StatusCode::kNotFound && options_.region_size > 0) {
    RegionOptions ropts;
    ropts.secure = options_.secure;
    ropts.replicas = replicated() ? options_.replicas : 0;
    auto info = (*client)->CreateRegion(options_.region, options_.region_size, ropts);
    if (info.ok()) {
      created_ = true;
    } else if (info.status().code() != StatusCode::kAlreadyExists) {
      open_state->ready.set_value(info.status());
      return;
    }
    region = (*client)->OpenRegion(options_.region);
  }
  if (!region.ok()) {
    open_state->ready.set_value(Status(
        region.status().code(),
        "region '" + options_.region + "' on " + Where() + ": " + region.status().message()));
    return;
  }
  const RegionInfo& info = (*region)->info();
  if (options_.secure && !info.secure) {
    open_state->ready.set_value(Status::FailedPrecondition(
        "region '" + options_.region + "' on " + Where() +
        " exists but is not secure (delete it or pick another --region)"));
    return;
  }
  if (info.size < kMinRegionSize) {
    open_state->ready.set_value(
        Status::InvalidArgument("region '" + options_.region + "' is smaller than 1 MiB"));
    return;
  }
  size_ = info.size;
  durability_ = DurabilityName(info.durability);
  secure_ = info.secure;
  if (!secure_) simulated_enclave_ = false;
  if (replicated()) {
    copies_ = static_cast<uint32_t>(std::max<size_t>(info.replicas.size(), 1));
    name_ = Where() + " region " + options_.region + " (" +
            (secure_ ? "secure, enclave to enclave" : "plain") +
            ", replicated: " + std::to_string(copies_.load()) +
            (copies_ == 1 ? " copy" : " copies") + " at open)";
  } else {
    name_ = "remote " + options_.client.server + " region " + options_.region;
    if (!secure_) {
      name_ += options_.client.secure() ? " (plain region, secure connection)" : " (plain)";
    } else if (simulated_enclave_) {
      name_ += " (secure, simulated enclave)";
    } else {
      name_ += " (secure, pinned enclave measurement)";
    }
  }
  open_state->ready.set_value(Status::Ok());

  const auto idle = std::chrono::milliseconds(options_.idle_poll_ms);
  for (;;) {
    std::unique_lock l(mu_);
    work_cv_.wait_for(l, idle, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) break;
      l.unlock();
      (*client)->Poll(0);  // heartbeats of an idle session
      continue;
    }
    Op* op = queue_.front();
    queue_.pop_front();
    Status failed = failed_;
    l.unlock();
    Status s = failed.ok() ? RunOp(region->get(), op) : failed;
    if (replicated()) {
      // The configuration the operation completed in (a failover inside it
      // moved the Region to a new epoch).
      const size_t n = (*region)->info().replicas.size();
      copies_.store(static_cast<uint32_t>(std::max<size_t>(n, 1)), std::memory_order_relaxed);
    }
    l.lock();
    if (!s.ok() && !IsCallerError(s) && failed_.ok()) {
      failed_ = Status(s.code(), "remote log device failed (restart to reopen): " + s.message());
    }
    op->status = std::move(s);
    op->done = true;
    l.unlock();
    done_cv_.notify_all();
  }
  region->reset();  // sends what is still buffered, waits for answers
  client->reset();
}

Status RemoteLogDevice::RunOp(Region* region, Op* op) {
  switch (op->kind) {
    case Op::Kind::kRead:
      return region->Read(op->offset,
                          std::span<std::byte>(static_cast<std::byte*>(op->out), op->len));
    case Op::Kind::kWrite:
      return region->Write(op->offset, AsBytes(op->in, op->len));
    case Op::Kind::kFlush:
      return region->Flush(op->offset, op->len);
    case Op::Kind::kWriteAfterFlush:
      return region->WriteAfterFlush(op->offset, op->value);
  }
  return Status::Internal("remote log device: unknown operation");
}

std::string RemoteLogDevice::Where() const {
  return replicated() ? "cluster " + options_.client.cluster : options_.client.server;
}

Status RemoteLogDevice::Submit(Op* op) {
  std::unique_lock l(mu_);
  if (!failed_.ok()) return failed_;
  if (stopping_) return Status::FailedPrecondition("remote log device is closing");
  queue_.push_back(op);
  work_cv_.notify_one();
  done_cv_.wait(l, [&] { return op->done; });
  return op->status;
}

Status RemoteLogDevice::CheckRange(uint64_t offset, uint64_t len) const {
  if (offset > size_ || len > size_ - offset) {
    return Status::OutOfRange("remote log device: range [" + std::to_string(offset) + ", +" +
                              std::to_string(len) + ") outside " + std::to_string(size_) +
                              " bytes");
  }
  return Status::Ok();
}

Status RemoteLogDevice::Read(uint64_t offset, void* out, size_t len) {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  if (len == 0) return Status::Ok();
  Op op{.kind = Op::Kind::kRead, .offset = offset, .len = len, .out = out};
  return Submit(&op);
}

Status RemoteLogDevice::Write(uint64_t offset, const void* data, size_t len) {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  if (len == 0) return Status::Ok();
  Op op{.kind = Op::Kind::kWrite, .offset = offset, .len = len, .in = data};
  return Submit(&op);
}

Status RemoteLogDevice::Flush(uint64_t offset, uint64_t len) {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  Op op{.kind = Op::Kind::kFlush, .offset = offset, .len = len};
  return Submit(&op);
}

Status RemoteLogDevice::WriteAfterFlush(uint64_t offset, uint64_t value) {
  if (offset % 8 != 0) {
    return Status::InvalidArgument("remote log device: WriteAfterFlush offset " +
                                   std::to_string(offset) + " is not 8-byte aligned");
  }
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, 8));
  Op op{.kind = Op::Kind::kWriteAfterFlush, .offset = offset, .value = value};
  return Submit(&op);
}

Result<uint32_t> RemoteLogDevice::DurableBackups() {
  if (!replicated()) return 0u;
  // The flush reaches every backup of the epoch it completes in; a backup
  // that fails it is removed (new epoch) and the flush repeated, so the
  // configuration read afterwards holds only copies that acknowledged.
  Op op{.kind = Op::Kind::kFlush, .offset = 0, .len = 8};
  COSMOS_RETURN_IF_ERROR(Submit(&op));
  return copies() - 1;
}

}  // namespace cosmos::kv
