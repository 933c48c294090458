// DRAM backend: anonymous memory for tests and benchmarks. Nothing it holds
// survives the process, so it reports durability `none` and its persistence
// calls only order stores against each other (a fence).
#include <sys/mman.h>

#include <atomic>
#include <string>

#include "pmem/mapping.h"

namespace cosmos::pmem {
namespace {

class DramMapping final : public Mapping {
 public:
  DramMapping(std::byte* base, size_t size) : Mapping(base, size, true) {}
  ~DramMapping() override { munmap(base(), size()); }

  DurabilityLevel durability() const override { return DurabilityLevel::kNone; }
  std::string_view backend_name() const override { return "dram"; }
  Status Flush(size_t offset, size_t len) override {
    CheckRange(offset, len);
    return Status::Ok();
  }
  Status Drain() override {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return Status::Ok();
  }
  Status Persist(size_t offset, size_t len) override {
    CheckRange(offset, len);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return Status::Ok();
  }
};

}  // namespace

Result<std::unique_ptr<Mapping>> MapDram(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return Status::ResourceExhausted("cannot map " + std::to_string(size) +
                                     " bytes of anonymous memory");
  }
  return std::unique_ptr<Mapping>(new DramMapping(static_cast<std::byte*>(p), size));
}

}  // namespace cosmos::pmem
