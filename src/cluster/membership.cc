// Node records, registration under a lease, and the lease keeper thread.
#include "cluster/membership.h"

#include <algorithm>
#include <charconv>

#include "cluster/json_reader.h"
#include "common/check.h"
#include "common/log.h"

namespace cosmos::cluster {
namespace {

constexpr std::string_view kWhat = "node record";
constexpr size_t kMaxAddressLength = 255;

bool AddressChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == ':' || c == '[' || c == ']';
}

// host:port (host a name, IPv4 or [IPv6]), port 1..65535.
Status ValidateAddress(std::string_view address) {
  const size_t colon = address.rfind(':');
  const bool shape = !address.empty() && address.size() <= kMaxAddressLength &&
                     std::all_of(address.begin(), address.end(), AddressChar) &&
                     colon != std::string_view::npos && colon > 0;
  int port = 0;
  if (shape) {
    const std::string_view digits = address.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size()) port = 0;
  }
  if (!shape || port < 1 || port > 65535) {
    return Status::InvalidArgument("node address must be host:port with a port in 1..65535");
  }
  return Status::Ok();
}

}  // namespace

Status ValidateNodeRecord(const NodeRecord& record) {
  COSMOS_RETURN_IF_ERROR(ValidateName("node id", record.id));
  COSMOS_RETURN_IF_ERROR(ValidateAddress(record.address));
  if (!record.failure_domain.empty()) {
    COSMOS_RETURN_IF_ERROR(ValidateName("failure domain", record.failure_domain));
  }
  return Status::Ok();
}

std::string EncodeNodeRecord(const NodeRecord& record) {
  COSMOS_CHECK_OK(ValidateNodeRecord(record));
  nlohmann::ordered_json doc = {{"format", kNodeRecordFormat},
                                {"id", record.id},
                                {"address", record.address},
                                {"failure_domain", record.failure_domain},
                                {"capacity_bytes", record.capacity_bytes}};
  return doc.dump();
}

Result<NodeRecord> DecodeNodeRecord(std::string_view text) {
  COSMOS_ASSIGN_OR_RETURN(json::Json doc, json::ParseObject(text, kWhat));
  COSMOS_RETURN_IF_ERROR(json::RecordFormat(doc, kNodeRecordFormat, kWhat));
  NodeRecord record;
  COSMOS_ASSIGN_OR_RETURN(record.id, json::String(doc, "id", kWhat, /*required=*/true));
  COSMOS_ASSIGN_OR_RETURN(record.address, json::String(doc, "address", kWhat, true));
  COSMOS_ASSIGN_OR_RETURN(record.failure_domain,
                          json::String(doc, "failure_domain", kWhat, /*required=*/false));
  COSMOS_ASSIGN_OR_RETURN(record.capacity_bytes, json::Uint64Number(doc, "capacity_bytes", kWhat));
  const Status valid = ValidateNodeRecord(record);
  if (!valid.ok()) return Status::Corruption(std::string(kWhat) + ": " + valid.message());
  return record;
}

Result<NodeRegistration> Membership::Register(const NodeRecord& record, int64_t ttl_seconds) {
  COSMOS_RETURN_IF_ERROR(ValidateNodeRecord(record));
  if (ttl_seconds < 1) return Status::InvalidArgument("node lease TTL must be >= 1 s");
  COSMOS_ASSIGN_OR_RETURN(LeaseGrant grant, etcd_.GrantLease(ttl_seconds));
  const std::string key = keys_.Node(record.id);
  TxnRequest txn;
  txn.compares.push_back(Compare::Absent(key));
  txn.success.push_back(TxnOp::Put(key, EncodeNodeRecord(record), grant.id));
  txn.failure.push_back(TxnOp::Get(KeyRange::Single(key)));
  Result<TxnResult> result = etcd_.Txn(txn);
  Result<int64_t> revision = Status::Internal("unset");
  if (!result.ok()) {
    revision = result.status();
  } else if (result->succeeded) {
    revision = result->revision;
  } else if (result->ranges.size() != 1 || result->ranges[0].kvs.size() != 1) {
    revision = Status::Aborted("node " + record.id + ": record vanished during registration");
  } else {
    revision = TakeOver(record, result->ranges[0].kvs[0], grant.id);
  }
  if (!revision.ok()) {
    // Best effort: an unused lease would expire by itself anyway.
    etcd_.RevokeLease(grant.id).IgnoreError();
    return revision.status();
  }
  return NodeRegistration{grant.id, grant.ttl_seconds, *revision};
}

Result<int64_t> Membership::TakeOver(const NodeRecord& record, const KeyValue& existing,
                                     int64_t lease_id) {
  Result<NodeRecord> holder = DecodeNodeRecord(existing.value);
  if (holder.ok() && holder->address != record.address) {
    return Status::AlreadyExists("node id " + record.id + " is held by a live node at " +
                                 holder->address);
  }
  // The same node restarted (or the old record is unreadable): replace it,
  // unless it changes under us.
  TxnRequest txn;
  txn.compares.push_back(Compare::ModRevisionIs(existing.key, existing.mod_revision));
  txn.success.push_back(TxnOp::Put(existing.key, EncodeNodeRecord(record), lease_id));
  COSMOS_ASSIGN_OR_RETURN(TxnResult result,
                          TxnOrAbort(etcd_, txn, "taking over node record " + record.id));
  COSMOS_LOG_INFO("cluster: node {} re-registered over its previous record (revision {})",
                  record.id, existing.mod_revision);
  return result.revision;
}

Status Membership::Deregister(const NodeRegistration& registration) {
  return etcd_.RevokeLease(registration.lease_id);
}

Result<NodeList> Membership::ListNodes() {
  COSMOS_ASSIGN_OR_RETURN(RangeResult range, etcd_.Range(KeyRange::Prefix(keys_.NodesPrefix())));
  NodeList list;
  list.revision = range.revision;
  for (const KeyValue& kv : range.kvs) {
    Result<NodeRecord> record = DecodeNodeRecord(kv.value);
    if (record.ok() && keys_.Node(record->id) == kv.key) {
      list.nodes.push_back(std::move(*record));
      continue;
    }
    COSMOS_LOG_WARN("cluster: ignoring malformed node record at {}: {}", kv.key,
                    record.ok() ? "id does not match its key" : record.status().ToString());
    list.malformed_keys.push_back(kv.key);
  }
  std::sort(list.nodes.begin(), list.nodes.end(),
            [](const NodeRecord& a, const NodeRecord& b) { return a.id < b.id; });
  return list;
}

LeaseKeeper::LeaseKeeper(EtcdClient& etcd, int64_t lease_id, std::chrono::milliseconds interval)
    : etcd_(etcd), lease_id_(lease_id), interval_(interval) {
  COSMOS_CHECK(interval.count() > 0);
  thread_ = std::thread([this] { Run(); });
}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseKeeper::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    Result<int64_t> ttl = etcd_.KeepAlive(lease_id_);
    lock.lock();
    status_ = ttl.status();
    if (ttl.status().code() == StatusCode::kNotFound) {
      lost_ = true;
      COSMOS_LOG_WARN("cluster: lease {} expired: {}", lease_id_, ttl.status().ToString());
      return;
    }
    if (!ttl.ok()) {
      COSMOS_LOG_WARN("cluster: refreshing lease {} failed (will retry): {}", lease_id_,
                      ttl.status().ToString());
    }
    cv_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

Status LeaseKeeper::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

bool LeaseKeeper::lost() const {
  std::lock_guard lock(mu_);
  return lost_;
}

}  // namespace cosmos::cluster
