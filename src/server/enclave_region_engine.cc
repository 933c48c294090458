// EnclaveRegionEngine: secure sessions and protected regions through the enclave.
#include "server/enclave_region_engine.h"

#include <bit>
#include <cstring>

#include "common/check.h"
#include "common/log.h"
#include "sec/user_key.h"
#include "server/secure_channel_adapter.h"

namespace cosmos::server {
namespace {

// Region flags: bit 0 secure; bits 8..15 log2 of the block size.
constexpr uint32_t kBlockShiftBit = 8;

// The block size a region's flags state, or 0 when the (host-editable) shift
// is outside the supported [9, 16]: callers treat such a region as empty and
// its enclave state decides (the sealed geometry is authoritative).
uint32_t BlockSizeOf(uint32_t flags) {
  const uint32_t shift = (flags >> kBlockShiftBit) & 0xff;
  if (shift < 9 || shift > 16) return 0;
  return 1u << shift;
}

// The wire and the server name rights and identities as the enclave does.
static_assert(kSecureRightRead == sec::kRightRead && kSecureRightWrite == sec::kRightWrite &&
              kSecureRightAdmin == sec::kRightAdmin);
static_assert(kAccessRead == sec::kRightRead && kAccessWrite == sec::kRightWrite &&
              kAccessAdmin == sec::kRightAdmin);  // the client API's bits
static_assert(protocol::kFingerprintSize == sec::kIdentityFingerprintSize);
static_assert(protocol::kIdentityKeySize == sizeof(sec::Ed25519PublicKey));
static_assert(protocol::kWrappedUserKeySize == sec::kWrappedUserKeySize &&
              protocol::kUserKeyReceiptSize == sec::kUserKeyReceiptSize);

sec::CounterWait ToCounterWait(WaitMode wait) {
  return wait == WaitMode::kNoWait ? sec::CounterWait::kNoWait : sec::CounterWait::kMayWait;
}

sec::RegionBinding BindingOf(const RegionEntry& e) {
  return sec::RegionBinding{e.pool_uuid, e.region.id(), e.region.name()};
}

sec::RegionGeometry GeometryFor(uint64_t size, uint32_t block_size) {
  sec::RegionGeometry g;
  g.size = size;
  g.block_size = block_size;
  return g;
}

}  // namespace

EnclaveRegionEngine::EnclaveRegionEngine(sec::Enclave* enclave, uint32_t block_size)
    : enclave_(enclave), block_size_(block_size) {
  COSMOS_CHECK(std::has_single_bit(block_size) && block_size >= 512 && block_size <= 65536);
}

EnclaveRegionEngine::~EnclaveRegionEngine() {
  std::lock_guard lock(mu_);
  for (auto& [entry, open] : regions_) {
    if (open->handle != 0) (void)enclave_->CloseRegion(open->handle);
  }
}

rpc::ConnectDecision EnclaveRegionEngine::AcceptConnect(SessionKey session,
                                                        std::span<const std::byte> client_hello) {
  // When the RPC session ends its enclave session is closed and the binding
  // dropped (unless a newer connect on the same session number replaced it),
  // so a later session reusing the number never inherits it.
  SecureConnectOutcome out =
      AcceptSecureConnect(enclave_, client_hello, [this, session](sec::SessionHandle closed) {
        std::lock_guard lock(mu_);
        auto it = sessions_.find(session);
        if (it != sessions_.end() && it->second == closed) sessions_.erase(it);
      });
  if (out.decision.status.ok()) {
    std::lock_guard lock(mu_);
    sessions_[session] = out.session;  // replaces a stale binding of a reused session id
  } else {
    COSMOS_LOG_WARN("secure connect refused: {}", out.decision.status.ToString());
  }
  return std::move(out.decision);
}

Result<uint64_t> EnclaveRegionEngine::StoreSize(uint64_t size) const {
  if (size == 0 || size % block_size_ != 0) {
    return Status::InvalidArgument("secure region size must be a positive multiple of " +
                                   std::to_string(block_size_) + " bytes");
  }
  return sec::ProtectedRegion::RequiredStoreSize(GeometryFor(size, block_size_));
}

uint32_t EnclaveRegionEngine::RegionFlags() const {
  return kRegionFlagSecure |
         (static_cast<uint32_t>(std::countr_zero(block_size_)) << kBlockShiftBit);
}

uint64_t EnclaveRegionEngine::LogicalSize(const RegionEntry& e) const {
  // The largest whole number of blocks whose store fits the pool region
  // (RequiredStoreSize grows with the block count).
  const uint32_t b = BlockSizeOf(e.region.flags());
  if (b == 0) return 0;
  const uint64_t store = e.region.size();
  uint64_t lo = 0, hi = store / b;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo + 1) / 2;
    auto need = sec::ProtectedRegion::RequiredStoreSize(GeometryFor(mid * b, b));
    if (need.ok() && *need <= store) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo * b;
}

