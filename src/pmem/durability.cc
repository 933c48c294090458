// Names of durability levels.
#include "pmem/durability.h"

namespace cosmos::pmem {

std::string_view DurabilityName(DurabilityLevel level) {
  switch (level) {
    case DurabilityLevel::kNone:
      return "none";
    case DurabilityLevel::kPage:
      return "page";
    case DurabilityLevel::kCacheline:
      return "cacheline";
    case DurabilityLevel::kByte:
      return "byte";
  }
  return "unknown";
}

std::optional<DurabilityLevel> DurabilityFromName(std::string_view name) {
  for (uint32_t v = 0; v <= 3; ++v) {
    auto level = static_cast<DurabilityLevel>(v);
    if (DurabilityName(level) == name) return level;
  }
  return std::nullopt;
}

std::optional<DurabilityLevel> DurabilityFromValue(uint32_t value) {
  if (value > 3) return std::nullopt;
  return static_cast<DurabilityLevel>(value);
}

}  // namespace cosmos::pmem
