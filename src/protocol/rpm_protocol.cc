// Encoding and strict, bounds-checked parsing of the RPM batch protocol.
#include "protocol/rpm_protocol.h"

#include <cstring>

#include "common/check.h"
#include "common/endian.h"

namespace cosmos::protocol {
namespace {

void PutHeader(std::vector<std::byte>* buf, size_t count) {
  StoreLE<uint32_t>(buf->data(), kBatchMagic);
  StoreLE<uint16_t>(buf->data() + 4, kVersion);
  StoreLE<uint16_t>(buf->data() + 6, static_cast<uint16_t>(count));
}

Status CheckHeader(std::span<const std::byte> bytes, const char* what, size_t* count) {
  if (bytes.size() < kBatchHeaderSize)
    return Status::Corruption(std::string(what) + ": truncated header");
  if (LoadLE<uint32_t>(bytes.data()) != kBatchMagic)
    return Status::Corruption(std::string(what) + ": bad magic");
  uint16_t version = LoadLE<uint16_t>(bytes.data() + 4);
  if (version != kVersion) {
    return Status::FailedPrecondition(std::string(what) + ": unsupported protocol version " +
                                      std::to_string(version));
  }
  *count = LoadLE<uint16_t>(bytes.data() + 6);
  return Status::Ok();
}

Status CheckPayloadShape(Opcode op, uint8_t flags, size_t len) {
  switch (op) {
    case Opcode::kWrite:
      return Status::Ok();
    case Opcode::kRead:
    case Opcode::kWriteAfterFlush:
    case Opcode::kFetchAdd:
      return len == 8 ? Status::Ok() : Status::Corruption("op payload must be 8 bytes");
    case Opcode::kCompareAndSwap:
      return len == 16 ? Status::Ok() : Status::Corruption("cas payload must be 16 bytes");
    case Opcode::kFlush:
    case Opcode::kVerify:
      if (len % kRangeSize != 0) return Status::Corruption("range list not a multiple of 16 bytes");
      if (len / kRangeSize > kMaxRangesPerOp)
        return Status::InvalidArgument("too many ranges in one op");
      return Status::Ok();
    case Opcode::kCreateRegion: {
      if ((flags & ~(kCreateFlagSecure | kCreateFlagUserKey)) != 0 ||
          ((flags & kCreateFlagUserKey) != 0 && (flags & kCreateFlagSecure) == 0)) {
        return Status::InvalidArgument("create: unknown flags, or a user key for a plain region");
      }
      const size_t key = (flags & kCreateFlagUserKey) != 0 ? kWrappedUserKeySize : 0;
      if (len < 2 + key || len > 1 + 2 * kMaxNameLength + key) {
        return Status::Corruption("bad create payload");
      }
      return Status::Ok();
    }
    case Opcode::kGrantAccess:
      if (len < kGrantFixedSize) return Status::Corruption("grant payload truncated");
      if (len == kGrantFixedSize || len > kGrantFixedSize + kMaxNameLength)
        return Status::InvalidArgument("region name length must be 1..63");
      return Status::Ok();
    case Opcode::kRotateKey: {
      if ((flags & ~kRotateFlagUserKey) != 0)
        return Status::InvalidArgument("rotate: unknown flags");
      const size_t key = (flags & kRotateFlagUserKey) != 0 ? kWrappedUserKeySize : 0;
      if (len < key || len - key == 0 || len - key > kMaxNameLength)
        return Status::InvalidArgument("region name length must be 1..63");
      return Status::Ok();
    }
    case Opcode::kOpenRegion:
    case Opcode::kDeleteRegion:
    case Opcode::kListAccess:
      if (len == 0 || len > kMaxNameLength)
        return Status::InvalidArgument("region name length must be 1..63");
      return Status::Ok();
    case Opcode::kListRegions:
    case Opcode::kStat:
    case Opcode::kEpoch:
      return len == 0 ? Status::Ok() : Status::Corruption("op takes no payload");
  }
  return Status::InvalidArgument("unknown opcode");
}

void PutDesc(std::byte* p, const RegionDesc& d) {
  StoreLE<uint64_t>(p, d.handle);
  StoreLE<uint64_t>(p + 8, d.size);
  p[16] = std::byte{d.durability};
  p[17] = std::byte{static_cast<uint8_t>(d.secure ? 1 : 0)};
  StoreLE<uint16_t>(p + 18, static_cast<uint16_t>(d.name.size()));
  StoreLE<uint32_t>(p + 20, 0);
  std::memcpy(p + kRegionDescFixedSize, d.name.data(), d.name.size());
}

// Decodes one descriptor at the start of `in`; sets *used.
Result<RegionDesc> TakeDesc(std::span<const std::byte> in, size_t* used) {
  if (in.size() < kRegionDescFixedSize) return Status::Corruption("region descriptor truncated");
  RegionDesc d;
  d.handle = LoadLE<uint64_t>(in.data());
  d.size = LoadLE<uint64_t>(in.data() + 8);
  d.durability = static_cast<uint8_t>(in[16]);
  d.secure = static_cast<uint8_t>(in[17]) != 0;
  size_t name_len = LoadLE<uint16_t>(in.data() + 18);
  if (d.durability > 3) return Status::Corruption("region descriptor: bad durability");
  if (name_len > kMaxNameLength || in.size() - kRegionDescFixedSize < name_len) {
    return Status::Corruption("region descriptor: bad name length");
  }
  d.name.assign(reinterpret_cast<const char*>(in.data() + kRegionDescFixedSize), name_len);
  *used = kRegionDescFixedSize + name_len;
  return d;
}

}  // namespace

std::string_view OpcodeName(Opcode op) {
  switch (op) {
    case Opcode::kWrite:
      return "write";
    case Opcode::kRead:
      return "read";
    case Opcode::kFlush:
      return "flush";
    case Opcode::kWriteAfterFlush:
      return "write_after_flush";
    case Opcode::kCompareAndSwap:
      return "compare_and_swap";
    case Opcode::kFetchAdd:
      return "fetch_add";
    case Opcode::kVerify:
      return "verify";
    case Opcode::kEpoch:
      return "epoch";
    case Opcode::kCreateRegion:
      return "create_region";
    case Opcode::kOpenRegion:
      return "open_region";
    case Opcode::kListRegions:
      return "list_regions";
    case Opcode::kDeleteRegion:
      return "delete_region";
    case Opcode::kStat:
      return "stat";
    case Opcode::kGrantAccess:
      return "grant_access";
    case Opcode::kListAccess:
      return "list_access";
    case Opcode::kRotateKey:
      return "rotate_key";
  }
  return "unknown";
}

bool IsKnownOpcode(uint8_t b) { return (b >= 1 && b <= 8) || (b >= 16 && b <= 23); }

RequestBuilder::RequestBuilder() { Clear(); }

void RequestBuilder::Clear() {
  buf_.assign(kBatchHeaderSize, std::byte{0});
  count_ = 0;
  PutHeader(&buf_, 0);
}

std::byte* RequestBuilder::AddOp(Opcode op, uint8_t flags, uint64_t handle, uint64_t offset,
                                 size_t len) {
  COSMOS_CHECK(count_ < kMaxOpsPerBatch);
  COSMOS_CHECK(len <= UINT32_MAX);
  size_t at = buf_.size();
  buf_.resize(at + kOpHeaderSize + len);
  std::byte* p = buf_.data() + at;
  p[0] = std::byte{static_cast<uint8_t>(op)};
  p[1] = std::byte{flags};
  StoreLE<uint16_t>(p + 2, 0);
  StoreLE<uint32_t>(p + 4, static_cast<uint32_t>(len));
  StoreLE<uint64_t>(p + 8, handle);
  StoreLE<uint64_t>(p + 16, offset);
  ++count_;
  PutHeader(&buf_, count_);
  return p + kOpHeaderSize;
}

void RequestBuilder::Write(uint64_t handle, uint64_t offset, std::span<const std::byte> data) {
  std::byte* p = AddOp(Opcode::kWrite, 0, handle, offset, data.size());
  if (!data.empty()) std::memcpy(p, data.data(), data.size());
}
void RequestBuilder::Read(uint64_t handle, uint64_t offset, uint64_t length) {
  StoreLE<uint64_t>(AddOp(Opcode::kRead, 0, handle, offset, 8), length);
}
void RequestBuilder::Flush(uint64_t handle, std::span<const Range> ranges) {
  std::byte* p = AddOp(Opcode::kFlush, 0, handle, 0, ranges.size() * kRangeSize);
  for (size_t i = 0; i < ranges.size(); ++i) {
    StoreLE<uint64_t>(p + i * kRangeSize, ranges[i].offset);
    StoreLE<uint64_t>(p + i * kRangeSize + 8, ranges[i].length);
  }
}
void RequestBuilder::WriteAfterFlush(uint64_t handle, uint64_t offset, uint64_t value) {
  StoreLE<uint64_t>(AddOp(Opcode::kWriteAfterFlush, 0, handle, offset, 8), value);
}
void RequestBuilder::CompareAndSwap(uint64_t handle, uint64_t offset, uint64_t expected,
                                    uint64_t desired) {
  std::byte* p = AddOp(Opcode::kCompareAndSwap, 0, handle, offset, 16);
  StoreLE<uint64_t>(p, expected);
  StoreLE<uint64_t>(p + 8, desired);
}
void RequestBuilder::FetchAdd(uint64_t handle, uint64_t offset, uint64_t delta) {
  StoreLE<uint64_t>(AddOp(Opcode::kFetchAdd, 0, handle, offset, 8), delta);
}
void RequestBuilder::Verify(uint64_t handle, std::span<const Range> ranges) {
  std::byte* p = AddOp(Opcode::kVerify, 0, handle, 0, ranges.size() * kRangeSize);
  for (size_t i = 0; i < ranges.size(); ++i) {
    StoreLE<uint64_t>(p + i * kRangeSize, ranges[i].offset);
    StoreLE<uint64_t>(p + i * kRangeSize + 8, ranges[i].length);
  }
}
void RequestBuilder::Epoch(uint64_t handle, uint64_t epoch, uint8_t flags) {
  AddOp(Opcode::kEpoch, flags, handle, epoch, 0);
}
void RequestBuilder::CreateRegion(std::string_view name, uint64_t size, bool secure,
                                  std::string_view pool,
                                  std::span<const std::byte> wrapped_user_key) {
  COSMOS_CHECK(wrapped_user_key.empty() || wrapped_user_key.size() == kWrappedUserKeySize);
  // Over-long names are sent truncated-length-checked by the node: clamp the
  // length byte so the encoding itself stays well-formed.
  size_t n = name.size() > 255 ? 255 : name.size();
  uint8_t flags = secure ? kCreateFlagSecure : 0;
  if (!wrapped_user_key.empty()) flags |= kCreateFlagUserKey;
  std::byte* p =
      AddOp(Opcode::kCreateRegion, flags, 0, size, 1 + n + pool.size() + wrapped_user_key.size());
  p[0] = std::byte{static_cast<uint8_t>(n)};
  std::memcpy(p + 1, name.data(), n);
  if (!pool.empty()) std::memcpy(p + 1 + n, pool.data(), pool.size());
  if (!wrapped_user_key.empty()) {
    std::memcpy(p + 1 + n + pool.size(), wrapped_user_key.data(), wrapped_user_key.size());
  }
}
void RequestBuilder::OpenRegion(std::string_view name) {
  std::byte* p = AddOp(Opcode::kOpenRegion, 0, 0, 0, name.size());
  if (!name.empty()) std::memcpy(p, name.data(), name.size());
}
void RequestBuilder::ListRegions() { AddOp(Opcode::kListRegions, 0, 0, 0, 0); }
void RequestBuilder::DeleteRegion(std::string_view name) {
  std::byte* p = AddOp(Opcode::kDeleteRegion, 0, 0, 0, name.size());
  if (!name.empty()) std::memcpy(p, name.data(), name.size());
}
void RequestBuilder::Stat() { AddOp(Opcode::kStat, 0, 0, 0, 0); }

void RequestBuilder::GrantAccess(std::string_view name, std::span<const std::byte> identity,
                                 uint8_t rights) {
  COSMOS_CHECK(identity.size() == kIdentityKeySize);
  std::byte* p = AddOp(Opcode::kGrantAccess, 0, 0, 0, kGrantFixedSize + name.size());
  p[0] = std::byte{rights};
  std::memcpy(p + 1, identity.data(), kIdentityKeySize);
  if (!name.empty()) std::memcpy(p + kGrantFixedSize, name.data(), name.size());
}
void RequestBuilder::ListAccess(std::string_view name) {
  std::byte* p = AddOp(Opcode::kListAccess, 0, 0, 0, name.size());
  if (!name.empty()) std::memcpy(p, name.data(), name.size());
}
void RequestBuilder::RotateKey(std::string_view name, std::span<const std::byte> wrapped_user_key) {
  COSMOS_CHECK(wrapped_user_key.empty() || wrapped_user_key.size() == kWrappedUserKeySize);
  std::byte* p = AddOp(Opcode::kRotateKey, wrapped_user_key.empty() ? 0 : kRotateFlagUserKey, 0, 0,
                       name.size() + wrapped_user_key.size());
  if (!name.empty()) std::memcpy(p, name.data(), name.size());
  if (!wrapped_user_key.empty()) {
    std::memcpy(p + name.size(), wrapped_user_key.data(), wrapped_user_key.size());
  }
}

void RequestBuilder::Append(const RequestBuilder& other) {
  COSMOS_CHECK(count_ + other.count_ <= kMaxOpsPerBatch);
  buf_.insert(buf_.end(), other.buf_.begin() + kBatchHeaderSize, other.buf_.end());
  count_ += other.count_;
  PutHeader(&buf_, count_);
}

Status ParseRequest(std::span<const std::byte> bytes, std::vector<Op>* out) {
  out->clear();
  size_t count = 0;
  COSMOS_RETURN_IF_ERROR(CheckHeader(bytes, "rpm request", &count));
  if (count == 0) return Status::InvalidArgument("rpm request: empty batch");
  if (count > kMaxOpsPerBatch) return Status::InvalidArgument("rpm request: too many ops");
  size_t pos = kBatchHeaderSize;
  for (size_t i = 0; i < count; ++i) {
    if (bytes.size() - pos < kOpHeaderSize)
      return Status::Corruption("rpm request: truncated op header");
    const std::byte* p = bytes.data() + pos;
    uint8_t code = static_cast<uint8_t>(p[0]);
    if (!IsKnownOpcode(code))
      return Status::InvalidArgument("rpm request: unknown opcode " + std::to_string(code));
    if (LoadLE<uint16_t>(p + 2) != 0) return Status::Corruption("rpm request: reserved bits set");
    size_t len = LoadLE<uint32_t>(p + 4);
    pos += kOpHeaderSize;
    if (bytes.size() - pos < len)
      return Status::Corruption("rpm request: op payload beyond message");
    Op op;
    op.opcode = static_cast<Opcode>(code);
    op.flags = static_cast<uint8_t>(p[1]);
    op.handle = LoadLE<uint64_t>(p + 8);
    op.offset = LoadLE<uint64_t>(p + 16);
    op.payload = bytes.subspan(pos, len);
    COSMOS_RETURN_IF_ERROR(CheckPayloadShape(op.opcode, op.flags, len));
    if (op.opcode == Opcode::kEpoch &&
        (i != 0 || (op.flags & ~(kEpochFlagReplica | kEpochFlagResync)) != 0 ||
         op.flags == kEpochFlagResync)) {
      return Status::Corruption(
          "rpm request: epoch op must come first, with flags 0, 1 (replica) or 3 (resync)");
    }
    pos += len;
    out->push_back(op);
  }
  if (pos != bytes.size()) return Status::Corruption("rpm request: trailing bytes");
  return Status::Ok();
}

Status CheckOpRange(uint64_t offset, uint64_t len, uint64_t size, std::string_view what) {
  if (offset > size || len > size - offset) {
    return Status::OutOfRange(std::string(what) + " [" + std::to_string(offset) + ", +" +
                              std::to_string(len) + ") outside region of " + std::to_string(size) +
                              " bytes");
  }
  return Status::Ok();
}

Status CheckOpAtomic(uint64_t offset, uint64_t size, std::string_view what) {
  if (offset % 8 != 0) {
    return Status::InvalidArgument(std::string(what) + " offset " + std::to_string(offset) +
                                   " is not 8-byte aligned");
  }
  return CheckOpRange(offset, 8, size, what);
}

bool IsDataOpcode(Opcode op) {
  switch (op) {
    case Opcode::kWrite:
    case Opcode::kRead:
    case Opcode::kFlush:
    case Opcode::kWriteAfterFlush:
    case Opcode::kCompareAndSwap:
    case Opcode::kFetchAdd:
    case Opcode::kVerify:
      return true;
    default:
      return false;
  }
}

std::vector<Range> DecodeRanges(std::span<const std::byte> payload) {
  std::vector<Range> r(payload.size() / kRangeSize);
  for (size_t i = 0; i < r.size(); ++i) {
    r[i].offset = LoadLE<uint64_t>(payload.data() + i * kRangeSize);
    r[i].length = LoadLE<uint64_t>(payload.data() + i * kRangeSize + 8);
  }
  return r;
}

uint64_t PayloadU64(std::span<const std::byte> payload, size_t index) {
  COSMOS_CHECK(payload.size() >= (index + 1) * 8);
  return LoadLE<uint64_t>(payload.data() + index * 8);
}

Status DecodeCreatePayload(std::span<const std::byte> payload, uint8_t flags,
                           std::string_view* name, std::string_view* pool,
                           std::span<const std::byte>* wrapped_user_key) {
  *wrapped_user_key = {};
  if ((flags & kCreateFlagUserKey) != 0) {
    if (payload.size() < kWrappedUserKeySize) return Status::Corruption("create payload: no key");
    *wrapped_user_key = payload.subspan(payload.size() - kWrappedUserKeySize);
    payload = payload.first(payload.size() - kWrappedUserKeySize);
  }
  if (payload.empty()) return Status::Corruption("create payload empty");
  size_t n = static_cast<uint8_t>(payload[0]);
  if (n == 0 || n > kMaxNameLength)
    return Status::InvalidArgument("region name length must be 1..63");
  if (payload.size() - 1 < n) return Status::Corruption("create payload: name beyond payload");
  *name = std::string_view(reinterpret_cast<const char*>(payload.data() + 1), n);
  *pool = std::string_view(reinterpret_cast<const char*>(payload.data() + 1 + n),
                           payload.size() - 1 - n);
  if (pool->size() > kMaxNameLength) return Status::InvalidArgument("pool name too long");
  return Status::Ok();
}

Status DecodeRotatePayload(std::span<const std::byte> payload, uint8_t flags,
                           std::string_view* name, std::span<const std::byte>* wrapped_user_key) {
  *wrapped_user_key = {};
  if ((flags & kRotateFlagUserKey) != 0) {
    if (payload.size() < kWrappedUserKeySize) return Status::Corruption("rotate payload: no key");
    *wrapped_user_key = payload.subspan(payload.size() - kWrappedUserKeySize);
    payload = payload.first(payload.size() - kWrappedUserKeySize);
  }
  if (payload.empty() || payload.size() > kMaxNameLength) {
    return Status::InvalidArgument("region name length must be 1..63");
  }
  *name = std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size());
  return Status::Ok();
}