uint64_t EnclaveRegionEngine::SecureSessionOf(SessionKey session) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session);
  return it == sessions_.end() ? 0 : it->second;
}

Result<sec::SessionHandle> EnclaveRegionEngine::SessionOf(const Requester& requester) {
  // Enclave handles are never reused: a handle whose session has ended since
  // admission is refused by the enclave (PermissionDenied), never rebound.
  if (requester.secure_session == 0) {
    return Status::PermissionDenied("secure regions need a secure connection");
  }
  return requester.secure_session;
}

Result<sec::RegionHandle> EnclaveRegionEngine::RegionOf(RegionEntry& e, WaitMode wait) {
  std::shared_ptr<Open> slot;
  {
    std::lock_guard lock(mu_);
    auto [it, added] = regions_.try_emplace(&e, nullptr);
    if (added) it->second = std::make_shared<Open>();
    slot = it->second;
  }
  // Opening (recovery, freshness check, new incarnation) may wait for the
  // trusted counter: only callers of this region wait, under its own mutex.
  std::lock_guard open_lock(slot->mu);
  if (slot->handle != 0) return slot->handle;
  auto store = std::make_unique<PmemUntrustedStore>(&e.region);
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle h,
                          enclave_->OpenRegion(BindingOf(e), store.get(), ToCounterWait(wait)));
  slot->store = std::move(store);
  slot->handle = h;
  return h;
}

Status EnclaveRegionEngine::Format(Requester requester, RegionEntry& e, UserKeyTransfer* user_key) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  const uint32_t b = BlockSizeOf(e.region.flags());
  if (b == 0) return Status::Internal("new secure region has no valid block size in its flags");
  auto slot = std::make_shared<Open>();
  std::lock_guard open_lock(slot->mu);
  {
    std::lock_guard lock(mu_);
    if (!regions_.try_emplace(&e, slot).second) {
      return Status::AlreadyExists("secure region is already formatted");
    }
  }
  auto store = std::make_unique<PmemUntrustedStore>(&e.region);
  sec::UserKeyRequest request;
  if (user_key != nullptr) request.wrapped = sec::AsBytes(user_key->wrapped);
  auto h = enclave_->CreateRegion(session, BindingOf(e), GeometryFor(LogicalSize(e), b),
                                  store.get(), user_key != nullptr ? &request : nullptr);
  if (h.ok() && user_key != nullptr) {
    std::memcpy(user_key->receipt.data(), request.receipt.data(), user_key->receipt.size());
  }
  if (!h.ok()) {
    std::lock_guard lock(mu_);
    regions_.erase(&e);
    return h.status();
  }
  slot->store = std::move(store);
  slot->handle = *h;
  return Status::Ok();
}

void EnclaveRegionEngine::Forget(const RegionEntry& e) {
  std::shared_ptr<Open> slot;
  {
    std::lock_guard lock(mu_);
    auto it = regions_.find(&e);
    if (it == regions_.end()) return;
    slot = std::move(it->second);
    regions_.erase(it);
  }
  std::lock_guard open_lock(slot->mu);
  if (slot->handle != 0) (void)enclave_->CloseRegion(slot->handle);
  slot->handle = 0;
}

bool EnclaveRegionEngine::IsSecureSession(const Requester& requester) {
  return requester.secure_session != 0;
}

Result<uint64_t> EnclaveRegionEngine::AuthenticatedSize(RegionEntry& e) {
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e));
  return enclave_->RegionSize(region);
}

Status EnclaveRegionEngine::Authorize(Requester requester, RegionEntry& e, uint8_t rights) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e));
  return enclave_->RegionCheckAccess(session, region, rights);
}

Status EnclaveRegionEngine::Write(Requester requester, RegionEntry& e, uint64_t offset,
                                  std::span<const std::byte> data, WaitMode wait) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e, wait));
  return enclave_->RegionWrite(session, region, offset,
                               {reinterpret_cast<const uint8_t*>(data.data()), data.size()},
                               ToCounterWait(wait));
}

Status EnclaveRegionEngine::Read(Requester requester, RegionEntry& e, uint64_t offset,
                                 std::span<std::byte> out) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e));
  return enclave_->RegionRead(session, region, offset,
                              {reinterpret_cast<uint8_t*>(out.data()), out.size()});
}

Status EnclaveRegionEngine::Flush(Requester requester, RegionEntry& e, WaitMode wait) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e, wait));
  return enclave_->RegionFlush(session, region, ToCounterWait(wait));
}

Result<uint64_t> EnclaveRegionEngine::Digest(Requester requester, RegionEntry& e,
                                             std::span<const protocol::Range> ranges) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e));
  std::vector<sec::ByteRange> r;
  r.reserve(ranges.size());
  for (const auto& x : ranges) r.push_back({x.offset, x.length});
  COSMOS_ASSIGN_OR_RETURN(sec::Digest d, enclave_->RegionVerify(session, region, r));
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | d[static_cast<size_t>(i)];
  return v;
}

