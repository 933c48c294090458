// Test helper: a SecureRegionEngine that forwards every call to another one.
// A test derives from it to play a hostile host (the host owns everything
// outside the enclave, this code included) and overrides only the calls it
// tampers with.
#pragma once

#include <span>
#include <vector>

#include "server/region_table.h"

namespace cosmos::server {

class ForwardingSecureEngine : public SecureRegionEngine {
 public:
  explicit ForwardingSecureEngine(SecureRegionEngine* real) : real_(real) {}
  rpc::ConnectDecision AcceptConnect(SessionKey s, std::span<const std::byte> hello) override {
    return real_->AcceptConnect(s, hello);
  }
  uint64_t SecureSessionOf(SessionKey s) override { return real_->SecureSessionOf(s); }
  Result<uint64_t> StoreSize(uint64_t size) const override { return real_->StoreSize(size); }
  uint32_t RegionFlags() const override { return real_->RegionFlags(); }
  uint32_t block_size() const override { return real_->block_size(); }
  uint64_t LogicalSize(const RegionEntry& e) const override { return real_->LogicalSize(e); }
  Status Format(Requester r, RegionEntry& e, UserKeyTransfer* user_key) override {
    return real_->Format(r, e, user_key);
  }
  void Forget(const RegionEntry& e) override { real_->Forget(e); }
  bool IsSecureSession(const Requester& r) override { return real_->IsSecureSession(r); }
  Status Authorize(Requester r, RegionEntry& e, uint8_t rights) override {
    return real_->Authorize(r, e, rights);
  }
  Result<uint64_t> AuthenticatedSize(RegionEntry& e) override {
    return real_->AuthenticatedSize(e);
  }
  Status Write(Requester r, RegionEntry& e, uint64_t off, std::span<const std::byte> d,
               WaitMode w) override {
    return real_->Write(r, e, off, d, w);
  }
  Status Read(Requester r, RegionEntry& e, uint64_t off, std::span<std::byte> out) override {
    return real_->Read(r, e, off, out);
  }
  Status Flush(Requester r, RegionEntry& e, WaitMode w) override { return real_->Flush(r, e, w); }
  Result<uint64_t> Digest(Requester r, RegionEntry& e,
                          std::span<const protocol::Range> ranges) override {
    return real_->Digest(r, e, ranges);
  }
  Result<uint64_t> CompareAndSwap(Requester r, RegionEntry& e, uint64_t off, uint64_t expected,
                                  uint64_t desired, uint64_t attempt, WaitMode w) override {
    return real_->CompareAndSwap(r, e, off, expected, desired, attempt, w);
  }
  Result<uint64_t> FetchAdd(Requester r, RegionEntry& e, uint64_t off, uint64_t delta,
                            uint64_t attempt, WaitMode w) override {
    return real_->FetchAdd(r, e, off, delta, attempt, w);
  }
  Status Grant(Requester r, RegionEntry& e, std::span<const std::byte> id,
               uint8_t rights) override {
    return real_->Grant(r, e, id, rights);
  }
  Result<protocol::AccessInfo> ListAccess(Requester r, RegionEntry& e) override {
    return real_->ListAccess(r, e);
  }
  Result<uint32_t> RotateKey(Requester r, RegionEntry& e, UserKeyTransfer* user_key) override {
    return real_->RotateKey(r, e, user_key);
  }
  Result<std::vector<std::byte>> ExecuteSealedBatch(Requester r, RegionEntry& e,
                                                    std::span<const std::byte> message) override {
    return real_->ExecuteSealedBatch(r, e, message);
  }

 protected:
  SecureRegionEngine* real_;
};

}  // namespace cosmos::server
