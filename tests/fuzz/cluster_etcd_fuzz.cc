// Fuzz target for the cluster layer's parsers of untrusted text: every etcd
// JSON gateway reply form and the node and placement records other nodes
// write into etcd. First byte: which parser; the rest: the text. Checks that
// accepted base64 and records re-encode to what was accepted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cluster/etcd_codec.h"
#include "cluster/membership.h"
#include "cluster/placement.h"

using namespace cosmos::cluster;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// A transaction shaped like a reconfiguration: compare, put; else range.
const TxnRequest& SampleTxn() {
  static const TxnRequest txn = [] {
    TxnRequest t;
    t.compares.push_back(Compare::ModRevisionIs("/k", 3));
    t.success.push_back(TxnOp::Put("/k", "v"));
    t.failure.push_back(TxnOp::Get(KeyRange::Single("/k")));
    return t;
  }();
  return txn;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 12) {
    case 0:
      codec::ParseRangeReply(text).status().IgnoreError();
      break;
    case 1:
      codec::ParsePutReply(text).status().IgnoreError();
      break;
    case 2:
      codec::ParseDeleteReply(text).status().IgnoreError();
      break;
    case 3:
      codec::ParseTxnReply(text, SampleTxn()).status().IgnoreError();
      break;
    case 4:
      codec::ParseLeaseGrantReply(text).status().IgnoreError();
      break;
    case 5:
      codec::ParseLeaseKeepAliveReply(text).status().IgnoreError();
      break;
    case 6:
      codec::ParseLeaseRevokeReply(text).IgnoreError();
      break;
    case 7:
      codec::ParseWatchMessage(text).status().IgnoreError();
      break;
    case 8: {
      auto record = DecodeNodeRecord(text);
      if (record.ok()) Check(*DecodeNodeRecord(EncodeNodeRecord(*record)) == *record);
      break;
    }
    case 9: {
      auto placement = DecodePlacement(text);
      if (placement.ok()) Check(*DecodePlacement(EncodePlacement(*placement)) == *placement);
      break;
    }
    case 10: {
      auto bytes = codec::Base64Decode(text, "fuzz");
      if (bytes.ok()) Check(codec::Base64Encode(*bytes) == text);
      break;
    }
    default:
      Check(!codec::ParseErrorReply(text, 400 + (size % 200)).ok());
      break;
  }
  return 0;
}
