// etcd v3 JSON gateway codec: request encoding and strict reply parsing.
#include "cluster/etcd_codec.h"

#include <array>

#include "cluster/json_reader.h"

namespace cosmos::cluster::codec {
namespace {

using json::Json;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  }
  return table;
}
constexpr std::array<int8_t, 256> kDecodeTable = MakeDecodeTable();

std::string Dump(const Json& doc) { return doc.dump(); }

// Adds key and (when not a single key) range_end to a request object.
void PutRange(Json& obj, const KeyRange& range) {
  obj["key"] = Base64Encode(range.key);
  if (!range.range_end.empty()) obj["range_end"] = Base64Encode(range.range_end);
}

Json EncodeCompare(const Compare& c) {
  Json obj = Json::object();
  obj["key"] = Base64Encode(c.key);
  static constexpr std::array<const char*, 4> kOps = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
  obj["result"] = kOps[static_cast<size_t>(c.op)];
  switch (c.target) {
    case Compare::Target::kVersion:
      obj["target"] = "VERSION";
      obj["version"] = std::to_string(c.number);
      break;
    case Compare::Target::kCreateRevision:
      obj["target"] = "CREATE";
      obj["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kModRevision:
      obj["target"] = "MOD";
      obj["mod_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kValue:
      obj["target"] = "VALUE";
      obj["value"] = Base64Encode(c.value);
      break;
    case Compare::Target::kLease:
      obj["target"] = "LEASE";
      obj["lease"] = std::to_string(c.number);
      break;
  }
  return obj;
}

Json EncodeOp(const TxnOp& op) {
  Json inner = Json::object();
  switch (op.kind) {
    case TxnOp::Kind::kPut:
      inner["key"] = Base64Encode(op.range.key);
      inner["value"] = Base64Encode(op.value);
      if (op.lease != 0) inner["lease"] = std::to_string(op.lease);
      return Json{{"request_put", std::move(inner)}};
    case TxnOp::Kind::kDelete:
      PutRange(inner, op.range);
      return Json{{"request_delete_range", std::move(inner)}};
    case TxnOp::Kind::kRange:
      PutRange(inner, op.range);
      return Json{{"request_range", std::move(inner)}};
  }
  return Json::object();
}

Json EncodeOps(const std::vector<TxnOp>& ops) {
  Json arr = Json::array();
  for (const TxnOp& op : ops) arr.push_back(EncodeOp(op));
  return arr;
}

// If `doc` is an error reply, the Status it carries; ok otherwise. Two forms:
// unary {"error": "msg", "message": "msg", "code": N} and streaming
// {"error": {"grpc_code": N, "message": "msg", ...}}.
Status ErrorOf(const Json& doc, std::string_view what) {
  const auto it = doc.find("error");
  if (it == doc.end()) return Status::Ok();
  const Json* holder = &doc;
  std::string_view code_field = "code";
  if (it->is_object()) {
    holder = &*it;
    code_field = "grpc_code";
  } else if (!it->is_string()) {
    return Status::Corruption(std::string(what) + ": field 'error' is neither text nor object");
  }
  const auto code = holder->find(code_field);
  if (code == holder->end() && it->is_string()) {
    // A response message's own "error" text without a gRPC code (LeaseGrant
    // has such a field): an error only when non-empty.
    if (it->get_ref<const std::string&>().empty()) return Status::Ok();
    return Status::Internal(std::string(what) + ": etcd: " + it->get<std::string>());
  }
  if (code == holder->end() || !code->is_number_integer()) {
    return Status::Corruption(std::string(what) + ": error reply without an integer code");
  }
  auto message = json::String(*holder, "message", what, /*required=*/false);
  if (!message.ok()) return message.status();
  const int64_t grpc_code = code->get<int64_t>();
  if (grpc_code == 0) return Status::Corruption(std::string(what) + ": error reply with code 0");
  return StatusFromGrpcCode(grpc_code, std::string(what) + ": etcd: " + *message);
}

// Parses `body` as an object and returns it, or its error Status.
Result<Json> ParseReply(std::string_view body, std::string_view what) {
  COSMOS_ASSIGN_OR_RETURN(Json doc, json::ParseObject(body, what));
  COSMOS_RETURN_IF_ERROR(ErrorOf(doc, what));
  return doc;
}

// The revision in a response header; etcd's revisions start at 1.
Result<int64_t> HeaderRevision(const Json& obj, std::string_view what) {
  COSMOS_ASSIGN_OR_RETURN(Json header, json::Object(obj, "header", what, /*required=*/true));
  COSMOS_ASSIGN_OR_RETURN(int64_t revision, json::Int64String(header, "revision", what));
  if (revision < 1) {
    return Status::Corruption(std::string(what) + ": header revision " + std::to_string(revision) +
                              " is below 1");
  }
  return revision;
}

// A mvccpb.KeyValue. `live`: a stored key (range results, put events), whose
// revisions and version are positive and ordered; otherwise a delete event,
// which carries only the key and the deletion revision.
Result<KeyValue> ParseKeyValue(const Json& obj, std::string_view what, bool live) {
  if (!obj.is_object()) return Status::Corruption(std::string(what) + ": kv is not an object");
  KeyValue kv;
  COSMOS_ASSIGN_OR_RETURN(std::string key64, json::String(obj, "key", what, /*required=*/true));
  COSMOS_ASSIGN_OR_RETURN(kv.key, Base64Decode(key64, std::string(what) + ": key"));
  if (kv.key.empty()) return Status::Corruption(std::string(what) + ": empty key");
  COSMOS_ASSIGN_OR_RETURN(std::string value64, json::String(obj, "value", what, false));
  COSMOS_ASSIGN_OR_RETURN(kv.value, Base64Decode(value64, std::string(what) + ": value"));
  COSMOS_ASSIGN_OR_RETURN(kv.create_revision, json::Int64String(obj, "create_revision", what));
  COSMOS_ASSIGN_OR_RETURN(kv.mod_revision, json::Int64String(obj, "mod_revision", what));
  COSMOS_ASSIGN_OR_RETURN(kv.version, json::Int64String(obj, "version", what));
  COSMOS_ASSIGN_OR_RETURN(kv.lease, json::Int64String(obj, "lease", what));
  const bool ordered =
      live ? (kv.create_revision >= 1 && kv.mod_revision >= kv.create_revision && kv.version >= 1)
           : kv.mod_revision >= 1;
  if (!ordered || kv.lease < 0) {
    return Status::Corruption(std::string(what) + ": key has inconsistent revisions (create " +
                              std::to_string(kv.create_revision) + ", mod " +
                              std::to_string(kv.mod_revision) + ", version " +
                              std::to_string(kv.version) + ")");
  }
  return kv;
}

// A RangeResponse object (top-level or inside a txn). `revision` is the
// header's when it has one, else `fallback_revision`.
Result<RangeResult> ParseRangeObject(const Json& obj, std::string_view what,
                                     int64_t fallback_revision) {
  RangeResult result;
  if (fallback_revision > 0 && obj.find("header") == obj.end()) {
    result.revision = fallback_revision;
  } else {
    COSMOS_ASSIGN_OR_RETURN(result.revision, HeaderRevision(obj, what));
  }
  COSMOS_ASSIGN_OR_RETURN(Json kvs, json::Array(obj, "kvs", what));
  for (const Json& item : kvs) {
    COSMOS_ASSIGN_OR_RETURN(KeyValue kv, ParseKeyValue(item, what, /*live=*/true));
    if (kv.mod_revision > result.revision) {
      return Status::Corruption(std::string(what) + ": key modified at revision " +
                                std::to_string(kv.mod_revision) + " after the read's revision " +
                                std::to_string(result.revision));
    }
    result.kvs.push_back(std::move(kv));
  }
  COSMOS_ASSIGN_OR_RETURN(result.more, json::Bool(obj, "more", what));
  COSMOS_ASSIGN_OR_RETURN(result.count, json::Int64String(obj, "count", what));
  if (result.count < static_cast<int64_t>(result.kvs.size())) {
    return Status::Corruption(std::string(what) + ": count " + std::to_string(result.count) +
                              " is below the " + std::to_string(result.kvs.size()) +
                              " keys returned");
  }
  return result;
}

// The name of the field a txn response entry must hold for `kind`.
std::string_view ResponseField(TxnOp::Kind kind) {
  switch (kind) {
    case TxnOp::Kind::kPut:
      return "response_put";
    case TxnOp::Kind::kDelete:
      return "response_delete_range";
    case TxnOp::Kind::kRange:
      return "response_range";
  }
  return "";
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text, std::string_view what) {
  if (text.size() % 4 != 0) {
    return Status::Corruption(std::string(what) + ": base64 length " + std::to_string(text.size()) +
                              " is not a multiple of 4");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    if (pad == 1 && text[i + 2] == '=') {
      return Status::Corruption(std::string(what) + ": misplaced base64 padding");
    }
    uint32_t n = 0;
    for (int j = 0; j < 4; ++j) {
      const unsigned char c = static_cast<unsigned char>(text[i + j]);
      const int8_t v = (j >= 4 - pad) ? 0 : kDecodeTable[c];
      if (v < 0) return Status::Corruption(std::string(what) + ": invalid base64 character");
      n = (n << 6) | static_cast<uint32_t>(v);
    }
    // Canonical form: the bits that padding drops must be zero.
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) {
      return Status::Corruption(std::string(what) + ": non-canonical base64");
    }
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

std::string EncodeRangeRequest(const KeyRange& range, int64_t limit) {
  Json obj = Json::object();
  PutRange(obj, range);
  if (limit > 0) obj["limit"] = std::to_string(limit);
  return Dump(obj);
}

std::string EncodePutRequest(std::string_view key, std::string_view value, int64_t lease) {
  Json obj = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) obj["lease"] = std::to_string(lease);
  return Dump(obj);
}

std::string EncodeDeleteRequest(const KeyRange& range) {
  Json obj = Json::object();
  PutRange(obj, range);
  return Dump(obj);
}

std::string EncodeTxnRequest(const TxnRequest& request) {
  Json compares = Json::array();
  for (const Compare& c : request.compares) compares.push_back(EncodeCompare(c));
  Json obj = {{"compare", std::move(compares)},
              {"success", EncodeOps(request.success)},
              {"failure", EncodeOps(request.failure)}};
  return Dump(obj);
}

std::string EncodeLeaseGrantRequest(int64_t ttl_seconds) {
  return Dump(Json{{"TTL", std::to_string(ttl_seconds)}});
}

std::string EncodeLeaseIdRequest(int64_t lease_id) {
  return Dump(Json{{"ID", std::to_string(lease_id)}});
}

std::string EncodeWatchCreateRequest(const KeyRange& range, int64_t start_revision) {
  Json inner = Json::object();
  PutRange(inner, range);
  if (start_revision > 0) inner["start_revision"] = std::to_string(start_revision);
  return Dump(Json{{"create_request", std::move(inner)}});
}

Status StatusFromGrpcCode(int64_t grpc_code, std::string message) {
  switch (grpc_code) {
    case 1:
      return Status::Cancelled(std::move(message));
    case 3:
      return Status::InvalidArgument(std::move(message));
    case 4:
      return Status::Timeout(std::move(message));
    case 5:
      return Status::NotFound(std::move(message));
    case 6:
      return Status::AlreadyExists(std::move(message));
    case 7:
    case 16:
      return Status::PermissionDenied(std::move(message));
    case 8:
      return Status::ResourceExhausted(std::move(message));
    case 9:
      return Status::FailedPrecondition(std::move(message));
    case 10:
      return Status::Aborted(std::move(message));
    case 11:
      return Status::OutOfRange(std::move(message));
    case 14:
      return Status::Unavailable(std::move(message));
    case 15:
      return Status::Corruption(std::move(message));
    default:
      return Status::Internal(std::move(message) + " (gRPC code " + std::to_string(grpc_code) +
                              ")");
  }
}

Status ParseErrorReply(std::string_view body, long http_status) {
  const std::string what = "etcd reply with HTTP status " + std::to_string(http_status);
  auto doc = json::ParseObject(body, what);
  if (doc.ok() && doc->contains("error")) {
    Status error = ErrorOf(*doc, what);
    if (!error.ok()) return error;
  }
  if (http_status >= 500) return Status::Unavailable(what);
  return Status::Corruption(what + " and no error in its body");
}

Result<RangeResult> ParseRangeReply(std::string_view body) {
  constexpr std::string_view kWhat = "etcd range reply";
  COSMOS_ASSIGN_OR_RETURN(Json doc, ParseReply(body, kWhat));
  return ParseRangeObject(doc, kWhat, /*fallback_revision=*/0);
}

Result<int64_t> ParsePutReply(std::string_view body) {
  constexpr std::string_view kWhat = "etcd put reply";
  COSMOS_ASSIGN_OR_RETURN(Json doc, ParseReply(body, kWhat));
  return HeaderRevision(doc, kWhat);
}

Result<int64_t> ParseDeleteReply(std::string_view body) {
  constexpr std::string_view kWhat = "etcd delete reply";
  COSMOS_ASSIGN_OR_RETURN(Json doc, ParseReply(body, kWhat));
  COSMOS_RETURN_IF_ERROR(HeaderRevision(doc, kWhat));
  COSMOS_ASSIGN_OR_RETURN(int64_t deleted, json::Int64String(doc, "deleted", kWhat));
  if (deleted < 0) return Status::Corruption(std::string(kWhat) + ": negative 'deleted'");
  return deleted;
}

Result<TxnResult> ParseTxnReply(std::string_view body, const TxnRequest& request) {
  constexpr std::string_view kWhat = "etcd txn reply";
  COSMOS_ASSIGN_OR_RETURN(Json doc, ParseReply(body, kWhat));
  TxnResult result;
  COSMOS_ASSIGN_OR_RETURN(result.revision, HeaderRevision(doc, kWhat));
  COSMOS_ASSIGN_OR_RETURN(result.succeeded, json::Bool(doc, "succeeded", kWhat));
  COSMOS_ASSIGN_OR_RETURN(Json responses, json::Array(doc, "responses", kWhat));
  // Each response must answer the op at its position in the branch that ran.
  const std::vector<TxnOp>& ops = result.succeeded ? request.success : request.failure;
  if (responses.size() != ops.size()) {
    return Status::Corruption(std::string(kWhat) + ": " + std::to_string(responses.size()) +
                              " responses for " + std::to_string(ops.size()) + " operations");
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    const Json& entry = responses[i];
    const std::string_view field = ResponseField(ops[i].kind);
    if (!entry.is_object() || entry.size() != 1 || !entry.contains(field)) {
      return Status::Corruption(std::string(kWhat) + ": response " + std::to_string(i) +
                                " is not a " + std::string(field));
    }
    COSMOS_ASSIGN_OR_RETURN(Json inner, json::Object(entry, field, kWhat, /*required=*/true));
    if (ops[i].kind == TxnOp::Kind::kRange) {
      COSMOS_ASSIGN_OR_RETURN(RangeResult range, ParseRangeObject(inner, kWhat, result.revision));
      result.ranges.push_back(std::move(range));
    }
  }
  return result;
}

Result<LeaseGrant> ParseLeaseGrantReply(std::string_view body) {
  constexpr std::string_view kWhat = "etcd lease grant reply";
  COSMOS_ASSIGN_OR_RETURN(Json doc, ParseReply(body, kWhat));
  COSMOS_RETURN_IF_ERROR(HeaderRevision(doc, kWhat));
  LeaseGrant grant;
  COSMOS_ASSIGN_OR_RETURN(grant.id, json::Int64String(doc, "ID", kWhat));
  COSMOS_ASSIGN_OR_RETURN(grant.ttl_seconds, json::Int64String(doc, "TTL", kWhat));
  if (grant.id <= 0 || grant.ttl_seconds <= 0) {
    return Status::Corruption(std::string(kWhat) + ": lease id " + std::to_string(grant.id) +
                              " or TTL " + std::to_string(grant.ttl_seconds) + " is not positive");
  }
  return grant;
}

Result<int64_t> ParseLeaseKeepAliveReply(std::string_view body) {
  constexpr std::string_view kWhat = "etcd lease keepalive reply";
  COSMOS_ASSIGN_OR_RETURN(Json doc, ParseReply(body, kWhat));
  // The gateway serves keepalive as a stream: the reply is wrapped in "result".
  COSMOS_ASSIGN_OR_RETURN(Json result, json::Object(doc, "result", kWhat, /*required=*/true));
  COSMOS_RETURN_IF_ERROR(HeaderRevision(result, kWhat));
  COSMOS_ASSIGN_OR_RETURN(int64_t id, json::Int64String(result, "ID", kWhat));
  COSMOS_ASSIGN_OR_RETURN(int64_t ttl, json::Int64String(result, "TTL", kWhat));
  if (id <= 0 || ttl < 0) {
    return Status::Corruption(std::string(kWhat) + ": lease id " + std::to_string(id) + " or TTL " +
                              std::to_string(ttl) + " is out of range");
  }
  if (ttl == 0) return Status::NotFound("etcd lease " + std::to_string(id) + " has expired");
  return ttl;
}

Status ParseLeaseRevokeReply(std::string_view body) {
  constexpr std::string_view kWhat = "etcd lease revoke reply";
  COSMOS_ASSIGN_OR_RETURN(Json doc, ParseReply(body, kWhat));
  return HeaderRevision(doc, kWhat).status();
}

Result<WatchMessage> ParseWatchMessage(std::string_view line) {
  constexpr std::string_view kWhat = "etcd watch message";
  COSMOS_ASSIGN_OR_RETURN(Json doc, ParseReply(line, kWhat));
  COSMOS_ASSIGN_OR_RETURN(Json result, json::Object(doc, "result", kWhat, /*required=*/true));
  WatchMessage message;
  COSMOS_ASSIGN_OR_RETURN(message.batch.revision, HeaderRevision(result, kWhat));
  COSMOS_ASSIGN_OR_RETURN(message.created, json::Bool(result, "created", kWhat));
  COSMOS_ASSIGN_OR_RETURN(message.canceled, json::Bool(result, "canceled", kWhat));
  COSMOS_ASSIGN_OR_RETURN(message.compact_revision,
                          json::Int64String(result, "compact_revision", kWhat));
  COSMOS_ASSIGN_OR_RETURN(message.cancel_reason,
                          json::String(result, "cancel_reason", kWhat, /*required=*/false));
  COSMOS_ASSIGN_OR_RETURN(bool fragment, json::Bool(result, "fragment", kWhat));
  if (fragment) return Status::Corruption(std::string(kWhat) + ": unrequested fragment");
  if (message.compact_revision < 0) {
    return Status::Corruption(std::string(kWhat) + ": negative compact_revision");
  }
  COSMOS_ASSIGN_OR_RETURN(Json events, json::Array(result, "events", kWhat));
  int64_t previous = 0;
  for (const Json& item : events) {
    if (!item.is_object()) return Status::Corruption(std::string(kWhat) + ": event not an object");
    COSMOS_ASSIGN_OR_RETURN(std::string type, json::String(item, "type", kWhat, false));
    WatchEvent event;
    if (type == "DELETE") {
      event.type = WatchEvent::Type::kDelete;
    } else if (!type.empty() && type != "PUT") {
      return Status::Corruption(std::string(kWhat) + ": unknown event type");
    }
    COSMOS_ASSIGN_OR_RETURN(Json kv, json::Object(item, "kv", kWhat, /*required=*/true));
    COSMOS_ASSIGN_OR_RETURN(event.kv,
                            ParseKeyValue(kv, kWhat, event.type == WatchEvent::Type::kPut));
    // Events come in revision order, none newer than the message's header.
    if (event.kv.mod_revision < previous || event.kv.mod_revision > message.batch.revision) {
      return Status::Corruption(std::string(kWhat) + ": event revision " +
                                std::to_string(event.kv.mod_revision) + " out of order");
    }
    previous = event.kv.mod_revision;
    message.batch.events.push_back(std::move(event));
  }
  return message;
}

}  // namespace cosmos::cluster::codec