Status DecodeGrantPayload(std::span<const std::byte> payload, std::string_view* name,
                          std::span<const std::byte>* identity, uint8_t* rights) {
  if (payload.size() <= kGrantFixedSize) return Status::Corruption("grant payload truncated");
  *rights = static_cast<uint8_t>(payload[0]);
  if (*rights > kMaxRights) return Status::InvalidArgument("unknown access right bits");
  *identity = payload.subspan(1, kIdentityKeySize);
  *name = std::string_view(reinterpret_cast<const char*>(payload.data() + kGrantFixedSize),
                           payload.size() - kGrantFixedSize);
  return Status::Ok();
}

ResponseBuilder::ResponseBuilder() { Clear(); }

void ResponseBuilder::Clear() {
  buf_.assign(kBatchHeaderSize, std::byte{0});
  count_ = 0;
  PutHeader(&buf_, 0);
}

std::byte* ResponseBuilder::Add(StatusCode code, size_t len) {
  COSMOS_CHECK(count_ < kMaxOpsPerBatch);
  size_t at = buf_.size();
  buf_.resize(at + kResultHeaderSize + len);
  std::byte* p = buf_.data() + at;
  p[0] = std::byte{static_cast<uint8_t>(code)};
  p[1] = std::byte{0};
  StoreLE<uint16_t>(p + 2, 0);
  StoreLE<uint32_t>(p + 4, static_cast<uint32_t>(len));
  ++count_;
  PutHeader(&buf_, count_);
  return p + kResultHeaderSize;
}

