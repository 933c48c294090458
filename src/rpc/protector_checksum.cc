// Keyed-checksum test protector (not cryptographic; see header).
#include "rpc/protector_checksum.h"

#include "common/check.h"
#include "common/checksum.h"
#include "common/endian.h"

namespace cosmos::rpc {

uint64_t ChecksumProtector::Compute(std::span<const std::byte> header,
                                    std::span<const std::byte> payload) const {
  // Chained so no hashing state is allocated per packet.
  return Checksum64(payload.data(), payload.size(), Checksum64(header.data(), header.size(), key_));
}

void ChecksumProtector::Seal(std::span<const std::byte> header, std::span<std::byte> payload,
                             std::span<std::byte> tag) {
  COSMOS_CHECK(tag.size() == 8);
  StoreLE<uint64_t>(tag.data(), Compute(header, payload));
}

Status ChecksumProtector::Open(std::span<const std::byte> header, std::span<std::byte> payload,
                               std::span<const std::byte> tag) {
  if (tag.size() != 8 || LoadLE<uint64_t>(tag.data()) != Compute(header, payload)) {
    return Status::IntegrityViolation("rpc packet tag mismatch");
  }
  return Status::Ok();
}

}  // namespace cosmos::rpc
