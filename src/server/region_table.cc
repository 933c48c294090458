// RegionTable: admin path under a reader-writer lock, lock-free handle lookup.
#include "server/region_table.h"

#include <mutex>
#include <random>
#include <thread>

#include "common/check.h"

namespace cosmos::server {
namespace {
uint32_t RandomEpoch() {
  std::random_device rd;
  uint32_t e = 0;
  while (e == 0) e = rd();
  return e;
}
}  // namespace

RegionTable::RegionTable(std::vector<ServedPool> pools)
    : pools_(std::move(pools)), slots_(new std::atomic<RegionEntry*>[kMaxHandles]) {
  COSMOS_CHECK(!pools_.empty());
  epoch_ = RandomEpoch();
  for (size_t i = 0; i < kMaxHandles; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
  std::unique_lock lock(mu_);
  for (auto& p : pools_) {
    for (const auto& info : p.pool->ListRegions()) {
      auto r = p.pool->OpenRegion(info.name);
      if (r.ok()) {
        auto e = Publish(std::move(*r), p.name, p.pool->Info().uuid);
        COSMOS_CHECK(e.ok());
      }
    }
  }
}

RegionTable::~RegionTable() {
  // The secure engine may outlive the table and keeps enclave-side state
  // (and a background key-rotation thread) that reads each region's store:
  // it must let go of a region before the store is freed. Region handles
  // must be released before their pools close.
  if (secure_engine_ != nullptr) {
    for (const auto& e : entries_) {
      if (e && !e->deleted.load(std::memory_order_acquire) && e->secure()) {
        secure_engine_->Forget(*e);
      }
    }
  }
  entries_.clear();
  pools_.clear();
}

protocol::RegionDesc RegionTable::Describe(const RegionEntry& e) const {
  protocol::RegionDesc d;
  d.handle = e.handle;
  d.size =
      e.secure() && secure_engine_ != nullptr ? secure_engine_->LogicalSize(e) : e.region.size();
  d.durability = static_cast<uint8_t>(e.durability());
  d.secure = e.secure();
  d.name = e.region.name();
  return d;
}

std::string RegionTable::NotFoundMessage(std::string_view name) {
  return "no region named '" + std::string(name) + "'";
}

Result<RegionEntry*> RegionTable::Publish(pmem::Region region, const std::string& pool_name,
                                          const std::string& pool_uuid) {
  if (next_slot_ >= kMaxHandles) {
    return Status::ResourceExhausted(
        "region handle space of this node run exhausted; restart cosmosd");
  }
  size_t slot = next_slot_++;
  uint64_t handle = (static_cast<uint64_t>(epoch_) << 32) | (slot + 1);
  auto entry = std::make_unique<RegionEntry>(std::move(region), pool_name, pool_uuid, handle);
  RegionEntry* raw = entry.get();
  entries_.push_back(std::move(entry));
  slots_[slot].store(raw, std::memory_order_release);
  return raw;
}

RegionEntry* RegionTable::FindByNameLocked(std::string_view name) {
  for (auto& e : entries_) {
    if (!e->deleted.load(std::memory_order_relaxed) && e->region.name() == name) return e.get();
  }
  return nullptr;
}

Result<protocol::RegionDesc> RegionTable::Create(std::string_view name, uint64_t size, bool secure,
                                                 std::string_view pool) {
  std::unique_lock lock(mu_);
  if (secure && secure_engine_ == nullptr) {
    return Status::FailedPrecondition(
        "secure regions need the security layer, which this node does not run");
  }
  if (FindByNameLocked(name) != nullptr) {
    return Status::AlreadyExists("region '" + std::string(name) + "' exists");
  }
  ServedPool* target = &pools_.front();
  if (!pool.empty()) {
    target = nullptr;
    for (auto& p : pools_) {
      if (p.name == pool) target = &p;
    }
    if (target == nullptr) return Status::NotFound("no pool named '" + std::string(pool) + "'");
  }
  uint64_t pool_bytes = size;
  uint32_t flags = 0;
  if (secure) {
    COSMOS_ASSIGN_OR_RETURN(pool_bytes, secure_engine_->StoreSize(size));
    flags = secure_engine_->RegionFlags();
  }
  COSMOS_ASSIGN_OR_RETURN(pmem::Region r, target->pool->CreateRegion(name, pool_bytes, flags));
  COSMOS_ASSIGN_OR_RETURN(RegionEntry * e,
                          Publish(std::move(r), target->name, target->pool->Info().uuid));
  return Describe(*e);
}

Result<protocol::RegionDesc> RegionTable::Open(std::string_view name) {
  std::shared_lock lock(mu_);
  for (auto& e : entries_) {
    if (!e->deleted.load(std::memory_order_relaxed) && e->region.name() == name) {
      return Describe(*e);
    }
  }
  return Status::NotFound(NotFoundMessage(name));
}

std::vector<protocol::RegionDesc> RegionTable::List() {
  std::shared_lock lock(mu_);
  std::vector<protocol::RegionDesc> out;
  for (auto& e : entries_) {
    if (!e->deleted.load(std::memory_order_relaxed)) out.push_back(Describe(*e));
  }
  return out;
}

Status RegionTable::Delete(std::string_view name) {
  std::unique_lock lock(mu_);
  RegionEntry* e = FindByNameLocked(name);
  if (e == nullptr) return Status::NotFound(NotFoundMessage(name));
  e->deleted.store(true, std::memory_order_seq_cst);
  // Ops that pinned the entry before it was retired finish first; new
  // lookups see `deleted` and fail.
  while (e->users.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  // A secure region closes in the enclave first: that waits for a background
  // key-rotation step still re-encrypting it, which uses e->region.
  if (e->secure() && secure_engine_ != nullptr) secure_engine_->Forget(*e);
  std::string pool_name = e->pool_name;
  std::string region_name = e->region.name();
  // Drop our handle so the pool lets the region go; the entry object stays
  // allocated (a racing lookup may still read it) with a moved-from handle.
  { pmem::Region drop = std::move(e->region); }
  for (auto& p : pools_) {
    if (p.name == pool_name) return p.pool->DeleteRegion(region_name);
  }
  return Status::Internal("pool of region vanished");
}

Result<RegionRef> RegionTable::Lookup(uint64_t handle) {
  uint64_t slot = (handle & 0xffffffffu);
  if ((handle >> 32) != epoch_ || slot == 0 || slot > kMaxHandles) {
    return Status::NotFound("unknown region handle (region deleted or node restarted)");
  }
  RegionEntry* e = slots_[slot - 1].load(std::memory_order_acquire);
  if (e == nullptr) return Status::NotFound("unknown region handle");
  e->users.fetch_add(1, std::memory_order_seq_cst);
  if (e->deleted.load(std::memory_order_seq_cst)) {
    e->users.fetch_sub(1, std::memory_order_release);
    return Status::NotFound("region was deleted");
  }
  return RegionRef(e);
}

uint64_t RegionTable::region_count() {
  std::shared_lock lock(mu_);
  uint64_t n = 0;
  for (auto& e : entries_) n += e->deleted.load(std::memory_order_relaxed) ? 0 : 1;
  return n;
}

std::vector<std::pair<std::string, pmem::PoolInfo>> RegionTable::PoolInfos() const {
  std::vector<std::pair<std::string, pmem::PoolInfo>> out;
  for (const auto& p : pools_) out.emplace_back(p.name, p.pool->Info());
  return out;
}

}  // namespace cosmos::server
