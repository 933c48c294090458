// RPM wire protocol: the batch request / per-op result formats exchanged by
// the remote persistent-memory client (src/client) and cosmosd (src/server)
// inside RPC messages. Spec: docs/semantics.md "Wire format". Little-endian.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cosmos/result.h"
#include "cosmos/status.h"

namespace cosmos::protocol {

// RPC request type carrying an RPM batch (registered by the server).
inline constexpr uint16_t kRpmRequestType = 0x0400;

inline constexpr uint32_t kBatchMagic = 0x4d505243;  // "CRPM"
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kMaxOpsPerBatch = 1024;
inline constexpr size_t kMaxNameLength = 63;
inline constexpr size_t kMaxRangesPerOp = 256;
inline constexpr size_t kMaxMessageLength = 8u << 20;  // matches RpcOptions default
inline constexpr size_t kMaxErrorMessage = 160;
// Seed of the plain-mode VERIFY digest (XXH3-64 over the ranges' bytes, in order).
inline constexpr uint64_t kVerifySeed = 0x434f534d4f535631ull;

enum class Opcode : uint8_t {
  kWrite = 1,            // payload: bytes to store at offset
  kRead = 2,             // payload: u64 length
  kFlush = 3,            // payload: ranges (u64 offset, u64 length) * n
  kWriteAfterFlush = 4,  // payload: u64 value; offset 8-aligned
  kCompareAndSwap = 5,   // payload: u64 expected, u64 desired
  kFetchAdd = 6,         // payload: u64 delta
  kVerify = 7,           // payload: ranges; result: u64 digest
  // Replicated regions (docs/semantics.md section 8): first op of every batch
  // on a replicated region; handle = region handle, offset = the placement
  // epoch the sender acts in, flags bit 0 = forwarded by the primary to a
  // backup (kEpochFlagReplica). No payload; an empty ok result.
  kEpoch = 8,
  // offset = size; flags bit0 = secure, bit1 = user key; payload: u8
  // name_len, name, pool[, wrapped user key (kWrappedUserKeySize) with bit1];
  // result: RegionDesc[, receipt (kUserKeyReceiptSize) with bit1].
  kCreateRegion = 16,
  kOpenRegion = 17,    // payload: name
  kListRegions = 18,   // no payload
  kDeleteRegion = 19,  // payload: name
  kStat = 20,          // no payload; result: NodeStat
  // Secure-region administration (rpm version 1; a node without them answers
  // InvalidArgument "unknown opcode"). Payloads: docs/semantics.md section 7.
  kGrantAccess = 21,  // payload: u8 rights, u8[32] identity, name; rights 0 = revoke
  kListAccess = 22,   // payload: name; result: AccessInfo
  // payload: name[, wrapped user key with flags bit0]; result: u64 key epoch
  // after the rotation[, receipt with flags bit0].
  kRotateKey = 23,
};
inline constexpr uint8_t kCreateFlagSecure = 1;
inline constexpr uint8_t kCreateFlagUserKey = 2;  // only with kCreateFlagSecure
inline constexpr uint8_t kRotateFlagUserKey = 1;
// A user-supplied region key as the client wraps it for the node's enclave
// (sec/user_key.h: u8 version, nonce, ciphertext, tag), and the enclave's
// receipt for it (an HMAC the client checks).
inline constexpr size_t kWrappedUserKeySize = 61;
inline constexpr size_t kUserKeyReceiptSize = 32;
inline constexpr uint8_t kEpochFlagReplica = 1;
// With kEpochFlagReplica: a primary resyncing a node that is not (yet) a
// replica of the epoch (docs/cluster.md "Resync"); that node accepts it.
inline constexpr uint8_t kEpochFlagResync = 2;

// "write", "read", ... ; "unknown" otherwise.
std::string_view OpcodeName(Opcode op);
// True for opcodes this version understands.
bool IsKnownOpcode(uint8_t byte);

// Fixed headers (all fields little-endian, no padding on the wire).
inline constexpr size_t kBatchHeaderSize = 8;  // u32 magic, u16 version, u16 count
inline constexpr size_t kOpHeaderSize =
    24;  // u8 op, u8 flags, u16 0, u32 len, u64 handle, u64 offset
inline constexpr size_t kResultHeaderSize = 8;  // u8 status, u8 0, u16 0, u32 len
inline constexpr size_t kRangeSize = 16;        // u64 offset, u64 length
inline constexpr size_t kRegionDescFixedSize =
    24;  // u64 handle, u64 size, u8 dur, u8 secure, u16 name_len, u32 0
inline constexpr size_t kNodeStatSize = 40;
// Secure-region administration: a client identity is its Ed25519 public key;
// access lists name identities by a 16-byte fingerprint (SHA-256(key)[0..16)).
inline constexpr size_t kIdentityKeySize = 32;
inline constexpr size_t kFingerprintSize = 16;
inline constexpr uint8_t kMaxRights = 7;  // read 1 | write 2 | admin 4
inline constexpr size_t kGrantFixedSize = 1 + kIdentityKeySize;
inline constexpr size_t kAccessInfoFixedSize = 8;  // u32 key epoch, u32 count
inline constexpr size_t kAccessEntrySize = kFingerprintSize + 1;
static_assert(kGrantFixedSize == 33 && kAccessEntrySize == 17);
static_assert(kOpHeaderSize == 1 + 1 + 2 + 4 + 8 + 8);
static_assert(kResultHeaderSize == 1 + 1 + 2 + 4);
static_assert(kRegionDescFixedSize == 8 + 8 + 1 + 1 + 2 + 4);

struct Range {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// One op of a parsed request; `payload` points into the parsed buffer.
struct Op {
  Opcode opcode = Opcode::kWrite;
  uint8_t flags = 0;
  uint64_t handle = 0;
  uint64_t offset = 0;
  std::span<const std::byte> payload;
};

// One result of a parsed response; `payload` points into the parsed buffer.
struct OpResult {
  StatusCode code = StatusCode::kOk;
  std::span<const std::byte> payload;  // the error message when code != ok
};

// A region as described by the node.
struct RegionDesc {
  uint64_t handle = 0;
  uint64_t size = 0;
  uint8_t durability = 0;  // cosmos::Durability value
  bool secure = false;
  std::string name;
};

// One access-list entry of a secure region, as LIST_ACCESS reports it.
struct AccessEntry {
  std::array<std::byte, kFingerprintSize> fingerprint{};
  uint8_t rights = 0;  // 1..7
  bool operator==(const AccessEntry&) const = default;
};

// LIST_ACCESS result: the region's key epoch and its access list.
struct AccessInfo {
  uint32_t key_epoch = 0;
  std::vector<AccessEntry> entries;
};

struct NodeStat {
  uint32_t workers = 0;
  uint32_t pools = 0;
  uint64_t regions = 0;
  uint64_t batches = 0;
  uint64_t ops = 0;
  uint64_t bytes_written = 0;
};

// Builds a request batch. Append ops in execution order, then take().
class RequestBuilder {
 public:
  RequestBuilder();
  void Clear();
  size_t op_count() const { return count_; }
  size_t size() const { return buf_.size(); }
  bool empty() const { return count_ == 0; }

