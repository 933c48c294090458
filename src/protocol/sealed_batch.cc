// Framing of sealed RPM batches (sealed_batch.h): strict, bounds-checked.
#include "protocol/sealed_batch.h"

#include <cstring>
#include <string>

#include "common/check.h"
#include "common/endian.h"
#include "protocol/rpm_protocol.h"

namespace cosmos::protocol {

std::vector<std::byte> EncodeSealedRequestHeader(const SealedRequestHeader& h) {
  COSMOS_CHECK(h.name.size() <= kMaxNameLength);
  const bool with_epoch = (h.flags & kSealedFlagEpoch) != 0;
  std::vector<std::byte> out(kSealedRequestFixedSize + h.name.size() + (with_epoch ? 8 : 0));
  StoreLE<uint32_t>(out.data(), kSealedRequestMagic);
  StoreLE<uint16_t>(out.data() + 4, kSealedVersion);
  StoreLE<uint16_t>(out.data() + 6, h.flags);
  StoreLE<uint64_t>(out.data() + 8, h.handle);
  StoreLE<uint64_t>(out.data() + 16, h.seq);
  out[24] = static_cast<std::byte>(h.name.size());
  if (!h.name.empty())
    std::memcpy(out.data() + kSealedRequestFixedSize, h.name.data(), h.name.size());
  if (with_epoch) StoreLE<uint64_t>(out.data() + kSealedRequestFixedSize + h.name.size(), h.epoch);
  return out;
}

Result<SealedRequestView> ParseSealedRequest(std::span<const std::byte> bytes) {
  if (bytes.size() < kSealedRequestFixedSize) {
    return Status::Corruption("sealed batch: truncated header");
  }
  if (LoadLE<uint32_t>(bytes.data()) != kSealedRequestMagic) {
    return Status::Corruption("sealed batch: bad magic");
  }
  const uint16_t version = LoadLE<uint16_t>(bytes.data() + 4);
  if (version != kSealedVersion) {
    return Status::FailedPrecondition("sealed batch: unsupported version " +
                                      std::to_string(version));
  }
  SealedRequestView v;
  v.header.flags = LoadLE<uint16_t>(bytes.data() + 6);
  if ((v.header.flags & ~(kSealedFlagReadOnly | kSealedFlagEpoch)) != 0) {
    return Status::Corruption("sealed batch: unknown flags");
  }
  v.header.handle = LoadLE<uint64_t>(bytes.data() + 8);
  v.header.seq = LoadLE<uint64_t>(bytes.data() + 16);
  const size_t name_len = static_cast<uint8_t>(bytes[24]);
  if (bytes[25] != std::byte{0} || bytes[26] != std::byte{0} || bytes[27] != std::byte{0}) {
    return Status::Corruption("sealed batch: nonzero reserved bytes");
  }
  if (name_len == 0 || name_len > kMaxNameLength) {
    return Status::Corruption("sealed batch: bad region name length");
  }
  const bool with_epoch = (v.header.flags & kSealedFlagEpoch) != 0;
  const size_t header_size = kSealedRequestFixedSize + name_len + (with_epoch ? 8 : 0);
  if (bytes.size() < header_size + kSealedTagSize) {
    return Status::Corruption("sealed batch: truncated");
  }
  v.header.name = std::string_view(
      reinterpret_cast<const char*>(bytes.data() + kSealedRequestFixedSize), name_len);
  if (with_epoch) {
    v.header.epoch = LoadLE<uint64_t>(bytes.data() + kSealedRequestFixedSize + name_len);
    if (v.header.epoch == 0) return Status::Corruption("sealed batch: epoch 0");
  }
  v.associated_data = bytes.first(header_size);
  v.ciphertext = bytes.subspan(header_size, bytes.size() - header_size - kSealedTagSize);
  v.tag = bytes.last(kSealedTagSize);
  return v;
}

void EncodeSealedResponseHeader(const SealedResponseHeader& h,
                                std::span<std::byte, kSealedResponseHeaderSize> out) {
  StoreLE<uint32_t>(out.data(), kSealedResponseMagic);
  StoreLE<uint16_t>(out.data() + 4, kSealedVersion);
  StoreLE<uint16_t>(out.data() + 6, h.flags);
  StoreLE<uint64_t>(out.data() + 8, h.request_seq);
  StoreLE<uint64_t>(out.data() + 16, h.response_seq);
}

std::vector<std::byte> EncodeSealedHostError(uint64_t request_seq, const Status& status) {
  ResponseBuilder rb;
  rb.AddError(status);
  std::vector<std::byte> out(kSealedResponseHeaderSize + rb.bytes().size());
  SealedResponseHeader h;
  h.flags = kSealedResponseHostError;
  h.request_seq = request_seq;
  EncodeSealedResponseHeader(
      h, std::span<std::byte, kSealedResponseHeaderSize>(out.data(), kSealedResponseHeaderSize));
  std::memcpy(out.data() + kSealedResponseHeaderSize, rb.bytes().data(), rb.bytes().size());
  return out;
}

Result<SealedResponseView> ParseSealedResponse(std::span<const std::byte> bytes) {
  if (bytes.size() < kSealedResponseHeaderSize) {
    return Status::Corruption("sealed response: truncated header");
  }
  if (LoadLE<uint32_t>(bytes.data()) != kSealedResponseMagic) {
    return Status::Corruption("sealed response: bad magic");
  }
  const uint16_t version = LoadLE<uint16_t>(bytes.data() + 4);
  if (version != kSealedVersion) {
    return Status::FailedPrecondition("sealed response: unsupported version " +
                                      std::to_string(version));
  }
  SealedResponseView v;
  v.header.flags = LoadLE<uint16_t>(bytes.data() + 6);
  if ((v.header.flags & ~kSealedResponseHostError) != 0) {
    return Status::Corruption("sealed response: unknown flags");
  }
  v.header.request_seq = LoadLE<uint64_t>(bytes.data() + 8);
  v.header.response_seq = LoadLE<uint64_t>(bytes.data() + 16);
  v.associated_data = bytes.first(kSealedResponseHeaderSize);
  if ((v.header.flags & kSealedResponseHostError) != 0) {
    v.body = bytes.subspan(kSealedResponseHeaderSize);
    return v;
  }
  if (bytes.size() < kSealedResponseHeaderSize + kSealedTagSize) {
    return Status::Corruption("sealed response: truncated");
  }
  v.body = bytes.subspan(kSealedResponseHeaderSize,
                         bytes.size() - kSealedResponseHeaderSize - kSealedTagSize);
  v.tag = bytes.last(kSealedTagSize);
  return v;
}

std::vector<std::byte> EncodeReplicaBatchHeader(const ReplicaBatchHeader& h) {
  COSMOS_CHECK(!h.name.empty() && h.name.size() <= kMaxNameLength);
  std::vector<std::byte> out(kReplicaBatchFixedSize + h.name.size());
  StoreLE<uint32_t>(out.data(), kReplicaBatchMagic);
  StoreLE<uint16_t>(out.data() + 4, kSealedVersion);
  StoreLE<uint16_t>(out.data() + 6, 0);
  StoreLE<uint64_t>(out.data() + 8, h.channel_id);
  StoreLE<uint64_t>(out.data() + 16, h.seq);
  StoreLE<uint64_t>(out.data() + 24, h.epoch);
  out[32] = static_cast<std::byte>(h.name.size());
  std::memcpy(out.data() + kReplicaBatchFixedSize, h.name.data(), h.name.size());
  return out;
}

Result<ReplicaBatchView> ParseReplicaBatch(std::span<const std::byte> bytes) {
  if (bytes.size() < kReplicaBatchFixedSize) return Status::Corruption("replica batch: truncated");
  if (LoadLE<uint32_t>(bytes.data()) != kReplicaBatchMagic) {
    return Status::Corruption("replica batch: bad magic");
  }
  const uint16_t version = LoadLE<uint16_t>(bytes.data() + 4);
  if (version != kSealedVersion) {
    return Status::FailedPrecondition("replica batch: unsupported version " +
                                      std::to_string(version));
  }
  if (LoadLE<uint16_t>(bytes.data() + 6) != 0) return Status::Corruption("replica batch: flags");
  ReplicaBatchView v;
  v.header.channel_id = LoadLE<uint64_t>(bytes.data() + 8);
  v.header.seq = LoadLE<uint64_t>(bytes.data() + 16);
  v.header.epoch = LoadLE<uint64_t>(bytes.data() + 24);
  if (v.header.epoch == 0) return Status::Corruption("replica batch: epoch 0");
  const size_t name_len = static_cast<uint8_t>(bytes[32]);
  if (bytes[33] != std::byte{0} || bytes[34] != std::byte{0} || bytes[35] != std::byte{0}) {
    return Status::Corruption("replica batch: nonzero reserved bytes");
  }
  if (name_len == 0 || name_len > kMaxNameLength) {
    return Status::Corruption("replica batch: bad region name length");
  }
  const size_t header_size = kReplicaBatchFixedSize + name_len;
  if (bytes.size() < header_size + kSealedTagSize) {
    return Status::Corruption("replica batch: truncated");
  }
  v.header.name = std::string_view(
      reinterpret_cast<const char*>(bytes.data() + kReplicaBatchFixedSize), name_len);
  v.associated_data = bytes.first(header_size);
  v.ciphertext = bytes.subspan(header_size, bytes.size() - header_size - kSealedTagSize);
  v.tag = bytes.last(kSealedTagSize);
  return v;
}

}  // namespace cosmos::protocol