void ResponseBuilder::AddU64(uint64_t v) { StoreLE<uint64_t>(Add(StatusCode::kOk, 8), v); }

void ResponseBuilder::AddError(const Status& status) {
  COSMOS_CHECK(!status.ok());
  std::string_view m = status.message();
  if (m.size() > kMaxErrorMessage) m = m.substr(0, kMaxErrorMessage);
  const StatusCode code =
      status.code() == StatusCode::kWouldBlock ? StatusCode::kInternal : status.code();
  std::byte* p = Add(code, m.size());
  if (!m.empty()) std::memcpy(p, m.data(), m.size());
}

void ResponseBuilder::AddRegionDesc(const RegionDesc& d, std::span<const std::byte> receipt) {
  COSMOS_CHECK(receipt.empty() || receipt.size() == kUserKeyReceiptSize);
  std::byte* p = Add(StatusCode::kOk, kRegionDescFixedSize + d.name.size() + receipt.size());
  PutDesc(p, d);
  if (!receipt.empty()) {
    std::memcpy(p + kRegionDescFixedSize + d.name.size(), receipt.data(), receipt.size());
  }
}

void ResponseBuilder::AddU64WithReceipt(uint64_t v, std::span<const std::byte> receipt) {
  COSMOS_CHECK(receipt.size() == kUserKeyReceiptSize);
  std::byte* p = Add(StatusCode::kOk, 8 + kUserKeyReceiptSize);
  StoreLE<uint64_t>(p, v);
  std::memcpy(p + 8, receipt.data(), kUserKeyReceiptSize);
}

