// Fuzz target: treats the input as a pool image on the in-memory medium and
// opens, checks, lists and modifies it. Any input must yield a Status, never
// a crash, hang, leak or sanitizer report.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "pmem/fault_injection.h"
#include "pmem/pool.h"

namespace {

void Exercise(cosmos::pmem::Pool& pool) {
  pool.Check().IgnoreError();  // fuzzing: any outcome is fine, crashes are not
  const auto info = pool.Info();
  (void)info;
  for (const auto& r : pool.ListRegions()) {
    auto region = pool.OpenRegion(r.name);
    if (!region.ok()) continue;
    auto meta = region->ReadMetadata();
    (void)meta;
    if (region->size() >= 8) {
      uint64_t first;
      std::memcpy(&first, region->data(), sizeof(first));
      region->AtomicStore64(0, first).IgnoreError();
    }
  }
  auto created = pool.CreateRegion("fuzz", 4096);
  if (created.ok()) {
    created = cosmos::Status::Cancelled("release the handle");
    pool.DeleteRegion("fuzz").IgnoreError();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    cosmos::log::Init("off");
    return true;
  }();
  (void)quiet;
  if (size == 0 || size > (1u << 22)) return 0;
  std::vector<std::byte> image(size);
  std::memcpy(image.data(), data, size);
  auto medium = cosmos::pmem::FaultInjectionMedium::FromImage(std::move(image));
  for (bool read_only : {true, false}) {
    auto mapping = medium->Map();
    if (!mapping.ok()) return 0;
    auto pool = cosmos::pmem::Pool::OpenOnMapping(std::move(*mapping), "fuzz", read_only);
    if (pool.ok()) Exercise(**pool);
  }
  return 0;
}