Result<uint64_t> EnclaveRegionEngine::CompareAndSwap(Requester requester, RegionEntry& e,
                                                     uint64_t offset, uint64_t expected,
                                                     uint64_t desired, uint64_t attempt,
                                                     WaitMode wait) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e, wait));
  return enclave_->RegionCompareAndSwap(session, region, offset, expected, desired, attempt,
                                        ToCounterWait(wait));
}

Result<uint64_t> EnclaveRegionEngine::FetchAdd(Requester requester, RegionEntry& e, uint64_t offset,
                                               uint64_t delta, uint64_t attempt, WaitMode wait) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e, wait));
  return enclave_->RegionFetchAdd(session, region, offset, delta, attempt, ToCounterWait(wait));
}

Status EnclaveRegionEngine::Grant(Requester requester, RegionEntry& e,
                                  std::span<const std::byte> identity, uint8_t rights) {
  sec::Ed25519PublicKey key;
  if (identity.size() != key.size()) {
    return Status::InvalidArgument("a client identity is a 32-byte Ed25519 public key");
  }
  std::memcpy(key.data(), identity.data(), key.size());
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e));
  return enclave_->RegionGrant(session, region, key, rights);
}

Result<protocol::AccessInfo> EnclaveRegionEngine::ListAccess(Requester requester, RegionEntry& e) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionAccessInfo info, enclave_->RegionListAccess(session, region));
  protocol::AccessInfo out;
  out.key_epoch = info.key_epoch;
  for (const auto& entry : info.entries) {
    protocol::AccessEntry x;
    std::memcpy(x.fingerprint.data(), entry.fingerprint.data(), x.fingerprint.size());
    x.rights = entry.rights;
    out.entries.push_back(x);
  }
  return out;
}

Result<uint32_t> EnclaveRegionEngine::RotateKey(Requester requester, RegionEntry& e,
                                                UserKeyTransfer* user_key) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e));
  if (user_key != nullptr) {
    sec::UserKeyRequest request;
    request.wrapped = sec::AsBytes(user_key->wrapped);
    COSMOS_RETURN_IF_ERROR(enclave_->RegionRotateKey(session, region, &request));
    std::memcpy(user_key->receipt.data(), request.receipt.data(), user_key->receipt.size());
    return request.key_epoch;  // the epoch the receipt names
  }
  COSMOS_RETURN_IF_ERROR(enclave_->RegionRotateKey(session, region));
  // The epoch as the rotating admin sees it right after (a concurrent
  // rotation may have moved it further: it only grows).
  COSMOS_ASSIGN_OR_RETURN(sec::RegionAccessInfo info, enclave_->RegionListAccess(session, region));
  return info.key_epoch;
}

Result<std::vector<std::byte>> EnclaveRegionEngine::ExecuteSealedBatch(
    Requester requester, RegionEntry& e, std::span<const std::byte> message) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e, WaitMode::kMayWait));
  COSMOS_ASSIGN_OR_RETURN(
      sec::Bytes sealed,
      enclave_->ExecuteSealedBatch(
          session, region, {reinterpret_cast<const uint8_t*>(message.data()), message.size()}));
  std::vector<std::byte> out(sealed.size());
  if (!sealed.empty()) std::memcpy(out.data(), sealed.data(), sealed.size());
  return out;
}

Result<sec::ReplicatedSealedBatch> EnclaveRegionEngine::ExecuteReplicatedSealedBatch(
    Requester requester, RegionEntry& e, std::span<const std::byte> message, uint64_t epoch,
    std::span<const sec::PeerChannelId> backups) {
  COSMOS_ASSIGN_OR_RETURN(sec::SessionHandle session, SessionOf(requester));
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e, WaitMode::kMayWait));
  return enclave_->ExecuteReplicatedSealedBatch(
      session, region, {reinterpret_cast<const uint8_t*>(message.data()), message.size()}, epoch,
      backups);
}

Status EnclaveRegionEngine::ApplyReplicaBatch(RegionEntry& e, std::span<const std::byte> message) {
  COSMOS_ASSIGN_OR_RETURN(sec::RegionHandle region, RegionOf(e, WaitMode::kMayWait));
  return enclave_->ApplyReplicaBatch(
      region, {reinterpret_cast<const uint8_t*>(message.data()), message.size()});
}

Result<std::vector<std::byte>> EnclaveRegionEngine::AcceptPeer(std::span<const std::byte> hello) {
  COSMOS_ASSIGN_OR_RETURN(
      sec::AcceptedPeerChannel accepted,
      enclave_->PeerAccept({reinterpret_cast<const uint8_t*>(hello.data()), hello.size()}));
  std::vector<std::byte> out(accepted.reply.size());
  std::memcpy(out.data(), accepted.reply.data(), out.size());
  return out;
}

}  // namespace cosmos::server
