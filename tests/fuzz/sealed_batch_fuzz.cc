// libFuzzer target: the sealed-batch framing (protocol/sealed_batch.h) that
// the host parses from untrusted clients and the client parses from an
// untrusted host, and the replica-batch framing a backup's host parses. Checks that a parsed
// request's header re-encodes to the bytes it came from and that every span stays inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "protocol/sealed_batch.h"

using namespace cosmos::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto req = ParseSealedRequest(in);
  if (req.ok()) {
    const auto& v = *req;
    if (v.associated_data.size() + v.ciphertext.size() + v.tag.size() != size) std::abort();
    if (v.tag.size() != kSealedTagSize) std::abort();
    auto header = EncodeSealedRequestHeader(v.header);
    if (header.size() != v.associated_data.size() ||
        std::memcmp(header.data(), v.associated_data.data(), header.size()) != 0) {
      std::abort();
    }
  }
  auto resp = ParseSealedResponse(in);
  if (resp.ok()) {
    const auto& v = *resp;
    if (v.associated_data.size() != kSealedResponseHeaderSize) std::abort();
    if (v.associated_data.size() + v.body.size() + v.tag.size() != size) std::abort();
    if (((v.header.flags & kSealedResponseHostError) != 0) != v.tag.empty()) std::abort();
  }
  auto replica = ParseReplicaBatch(in);
  if (replica.ok()) {
    const auto& v = *replica;
    if (v.associated_data.size() + v.ciphertext.size() + v.tag.size() != size) std::abort();
    auto header = EncodeReplicaBatchHeader(v.header);
    if (header.size() != v.associated_data.size() ||
        std::memcmp(header.data(), v.associated_data.data(), header.size()) != 0) {
      std::abort();
    }
  }
  return 0;
}
