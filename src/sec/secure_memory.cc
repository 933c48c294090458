// LockedBuffer: mmap + mlock + MADV_DONTDUMP secret storage.
#include "sec/secure_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include "common/check.h"

namespace cosmos::sec {

Result<std::unique_ptr<LockedBuffer>> LockedBuffer::Create(size_t size) {
  COSMOS_CHECK(size > 0);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t mapped = (size + page - 1) / page * page;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::ResourceExhausted("mmap of locked secret buffer failed");
  std::unique_ptr<LockedBuffer> b(new LockedBuffer());
  b->data_ = static_cast<uint8_t*>(p);
  b->size_ = size;
  b->mapped_ = mapped;
  b->locked_ = mlock(p, mapped) == 0;
  b->dont_dump_ = madvise(p, mapped, MADV_DONTDUMP) == 0;
  return b;
}

LockedBuffer::~LockedBuffer() {
  if (data_ == nullptr) return;
  SecureWipe({data_, mapped_});
  if (locked_) munlock(data_, mapped_);
  munmap(data_, mapped_);
}

}  // namespace cosmos::sec