void ResponseBuilder::AddRegionList(std::span<const RegionDesc> descs) {
  size_t len = 4;
  for (const auto& d : descs) len += kRegionDescFixedSize + d.name.size();
  std::byte* p = Add(StatusCode::kOk, len);
  StoreLE<uint32_t>(p, static_cast<uint32_t>(descs.size()));
  p += 4;
  for (const auto& d : descs) {
    PutDesc(p, d);
    p += kRegionDescFixedSize + d.name.size();
  }
}

void ResponseBuilder::AddNodeStat(const NodeStat& s) {
  std::byte* p = Add(StatusCode::kOk, kNodeStatSize);
  StoreLE<uint32_t>(p, s.workers);
  StoreLE<uint32_t>(p + 4, s.pools);
  StoreLE<uint64_t>(p + 8, s.regions);
  StoreLE<uint64_t>(p + 16, s.batches);
  StoreLE<uint64_t>(p + 24, s.ops);
  StoreLE<uint64_t>(p + 32, s.bytes_written);
}

void ResponseBuilder::AddAccessInfo(const AccessInfo& info) {
  std::byte* p =
      Add(StatusCode::kOk, kAccessInfoFixedSize + info.entries.size() * kAccessEntrySize);
  StoreLE<uint32_t>(p, info.key_epoch);
  StoreLE<uint32_t>(p + 4, static_cast<uint32_t>(info.entries.size()));
  p += kAccessInfoFixedSize;
  for (const AccessEntry& e : info.entries) {
    std::memcpy(p, e.fingerprint.data(), kFingerprintSize);
    p[kFingerprintSize] = std::byte{e.rights};
    p += kAccessEntrySize;
  }
}