  void Write(uint64_t handle, uint64_t offset, std::span<const std::byte> data);
  void Read(uint64_t handle, uint64_t offset, uint64_t length);
  void Flush(uint64_t handle, std::span<const Range> ranges);
  void WriteAfterFlush(uint64_t handle, uint64_t offset, uint64_t value);
  void CompareAndSwap(uint64_t handle, uint64_t offset, uint64_t expected, uint64_t desired);
  void FetchAdd(uint64_t handle, uint64_t offset, uint64_t delta);
  void Verify(uint64_t handle, std::span<const Range> ranges);
  void Epoch(uint64_t handle, uint64_t epoch, uint8_t flags);
  // `wrapped_user_key`: empty, or kWrappedUserKeySize bytes (sets
  // kCreateFlagUserKey; secure only).
  void CreateRegion(std::string_view name, uint64_t size, bool secure, std::string_view pool,
                    std::span<const std::byte> wrapped_user_key = {});
  void OpenRegion(std::string_view name);
  void ListRegions();
  void DeleteRegion(std::string_view name);
  void Stat();
  // REQUIRES: identity.size() == kIdentityKeySize.
  void GrantAccess(std::string_view name, std::span<const std::byte> identity, uint8_t rights);
  void ListAccess(std::string_view name);
  // `wrapped_user_key`: empty, or kWrappedUserKeySize bytes (sets
  // kRotateFlagUserKey).
  void RotateKey(std::string_view name, std::span<const std::byte> wrapped_user_key = {});

