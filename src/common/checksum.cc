// XXH3 wrappers.
#include "common/checksum.h"

#include <xxhash.h>

#include "common/check.h"

namespace cosmos {

uint64_t Checksum64(const void* data, size_t size, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size, seed);
}

Checksum64Builder::Checksum64Builder(uint64_t seed) : state_(XXH3_createState()) {
  COSMOS_CHECK(state_ != nullptr);
  COSMOS_CHECK(XXH3_64bits_reset_withSeed(static_cast<XXH3_state_t*>(state_), seed) == XXH_OK);
}

Checksum64Builder::~Checksum64Builder() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Checksum64Builder::Update(const void* data, size_t size) {
  COSMOS_CHECK(XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, size) == XXH_OK);
}

uint64_t Checksum64Builder::Finish() const {
  return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_));
}

}  // namespace cosmos