Status ParseResponse(std::span<const std::byte> bytes, std::vector<OpResult>* out) {
  out->clear();
  size_t count = 0;
  COSMOS_RETURN_IF_ERROR(CheckHeader(bytes, "rpm response", &count));
  if (count > kMaxOpsPerBatch) return Status::Corruption("rpm response: too many results");
  size_t pos = kBatchHeaderSize;
  for (size_t i = 0; i < count; ++i) {
    if (bytes.size() - pos < kResultHeaderSize)
      return Status::Corruption("rpm response: truncated result");
    const std::byte* p = bytes.data() + pos;
    uint8_t code = static_cast<uint8_t>(p[0]);
    // Codes up to kAborted go on the wire (kAborted since replicated regions:
    // a stale epoch); kWouldBlock and anything newer never do.
    if (code > static_cast<uint8_t>(StatusCode::kAborted)) {
      return Status::Corruption("rpm response: unknown status code");
    }
    size_t len = LoadLE<uint32_t>(p + 4);
    pos += kResultHeaderSize;
    if (bytes.size() - pos < len) return Status::Corruption("rpm response: payload beyond message");
    out->push_back(OpResult{static_cast<StatusCode>(code), bytes.subspan(pos, len)});
    pos += len;
  }
  if (pos != bytes.size()) return Status::Corruption("rpm response: trailing bytes");
  return Status::Ok();
}

