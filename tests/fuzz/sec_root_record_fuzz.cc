// Fuzzes the parsers of region metadata read back from untrusted storage: the
// root record plaintext, the redo log image, access lists and key files; and
// opening a region over a store filled with the input.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "sec/access_list.h"
#include "sec/key_files.h"
#include "sec/protected_region.h"

using namespace cosmos::sec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan in(data, size);
  ParseRootRecordForFuzzing(in).IgnoreError();  // any outcome but a crash is fine
  ParseRedoLogForFuzzing(in).IgnoreError();     // idem
  auto acl = AccessList::Parse(in);
  if (acl.ok() && acl->Serialize() != Bytes(in.begin(), in.end())) std::abort();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto key = ParseKeyFile(text, KeyKind::kClientPublic);
  if (key.ok() && FormatKeyFile(KeyKind::kClientPublic, *key) != text) std::abort();

  // A region opened over hostile bytes must be refused, never crash.
  static Sealer* sealer = [] {
    auto k = DeriveSealingKey(Bytes(32, 2), AsBytes("fuzz"));
    return Sealer::Create(k->span())->release();
  }();
  static SimulatedCounter* counter = [] {
    SimulatedCounter::Options o;
    o.path = (std::filesystem::temp_directory_path() /
              ("cosmos_fuzz_counter_" + std::to_string(::getpid())))
                 .string();
    o.stabilisation_delay_ns = 0;
    SimulatedCounter* c = SimulatedCounter::Open(o)->release();
    // The counter never moves here (no region ever opens), so its file is
    // not needed after creation.
    std::filesystem::remove(o.path);
    return c;
  }();
  MemoryStore store(0);
  store.bytes().assign(in.begin(), in.end());
  if (store.bytes().size() < 8192) store.bytes().resize(8192);
  auto region =
      ProtectedRegion::Open(RegionBinding{"fuzz-pool", 1, "fuzz"}, &store, counter, sealer);
  if (region.ok()) std::abort();
  return 0;
}
