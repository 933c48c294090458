// Fuzz target: recovery of a cosmos-kv log whose record area (and tail
// pointer) come from untrusted bytes. Open must succeed or return an error
// (Corruption), never crash or read out of bounds.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/endian.h"
#include "kv/log_device_memory.h"
#include "kv/log_format.h"
#include "kv/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spdlog::set_level(spdlog::level::off);
  constexpr uint64_t kDevice = 64 * 1024;
  cosmos::kv::MemoryLogDevice dev(kDevice);
  {
    cosmos::kv::StoreOptions o;
    o.background_compaction = false;
    auto s = cosmos::kv::Store::Open(&dev, o);
    if (!s.ok()) __builtin_trap();
  }
  // First 8 input bytes choose the tail word; the rest become records.
  uint64_t tail = 0;
  if (size >= 8) {
    std::memcpy(&tail, data, 8);
    data += 8;
    size -= 8;
  }
  const uint64_t base = cosmos::kv::kHeaderAreaSize + cosmos::kv::kSegmentHeaderSize;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(size, kDevice / 2 - 128));
  if (!dev.Write(base, data, n).ok()) __builtin_trap();
  if (!dev.Flush(base, n).ok()) __builtin_trap();
  if (!dev.WriteAfterFlush(cosmos::kv::kTailOffset0, tail % (n + 64)).ok()) __builtin_trap();
  cosmos::kv::StoreOptions o;
  o.background_compaction = false;
  auto s = cosmos::kv::Store::Open(&dev, o);
  if (s.ok()) {
    auto keys = (*s)->Keys("*");
    if (keys.ok()) {
      std::string v;
      for (const auto& k : *keys) (void)(*s)->Get(k, &v);
    }
  }
  return 0;
}