Status ResultStatus(const OpResult& r) {
  if (r.code == StatusCode::kOk) return Status::Ok();
  return Status(r.code,
                std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size()));
}

Result<uint64_t> DecodeU64(std::span<const std::byte> payload) {
  if (payload.size() != 8) return Status::Corruption("rpm response: expected 8-byte result");
  return LoadLE<uint64_t>(payload.data());
}

Result<RegionDesc> DecodeRegionDesc(std::span<const std::byte> payload) {
  size_t used = 0;
  COSMOS_ASSIGN_OR_RETURN(RegionDesc d, TakeDesc(payload, &used));
  if (used != payload.size()) return Status::Corruption("region descriptor: trailing bytes");
  return d;
}

Result<uint64_t> DecodeU64WithReceipt(std::span<const std::byte> payload,
                                      std::span<std::byte> receipt) {
  COSMOS_CHECK(receipt.size() == kUserKeyReceiptSize);
  if (payload.size() != 8 + kUserKeyReceiptSize) {
    return Status::Corruption("rpm response: expected a u64 and a user-key receipt");
  }
  std::memcpy(receipt.data(), payload.data() + 8, kUserKeyReceiptSize);
  return LoadLE<uint64_t>(payload.data());
}

Result<RegionDesc> DecodeRegionDescWithReceipt(std::span<const std::byte> payload,
                                               std::span<std::byte> receipt) {
  COSMOS_CHECK(receipt.size() == kUserKeyReceiptSize);
  size_t used = 0;
  COSMOS_ASSIGN_OR_RETURN(RegionDesc d, TakeDesc(payload, &used));
  if (payload.size() - used != kUserKeyReceiptSize) {
    return Status::Corruption("region descriptor: no user-key receipt after it");
  }
  std::memcpy(receipt.data(), payload.data() + used, kUserKeyReceiptSize);
  return d;
}

