// libFuzzer target: the RPC packet parser and connect-body decoders on
// arbitrary bytes; a parsed header must re-encode to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rpc/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cosmos::rpc;
  std::vector<std::byte> buf(reinterpret_cast<const std::byte*>(data),
                             reinterpret_cast<const std::byte*>(data) + size);
  for (size_t max_payload : {size_t{0}, size_t{64}, size_t{1400}, size_t{65535}}) {
    ParsedPacket p;
    if (ParsePacket(buf, max_payload, &p) != ParseError::kNone) continue;
    if (p.payload.size() > max_payload) std::abort();
    if (kHeaderSize + p.payload.size() + p.tag.size() != size) std::abort();
    std::byte again[kHeaderSize];
    EncodeHeader(p.header, again);
    if (std::memcmp(again, buf.data(), kHeaderSize) != 0) std::abort();
    ConnectRequestBody rq;
    ConnectReplyBody rp;
    (void)DecodeConnectRequest(p.payload, &rq);
    (void)DecodeConnectReply(p.payload, &rp);
  }
  return 0;
}