  // Appends every op of `other` (a builder of the same version) after ours.
  void Append(const RequestBuilder& other);

  std::span<const std::byte> bytes() const { return buf_; }
  // The encoded batch, writable (for wiping a batch that held secrets).
  std::vector<std::byte>& buffer() { return buf_; }

 private:
  std::byte* AddOp(Opcode op, uint8_t flags, uint64_t handle, uint64_t offset, size_t len);
  std::vector<std::byte> buf_;
  size_t count_ = 0;
};

// Parses an untrusted request. Every op header, length and count is
// bounds-checked; op payload shapes are checked per opcode (READ payload is
// 8 bytes, ranges are a multiple of 16 and at most kMaxRangesPerOp, ...).
// An EPOCH op is valid only as the first op of a batch, with no payload and
// flags 0, kEpochFlagReplica or kEpochFlagReplica | kEpochFlagResync.
// Errors: Corruption (bad magic, truncated, trailing bytes, bad shape),
// FailedPrecondition (unsupported version), InvalidArgument (unknown opcode,
// too many ops). On error `out` is left in an unspecified state.
Status ParseRequest(std::span<const std::byte> bytes, std::vector<Op>* out);

// Range checks of an op against a region of `size` bytes, with the messages
// every executor sends (the server for plain regions, the enclave for sealed
// batches). CheckOpRange: OutOfRange unless [offset, offset+len) fits
// (overflow-safe). CheckOpAtomic: InvalidArgument for an offset that is not
// 8-byte aligned, else CheckOpRange(offset, 8). `what` names the op.
Status CheckOpRange(uint64_t offset, uint64_t len, uint64_t size, std::string_view what);
Status CheckOpAtomic(uint64_t offset, uint64_t size, std::string_view what);
// True for the ops that touch a region's bytes (WRITE, READ, FLUSH,
// WRITE_AFTER_FLUSH, CAS, FETCH_ADD, VERIFY).
bool IsDataOpcode(Opcode op);
// Decodes the ranges of a FLUSH/VERIFY op (shape already checked by ParseRequest).
std::vector<Range> DecodeRanges(std::span<const std::byte> payload);
// Reads the i-th u64 of a payload. REQUIRES: payload holds it.
uint64_t PayloadU64(std::span<const std::byte> payload, size_t index);
// Splits a CREATE_REGION payload into name, pool and (flags bit1) the
// wrapped user key, pointing into `payload` (empty without bit1).
// Corruption if malformed.
Status DecodeCreatePayload(std::span<const std::byte> payload, uint8_t flags,
                           std::string_view* name, std::string_view* pool,
                           std::span<const std::byte>* wrapped_user_key);
// Splits a ROTATE_KEY payload into name and (flags bit0) the wrapped user
// key. InvalidArgument for a bad name length.
Status DecodeRotatePayload(std::span<const std::byte> payload, uint8_t flags,
                           std::string_view* name, std::span<const std::byte>* wrapped_user_key);

// Splits a GRANT_ACCESS payload (shape already checked by ParseRequest) into
// name, identity (kIdentityKeySize bytes, pointing into `payload`) and
// rights. InvalidArgument for rights above kMaxRights.
Status DecodeGrantPayload(std::span<const std::byte> payload, std::string_view* name,
                          std::span<const std::byte>* identity, uint8_t* rights);

// Builds a response: one result per executed or cancelled op, in order.
class ResponseBuilder {
 public:
  ResponseBuilder();
  void Clear();
  size_t result_count() const { return count_; }
  // Appends a result and returns where its `len` payload bytes go.
  std::byte* Add(StatusCode code, size_t len);
  void AddOk() { Add(StatusCode::kOk, 0); }
  void AddU64(uint64_t v);
  // kWouldBlock is node-internal and never goes on the wire: it is sent as
  // kInternal.
  void AddError(const Status& status);
  // `receipt` (empty or kUserKeyReceiptSize bytes) follows the descriptor.
  void AddRegionDesc(const RegionDesc& desc, std::span<const std::byte> receipt = {});
  // A u64 followed by a user-key receipt.
  void AddU64WithReceipt(uint64_t v, std::span<const std::byte> receipt);
  void AddRegionList(std::span<const RegionDesc> descs);
  void AddNodeStat(const NodeStat& stat);
  void AddAccessInfo(const AccessInfo& info);
  std::span<const std::byte> bytes() const { return buf_; }
  std::vector<std::byte>& buffer() { return buf_; }

