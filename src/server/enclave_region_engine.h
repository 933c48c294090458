// EnclaveRegionEngine: the server's SecureRegionEngine backed by a sec::Enclave.
// Secure connects run the handshake in the enclave and install its packet
// protector; secure regions are ProtectedRegions (inside the enclave) over
// their pmem region (PmemUntrustedStore), opened lazily on first use after a
// restart so recovery and freshness checks run then.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "sec/enclave.h"
#include "server/pmem_untrusted_store.h"
#include "server/region_table.h"

namespace cosmos::server {

class EnclaveRegionEngine final : public SecureRegionEngine {
 public:
  // `enclave` must outlive the engine. `block_size`: protected-region block
  // size for new regions (power of two in [512, 65536]; stored in the
  // region's flags so existing regions keep theirs).
  EnclaveRegionEngine(sec::Enclave* enclave, uint32_t block_size);
  ~EnclaveRegionEngine() override;

  rpc::ConnectDecision AcceptConnect(SessionKey session,
                                     std::span<const std::byte> client_hello) override;
  uint64_t SecureSessionOf(SessionKey session) override;
  Result<uint64_t> StoreSize(uint64_t size) const override;
  uint32_t RegionFlags() const override;
  uint32_t block_size() const override { return block_size_; }
  uint64_t LogicalSize(const RegionEntry& e) const override;
  Status Format(Requester requester, RegionEntry& e, UserKeyTransfer* user_key) override;
  void Forget(const RegionEntry& e) override;
  bool IsSecureSession(const Requester& requester) override;
  Status Authorize(Requester requester, RegionEntry& e, uint8_t rights) override;
  Result<uint64_t> AuthenticatedSize(RegionEntry& e) override;
  Status Write(Requester requester, RegionEntry& e, uint64_t offset,
               std::span<const std::byte> data, WaitMode wait) override;
  Status Read(Requester requester, RegionEntry& e, uint64_t offset,
              std::span<std::byte> out) override;
  Status Flush(Requester requester, RegionEntry& e, WaitMode wait) override;
  Result<uint64_t> Digest(Requester requester, RegionEntry& e,
                          std::span<const protocol::Range> ranges) override;
  Result<uint64_t> CompareAndSwap(Requester requester, RegionEntry& e, uint64_t offset,
                                  uint64_t expected, uint64_t desired, uint64_t attempt,
                                  WaitMode wait) override;
  Result<uint64_t> FetchAdd(Requester requester, RegionEntry& e, uint64_t offset, uint64_t delta,
                            uint64_t attempt, WaitMode wait) override;
  Status Grant(Requester requester, RegionEntry& e, std::span<const std::byte> identity,
               uint8_t rights) override;
  Result<protocol::AccessInfo> ListAccess(Requester requester, RegionEntry& e) override;
  Result<std::vector<std::byte>> ExecuteSealedBatch(Requester requester, RegionEntry& e,
                                                    std::span<const std::byte> message) override;
  Result<sec::ReplicatedSealedBatch> ExecuteReplicatedSealedBatch(
      Requester requester, RegionEntry& e, std::span<const std::byte> message, uint64_t epoch,
      std::span<const sec::PeerChannelId> backups) override;
  Status ApplyReplicaBatch(RegionEntry& e, std::span<const std::byte> message) override;
  Result<std::vector<std::byte>> AcceptPeer(std::span<const std::byte> hello) override;
  Result<uint32_t> RotateKey(Requester requester, RegionEntry& e,
                             UserKeyTransfer* user_key) override;

 private:
  // One region's enclave state; `mu` serialises its opening.
  struct Open {
    std::mutex mu;
    std::unique_ptr<PmemUntrustedStore> store;
    sec::RegionHandle handle = 0;  // 0 until opened
  };
  // The enclave session `requester` was admitted under; PermissionDenied if
  // none (the enclave refuses a handle whose session has ended since).
  static Result<sec::SessionHandle> SessionOf(const Requester& requester);
  // The enclave handle of `e`, opening (recovering) it on first use.
  // `wait` applies to opening it (recovery may wait for the counter).
  Result<sec::RegionHandle> RegionOf(RegionEntry& e, WaitMode wait = WaitMode::kMayWait);

  sec::Enclave* enclave_;
  uint32_t block_size_;
  std::mutex mu_;
  std::map<SessionKey, sec::SessionHandle> sessions_;
  std::map<const RegionEntry*, std::shared_ptr<Open>> regions_;  // entries outlive the engine's use
};

}  // namespace cosmos::server