Result<std::vector<RegionDesc>> DecodeRegionList(std::span<const std::byte> payload) {
  if (payload.size() < 4) return Status::Corruption("region list truncated");
  size_t n = LoadLE<uint32_t>(payload.data());
  if (n > payload.size() / kRegionDescFixedSize)
    return Status::Corruption("region list: bad count");
  std::vector<RegionDesc> out;
  size_t pos = 4;
  for (size_t i = 0; i < n; ++i) {
    size_t used = 0;
    COSMOS_ASSIGN_OR_RETURN(RegionDesc d, TakeDesc(payload.subspan(pos), &used));
    out.push_back(std::move(d));
    pos += used;
  }
  if (pos != payload.size()) return Status::Corruption("region list: trailing bytes");
  return out;
}

Result<NodeStat> DecodeNodeStat(std::span<const std::byte> p) {
  if (p.size() != kNodeStatSize) return Status::Corruption("node stat: wrong size");
  NodeStat s;
  s.workers = LoadLE<uint32_t>(p.data());
  s.pools = LoadLE<uint32_t>(p.data() + 4);
  s.regions = LoadLE<uint64_t>(p.data() + 8);
  s.batches = LoadLE<uint64_t>(p.data() + 16);
  s.ops = LoadLE<uint64_t>(p.data() + 24);
  s.bytes_written = LoadLE<uint64_t>(p.data() + 32);
  return s;
}

