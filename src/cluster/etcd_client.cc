// Backend-independent helpers of the etcd interface: prefix ranges and the
// compare-and-swap shape of a transaction.
#include "cluster/etcd_client.h"

namespace cosmos::cluster {

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  // Strip trailing 0xff bytes, then increment the last byte: every key that
  // starts with `prefix` sorts below the result.
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

KeyRange KeyRange::Prefix(std::string prefix) {
  std::string end = PrefixRangeEnd(prefix);
  return {std::move(prefix), std::move(end)};
}

Result<TxnResult> TxnOrAbort(EtcdClient& etcd, const TxnRequest& request, std::string_view what) {
  COSMOS_ASSIGN_OR_RETURN(TxnResult result, etcd.Txn(request));
  if (!result.succeeded) {
    return Status::Aborted(std::string(what) + ": a compare failed at etcd revision " +
                           std::to_string(result.revision) + " (changed concurrently)");
  }
  return result;
}

}  // namespace cosmos::cluster