 private:
  std::vector<std::byte> buf_;
  size_t count_ = 0;
};

// Parses an untrusted response. Errors: Corruption (also for a status code
// above kAborted, the largest code a node sends), FailedPrecondition (version).
Status ParseResponse(std::span<const std::byte> bytes, std::vector<OpResult>* out);

// Converts a result into a Status (ok, or its code with the carried message).
Status ResultStatus(const OpResult& r);
// Decoders for result payloads. Corruption when the payload has the wrong shape.
Result<uint64_t> DecodeU64(std::span<const std::byte> payload);
Result<RegionDesc> DecodeRegionDesc(std::span<const std::byte> payload);
// Results that end with a user-key receipt (create / rotate with a user
// key): the receipt is copied to `receipt` (kUserKeyReceiptSize bytes).
Result<uint64_t> DecodeU64WithReceipt(std::span<const std::byte> payload,
                                      std::span<std::byte> receipt);
Result<RegionDesc> DecodeRegionDescWithReceipt(std::span<const std::byte> payload,
                                               std::span<std::byte> receipt);
Result<std::vector<RegionDesc>> DecodeRegionList(std::span<const std::byte> payload);
Result<NodeStat> DecodeNodeStat(std::span<const std::byte> payload);
// Also Corruption for an entry with rights 0 or above kMaxRights.
Result<AccessInfo> DecodeAccessInfo(std::span<const std::byte> payload);

// Connect handshake (the RPC connect payload and reply).
inline constexpr uint32_t kHelloMagic = 0x4f4c4548;  // "HELO"
inline constexpr size_t kHelloSize = 12;             // u32 magic, u16 version, u16 flags, u32 0
inline constexpr size_t kHelloReplySize =
    16;  // u32 magic, u16 version, u16 port, u32 workers, u32 0
inline constexpr uint16_t kHelloWantsAssignment = 1;  // first contact: node picks a worker
struct Hello {
  uint16_t version = kVersion;
  uint16_t flags = 0;
};
struct HelloReply {
  uint16_t version = kVersion;
  uint16_t worker_port = 0;  // 0: stay on this session
  uint32_t workers = 0;
};
std::vector<std::byte> EncodeHello(const Hello& h);
Result<Hello> DecodeHello(std::span<const std::byte> bytes);
std::vector<std::byte> EncodeHelloReply(const HelloReply& r);
Result<HelloReply> DecodeHelloReply(std::span<const std::byte> bytes);

}  // namespace cosmos::protocol
