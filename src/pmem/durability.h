// DurabilityLevel: what a pool backend can honestly promise about persisted
// bytes, from nothing (DRAM, tmpfs) to every store (eADR persistent memory).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace cosmos::pmem {

// Ordered from weakest to strongest. Values are stored in the pool header
// (docs/pool_layout.md), so never renumber.
enum class DurabilityLevel : uint32_t {
  kNone = 0,       // nothing survives a power failure (DRAM, tmpfs, emulation)
  kPage = 1,       // survives after msync/fdatasync of the containing pages
  kCacheline = 2,  // survives after cache-line flush + fence (ADR PMEM, DAX)
  kByte = 3,       // every store reaching the CPU cache survives (eADR)
};

// "none", "page", "cacheline" or "byte".
std::string_view DurabilityName(DurabilityLevel level);

// Inverse of DurabilityName; nullopt for an unknown name or value.
std::optional<DurabilityLevel> DurabilityFromName(std::string_view name);
std::optional<DurabilityLevel> DurabilityFromValue(uint32_t value);

}  // namespace cosmos::pmem