Result<AccessInfo> DecodeAccessInfo(std::span<const std::byte> p) {
  if (p.size() < kAccessInfoFixedSize) return Status::Corruption("access info truncated");
  AccessInfo info;
  info.key_epoch = LoadLE<uint32_t>(p.data());
  const size_t n = LoadLE<uint32_t>(p.data() + 4);
  if ((p.size() - kAccessInfoFixedSize) % kAccessEntrySize != 0 ||
      (p.size() - kAccessInfoFixedSize) / kAccessEntrySize != n) {
    return Status::Corruption("access info: count does not match its length");
  }
  for (size_t i = 0; i < n; ++i) {
    const std::byte* e = p.data() + kAccessInfoFixedSize + i * kAccessEntrySize;
    AccessEntry entry;
    std::memcpy(entry.fingerprint.data(), e, kFingerprintSize);
    entry.rights = static_cast<uint8_t>(e[kFingerprintSize]);
    if (entry.rights == 0 || entry.rights > kMaxRights) {
      return Status::Corruption("access info: bad rights");
    }
    info.entries.push_back(entry);
  }
  return info;
}

std::vector<std::byte> EncodeHello(const Hello& h) {
  std::vector<std::byte> b(kHelloSize);
  StoreLE<uint32_t>(b.data(), kHelloMagic);
  StoreLE<uint16_t>(b.data() + 4, h.version);
  StoreLE<uint16_t>(b.data() + 6, h.flags);
  StoreLE<uint32_t>(b.data() + 8, 0);
  return b;
}

Result<Hello> DecodeHello(std::span<const std::byte> b) {
  if (b.size() != kHelloSize || LoadLE<uint32_t>(b.data()) != kHelloMagic) {
    return Status::InvalidArgument("not an rpm client hello");
  }
  Hello h;
  h.version = LoadLE<uint16_t>(b.data() + 4);
  h.flags = LoadLE<uint16_t>(b.data() + 6);
  if (h.version != kVersion) {
    return Status::FailedPrecondition("unsupported rpm protocol version " +
                                      std::to_string(h.version));
  }
  return h;
}

std::vector<std::byte> EncodeHelloReply(const HelloReply& r) {
  std::vector<std::byte> b(kHelloReplySize);
  StoreLE<uint32_t>(b.data(), kHelloMagic);
  StoreLE<uint16_t>(b.data() + 4, r.version);
  StoreLE<uint16_t>(b.data() + 6, r.worker_port);
  StoreLE<uint32_t>(b.data() + 8, r.workers);
  StoreLE<uint32_t>(b.data() + 12, 0);
  return b;
}

Result<HelloReply> DecodeHelloReply(std::span<const std::byte> b) {
  if (b.size() != kHelloReplySize || LoadLE<uint32_t>(b.data()) != kHelloMagic) {
    return Status::Corruption("malformed rpm hello reply");
  }
  HelloReply r;
  r.version = LoadLE<uint16_t>(b.data() + 4);
  r.worker_port = LoadLE<uint16_t>(b.data() + 6);
  r.workers = LoadLE<uint32_t>(b.data() + 8);
  if (r.version != kVersion) return Status::FailedPrecondition("node speaks another rpm version");
  return r;
}

}  // namespace cosmos::protocol
