// Offline edits of a pool file's region table as a root user on a memory
// node could make them (test and demo tooling, never linked into COSMOS):
// entry checksums are recomputed, so pmem accepts the table and only the
// enclave can notice. Used by tests/integration/sec_tamper_test.cc and
// tests/tools/pool_table_tamper.cc (scripts/demo.sh).
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "pmem/layout.h"

namespace cosmos::testing {

namespace layout = cosmos::pmem::layout;

// Not thread-safe; the pool must not be open in any process.
class PoolTableEditor {
 public:
  // Reads the whole pool file at `path` (loaded() says whether it worked).
  explicit PoolTableEditor(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(in), {});
    if (bytes_.size() >= sizeof(header_)) std::memcpy(&header_, bytes_.data(), sizeof(header_));
  }
  bool loaded() const {
    return bytes_.size() >= sizeof(header_) && header_.region_table_offset > 0;
  }
  // Index of the in-use entry named `name`, or -1.
  int Find(const std::string& name) const {
    for (uint32_t i = 0; i < header_.region_table_capacity; ++i) {
      layout::RegionEntry e = Entry(i);
      if (e.state == layout::kEntryInUse && std::string(e.name, e.name_length) == name) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }
  layout::RegionEntry Entry(uint32_t i) const {
    layout::RegionEntry e;
    std::memcpy(&e, bytes_.data() + Offset(i), sizeof(e));
    return e;
  }
  void Put(uint32_t i, layout::RegionEntry e) {
    e.checksum = layout::EntryChecksum(e);
    std::memcpy(bytes_.data() + Offset(i), &e, sizeof(e));
  }
  // False if either name is absent.
  bool SwapNames(const std::string& a, const std::string& b) {
    const int ia = Find(a), ib = Find(b);
    if (ia < 0 || ib < 0) return false;
    layout::RegionEntry ea = Entry(ia), eb = Entry(ib);
    std::swap(ea.name, eb.name);
    std::swap(ea.name_length, eb.name_length);
    Put(ia, ea);
    Put(ib, eb);
    return true;
  }
  // False if the name is absent.
  bool SetFlags(const std::string& name, uint32_t flags) {
    const int i = Find(name);
    if (i < 0) return false;
    layout::RegionEntry e = Entry(i);
    e.flags = flags;
    Put(i, e);
    return true;
  }
  // False if the name is absent.
  bool SetSize(const std::string& name, uint64_t size) {
    const int i = Find(name);
    if (i < 0) return false;
    layout::RegionEntry e = Entry(i);
    e.size = size;
    Put(i, e);
    return true;
  }
  // False if the file cannot be written.
  bool Save() const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes_.data()),
              static_cast<std::streamsize>(bytes_.size()));
    return static_cast<bool>(out);
  }

 private:
  uint64_t Offset(uint32_t i) const {
    return header_.region_table_offset + uint64_t{i} * header_.region_entry_size;
  }
  std::string path_;
  std::vector<uint8_t> bytes_;
  layout::PoolHeader header_{};
};

}  // namespace cosmos::testing
