// Fault-injection twin of a pool medium.
#include "pmem/fault_injection.h"

#include <sys/mman.h>

#include <cstring>
#include <random>
#include <string>

#include "common/check.h"

namespace cosmos::pmem {

class FaultInjectionMapping final : public Mapping {
 public:
  FaultInjectionMapping(std::shared_ptr<FaultInjectionMedium> medium, std::byte* base, size_t size,
                        uint64_t epoch)
      : Mapping(base, size, true), medium_(std::move(medium)), epoch_(epoch) {}
  ~FaultInjectionMapping() override { munmap(base(), size()); }

  DurabilityLevel durability() const override { return DurabilityLevel::kCacheline; }
  std::string_view backend_name() const override { return "fault-injection"; }

  Status Flush(size_t offset, size_t len) override {
    CheckRange(offset, len);
    std::lock_guard<std::mutex> lock(medium_->mu_);
    COSMOS_RETURN_IF_ERROR(Alive());
    if (len > 0) pending_.push_back({offset, len});
    return Status::Ok();
  }
  Status Drain() override {
    std::lock_guard<std::mutex> lock(medium_->mu_);
    COSMOS_RETURN_IF_ERROR(Alive());
    return medium_->PersistPoint(base(), &pending_);
  }
  Status Persist(size_t offset, size_t len) override {
    CheckRange(offset, len);
    std::lock_guard<std::mutex> lock(medium_->mu_);
    COSMOS_RETURN_IF_ERROR(Alive());
    if (len > 0) pending_.push_back({offset, len});
    return medium_->PersistPoint(base(), &pending_);
  }

 private:
  // REQUIRES: medium_->mu_ held.
  Status Alive() const {
    if (medium_->crashed_ || medium_->epoch_ != epoch_) {
      return Status::IoError("fault injection: simulated crash, medium unavailable");
    }
    return Status::Ok();
  }

  std::shared_ptr<FaultInjectionMedium> medium_;
  const uint64_t epoch_;
  std::vector<FaultInjectionMedium::Range> pending_;  // guarded by medium_->mu_
};

std::shared_ptr<FaultInjectionMedium> FaultInjectionMedium::Create(size_t size) {
  return FromImage(std::vector<std::byte>(size));
}

std::shared_ptr<FaultInjectionMedium> FaultInjectionMedium::FromImage(
    std::vector<std::byte> image) {
  return std::shared_ptr<FaultInjectionMedium>(new FaultInjectionMedium(std::move(image)));
}

FaultInjectionMedium::FaultInjectionMedium(std::vector<std::byte> image)
    : size_(image.size()), durable_(std::move(image)) {}

void FaultInjectionMedium::CrashAtPersistPoint(uint64_t n, CrashMode mode, uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  crash_at_ = n == 0 ? 0 : points_ + n;
  mode_ = mode;
  seed_ = seed;
}

void FaultInjectionMedium::FailSyncAt(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_at_ = n == 0 ? 0 : points_ + n;
}

bool FaultInjectionMedium::crashed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return crashed_;
}

uint64_t FaultInjectionMedium::persist_points() const {
  std::lock_guard<std::mutex> lock(mu_);
  return points_;
}

std::vector<std::byte> FaultInjectionMedium::DurableImage() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_;
}

Result<std::unique_ptr<Mapping>> FaultInjectionMedium::Map() {
  if (size_ == 0) return Status::InvalidArgument("fault injection: empty medium");
  void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::ResourceExhausted("fault injection: mmap failed");
  std::lock_guard<std::mutex> lock(mu_);
  std::memcpy(p, durable_.data(), size_);
  crashed_ = false;
  ++epoch_;
  return std::unique_ptr<Mapping>(
      new FaultInjectionMapping(shared_from_this(), static_cast<std::byte*>(p), size_, epoch_));
}

Status FaultInjectionMedium::PersistPoint(const std::byte* view, std::vector<Range>* pending) {
  ++points_;
  if (crash_at_ != 0 && points_ == crash_at_) {
    crashed_ = true;
    crash_at_ = 0;
    if (mode_ == CrashMode::kTearUnpersisted) TearInto(view);
    pending->clear();
    return Status::IoError("fault injection: simulated crash at persist point " +
                           std::to_string(points_));
  }
  if (fail_at_ != 0 && points_ == fail_at_) {
    fail_at_ = 0;
    return Status::IoError("fault injection: injected sync failure at persist point " +
                           std::to_string(points_));
  }
  // Bytes are taken from the view at drain time: what the cache holds when
  // the write-back completes.
  for (const Range& r : *pending) std::memcpy(durable_.data() + r.offset, view + r.offset, r.len);
  pending->clear();
  return Status::Ok();
}

void FaultInjectionMedium::TearInto(const std::byte* view) {
  std::mt19937_64 rng(seed_ ^ (points_ * 0x9e3779b97f4a7c15ull));
  for (size_t off = 0; off + 8 <= size_; off += 8) {
    if (std::memcmp(durable_.data() + off, view + off, 8) == 0) continue;
    if (rng() & 1) std::memcpy(durable_.data() + off, view + off, 8);
  }
}

}  // namespace cosmos::pmem
