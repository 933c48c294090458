// Backend-neutral parts of Mapping.
#include "pmem/mapping.h"

#include <cstring>

#include "common/check.h"

namespace cosmos::pmem {

std::string_view BackendName(BackendKind kind) {
  switch (kind) {
    case BackendKind::kAuto:
      return "auto";
    case BackendKind::kFile:
      return "file";
    case BackendKind::kPmem2Dax:
      return "pmem2";
    case BackendKind::kPmem2Emulated:
      return "pmem2-emulated";
    case BackendKind::kDram:
      return "dram";
  }
  return "unknown";
}

Result<BackendKind> BackendFromName(std::string_view name) {
  for (auto kind : {BackendKind::kAuto, BackendKind::kFile, BackendKind::kPmem2Dax,
                    BackendKind::kPmem2Emulated, BackendKind::kDram}) {
    if (BackendName(kind) == name) return kind;
  }
  return Status::InvalidArgument("unknown backend '" + std::string(name) +
                                 "' (expected auto, file, pmem2, pmem2-emulated or dram)");
}

void Mapping::CheckRange(size_t offset, size_t len) const {
  COSMOS_CHECK_MSG(offset <= size_ && len <= size_ - offset, "mapping range out of bounds");
}

Status Mapping::MemcpyPersist(size_t offset, const void* src, size_t len) {
  CheckRange(offset, len);
  if (!writable_) return Status::FailedPrecondition("mapping is read-only");
  if (len > 0) std::memcpy(base_ + offset, src, len);
  return Persist(offset, len);
}

}  // namespace cosmos::pmem
