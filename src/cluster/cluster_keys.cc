// Cluster key layout and name validation.
#include "cluster/cluster_keys.h"

#include "common/check.h"

namespace cosmos::cluster {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

}  // namespace

Status ValidateName(std::string_view kind, std::string_view name) {
  if (name.empty()) return Status::InvalidArgument(std::string(kind) + " is empty");
  if (name.size() > kMaxNameLength) {
    return Status::InvalidArgument(std::string(kind) + " '" + std::string(name.substr(0, 16)) +
                                   "...' is longer than " + std::to_string(kMaxNameLength) +
                                   " bytes");
  }
  for (char c : name) {
    if (!NameChar(c)) {
      // Do not echo the name: it may hold control bytes from an untrusted record.
      return Status::InvalidArgument(std::string(kind) +
                                     " may only contain letters, digits and . _ : -");
    }
  }
  return Status::Ok();
}

ClusterKeys::ClusterKeys(std::string root) : root_(std::move(root)) {
  COSMOS_CHECK_MSG(!root_.empty() && root_.back() == '/', "cluster key root must end with '/'");
}

}  // namespace cosmos::cluster
