// The JSON form of etcd v3 requests and replies as etcd's grpc-gateway
// speaks it (etcd 3.4: POST /v3/kv/range etc.; keys and values base64, int64
// fields decimal strings, zero-valued fields omitted). Every reply is
// untrusted input: the parsers check every field they read and return
// Corruption for anything malformed (fuzzed by tests/fuzz/cluster_etcd_fuzz).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/etcd_client.h"
#include "cosmos/result.h"

namespace cosmos::cluster::codec {

// RFC 4648 base64 with padding (the form protobuf's JSON mapping uses).
std::string Base64Encode(std::string_view bytes);
// Strict decode: standard alphabet, length a multiple of 4, padding only at
// the end, no whitespace. Corruption naming `what` otherwise.
Result<std::string> Base64Decode(std::string_view text, std::string_view what);

// Request bodies.
std::string EncodeRangeRequest(const KeyRange& range, int64_t limit);
std::string EncodePutRequest(std::string_view key, std::string_view value, int64_t lease);
std::string EncodeDeleteRequest(const KeyRange& range);
std::string EncodeTxnRequest(const TxnRequest& request);
std::string EncodeLeaseGrantRequest(int64_t ttl_seconds);
// The body of keepalive, revoke and time-to-live: {"ID":"<id>"}.
std::string EncodeLeaseIdRequest(int64_t lease_id);
std::string EncodeWatchCreateRequest(const KeyRange& range, int64_t start_revision);

// Maps a gRPC status code (as etcd's gateway reports it) to a Status.
Status StatusFromGrpcCode(int64_t grpc_code, std::string message);

// The Status of a reply whose HTTP status is not 200: the error etcd put in
// the body, or (no error body) Unavailable for 5xx and Corruption otherwise.
// Never ok.
Status ParseErrorReply(std::string_view body, long http_status);

// Reply parsers. Each first recognises an error reply ({"error": ...,
// "code": N} or {"error": {"grpc_code": N, ...}}) and returns the Status it
// carries; otherwise parses the success form strictly.
Result<RangeResult> ParseRangeReply(std::string_view body);
// Returns the revision of the write.
Result<int64_t> ParsePutReply(std::string_view body);
// Returns the number of deleted keys.
Result<int64_t> ParseDeleteReply(std::string_view body);
// Checks that the responses answer, in order, the ops of the branch that ran.
Result<TxnResult> ParseTxnReply(std::string_view body, const TxnRequest& request);
Result<LeaseGrant> ParseLeaseGrantReply(std::string_view body);
// Returns the remaining TTL; NotFound when the lease no longer exists (etcd
// answers a keepalive of an expired lease with TTL 0).
Result<int64_t> ParseLeaseKeepAliveReply(std::string_view body);
Status ParseLeaseRevokeReply(std::string_view body);

// One message of a watch stream (the gateway writes one JSON object per
// line, each wrapped in {"result": ...}).
struct WatchMessage {
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // nonzero: the start revision was compacted
  std::string cancel_reason;
  WatchBatch batch;
};
Result<WatchMessage> ParseWatchMessage(std::string_view line);

}  // namespace cosmos::cluster::codec
