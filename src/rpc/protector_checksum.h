// ChecksumProtector: a TEST-ONLY PacketProtector that appends a keyed XXH3
// checksum over header and payload. It detects accidental and naive
// modification but is NOT cryptographic (no confidentiality, forgeable by
// anyone who knows XXH3); real protection is the security layer's AES-GCM.
#pragma once

#include <cstdint>

#include "rpc/protector.h"

namespace cosmos::rpc {

class ChecksumProtector final : public PacketProtector {
 public:
  // Both sides of a session must use the same key.
  explicit ChecksumProtector(uint64_t key) : key_(key) {}

  size_t tag_size() const override { return 8; }
  void Seal(std::span<const std::byte> header, std::span<std::byte> payload,
            std::span<std::byte> tag) override;
  [[nodiscard]] Status Open(std::span<const std::byte> header, std::span<std::byte> payload,
                            std::span<const std::byte> tag) override;

 private:
  uint64_t Compute(std::span<const std::byte> header, std::span<const std::byte> payload) const;
  uint64_t key_;
};

}  // namespace cosmos::rpc
