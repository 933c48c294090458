// Fuzz target for the RPM protocol parsers (requests, responses, result
// payloads, hello). Mode byte: raw bytes, or bytes behind a valid batch
// header so the fuzzer reaches the op and result parsers quickly. Checks that
// every accepted request re-encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/endian.h"
#include "protocol/rpm_protocol.h"

using namespace cosmos::protocol;

namespace {

void CheckRequestReencodes(std::span<const std::byte> bytes, const std::vector<Op>& ops) {
  RequestBuilder b;
  for (const auto& op : ops) {
    switch (op.opcode) {
      case Opcode::kWrite:
        b.Write(op.handle, op.offset, op.payload);
        break;
      case Opcode::kRead:
        b.Read(op.handle, op.offset, PayloadU64(op.payload, 0));
        break;
      case Opcode::kFlush:
        b.Flush(op.handle, DecodeRanges(op.payload));
        break;
      case Opcode::kVerify:
        b.Verify(op.handle, DecodeRanges(op.payload));
        break;
      case Opcode::kEpoch:
        b.Epoch(op.handle, op.offset, op.flags);
        break;
      case Opcode::kWriteAfterFlush:
      case Opcode::kFetchAdd:
      case Opcode::kCompareAndSwap:
      case Opcode::kCreateRegion:
      case Opcode::kOpenRegion:
      case Opcode::kListRegions:
      case Opcode::kDeleteRegion:
      case Opcode::kStat:
      case Opcode::kListAccess:
      case Opcode::kRotateKey: {
        std::string_view name, pool;
        std::span<const std::byte> key;
        if (op.opcode == Opcode::kCreateRegion) {
          (void)DecodeCreatePayload(op.payload, op.flags, &name, &pool, &key);
        } else if (op.opcode == Opcode::kRotateKey) {
          (void)DecodeRotatePayload(op.payload, op.flags, &name, &key);
        }
        return;  // flags/handle fields of these are not all re-encodable
      }
      case Opcode::kGrantAccess: {
        std::string_view name;
        std::span<const std::byte> identity;
        uint8_t rights = 0;
        if (DecodeGrantPayload(op.payload, &name, &identity, &rights).ok()) {
          RequestBuilder g;
          g.GrantAccess(name, identity, rights);
        }
        return;
      }
    }
  }
  // Ops with nonzero flags or fields the builder zeroes are not byte-identical.
  for (const auto& op : ops) {
    if (op.flags != 0 ||
        ((op.opcode == Opcode::kFlush || op.opcode == Opcode::kVerify) && op.offset != 0))
      return;
  }
  if (b.bytes().size() != bytes.size() ||
      std::memcmp(b.bytes().data(), bytes.data(), bytes.size()) != 0) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 4;
  std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  std::vector<std::byte> buf;
  if (mode == 1 || mode == 2) {
    buf.resize(kBatchHeaderSize);
    cosmos::StoreLE<uint32_t>(buf.data(), kBatchMagic);
    cosmos::StoreLE<uint16_t>(buf.data() + 4, kVersion);
    cosmos::StoreLE<uint16_t>(
        buf.data() + 6,
        static_cast<uint16_t>(rest.empty() ? 1 : (static_cast<uint8_t>(rest[0]) % 8) + 1));
    if (!rest.empty()) buf.insert(buf.end(), rest.begin() + 1, rest.end());
  } else {
    buf.assign(rest.begin(), rest.end());
  }
  if (mode == 0 || mode == 1) {
    std::vector<Op> ops;
    if (ParseRequest(buf, &ops).ok()) CheckRequestReencodes(buf, ops);
  } else if (mode == 2) {
    std::vector<OpResult> results;
    if (ParseResponse(buf, &results).ok()) {
      for (const auto& r : results) {
        (void)ResultStatus(r);
        (void)DecodeU64(r.payload);
        (void)DecodeRegionDesc(r.payload);
        (void)DecodeRegionList(r.payload);
        (void)DecodeNodeStat(r.payload);
        (void)DecodeAccessInfo(r.payload);
      }
    }
  } else {
    (void)DecodeHello(buf);
    (void)DecodeHelloReply(buf);
    (void)DecodeRegionList(buf);
  }
  return 0;
}
