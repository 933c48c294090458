// Fuzz target: treats the input as a pool image on the in-memory medium and
// opens, checks, lists and modifies it. Any input must yield a Status, never
// a crash, hang, leak or sanitizer report.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/checksum.h"
#include "common/log.h"
#include "pmem/fault_injection.h"
#include "pmem/layout.h"
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

// Recomputes every checksum the image claims to have, so mutations get past
// the checksum checks and reach the structural validation and recovery.
void FixChecksums(std::vector<std::byte>& image) {
  namespace layout = cosmos::pmem::layout;
  if (image.size() < layout::kBlockSize) return;
  layout::PoolHeader h;
  std::memcpy(&h, image.data(), sizeof(h));
  h.checksum = layout::HeaderChecksum(h);
  std::memcpy(image.data(), &h, sizeof(h));
  layout::PoolState st;
  std::memcpy(&st, image.data() + layout::kStateOffset, sizeof(st));
  st.checksum = layout::StateChecksum(st);
  std::memcpy(image.data() + layout::kStateOffset, &st, sizeof(st));
  const uint64_t capacity = std::min<uint64_t>(h.region_table_capacity, layout::kMaxRegionsLimit);
  for (uint64_t i = 0; i < capacity; ++i) {
    const uint64_t at = layout::kRegionTableOffset + i * sizeof(layout::RegionEntry);
    if (at + sizeof(layout::RegionEntry) > image.size()) break;
    layout::RegionEntry e;
    std::memcpy(&e, image.data() + at, sizeof(e));
    e.checksum = layout::EntryChecksum(e);
    std::memcpy(image.data() + at, &e, sizeof(e));
  }
  const uint64_t log = h.redo_log_offset;
  if (log < image.size() && image.size() - log >= sizeof(layout::RedoRecordHeader)) {
    layout::RedoRecordHeader r;
    std::memcpy(&r, image.data() + log, sizeof(r));
    if (r.payload_size <= image.size() - log - sizeof(r)) {
      r.payload_checksum = cosmos::Checksum64(image.data() + log + sizeof(r), r.payload_size,
                                              layout::kRedoPayloadSeed);
    }
    r.header_checksum = layout::RedoHeaderChecksum(r);
    std::memcpy(image.data() + log, &r, sizeof(r));
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
  // Odd-sized inputs get valid checksums (pool images are 4 KiB multiples,
  // so both halves of the input space stay reachable).
  if (size % 2 == 1) FixChecksums(image);
  auto medium = cosmos::pmem::FaultInjectionMedium::FromImage(std::move(image));
  for (bool read_only : {true, false}) {
    auto mapping = medium->Map();
    if (!mapping.ok()) return 0;
    auto pool = cosmos::pmem::Pool::OpenOnMapping(std::move(*mapping), "fuzz", read_only);
    if (pool.ok()) Exercise(**pool);
  }
  return 0;
}
