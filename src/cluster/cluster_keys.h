// The key layout of COSMOS's cluster state in etcd (docs/cluster.md) and the
// rule for names that become part of a key.
#pragma once

#include <string>
#include <string_view>

#include "cosmos/status.h"

namespace cosmos::cluster {

// Longest node id or region name (the region rule of a pool, layout.h).
inline constexpr size_t kMaxNameLength = 63;

// Ok when `name` is 1..63 bytes of letters, digits and . _ : - (so it is a
// single key segment and a valid pool region name). InvalidArgument naming
// `kind` ("node id", "region name") otherwise.
Status ValidateName(std::string_view kind, std::string_view name);

// Builds keys under one root, "/cosmos/v1/" by default; tests and several
// clusters sharing an etcd use their own roots. The "v1" is the layout's
// version: a new layout gets a new root, so old and new never mix.
//   <root>nodes/<node id>     a NodeRecord, attached to the node's lease
//   <root>regions/<region>    a RegionPlacement
class ClusterKeys {
 public:
  static constexpr std::string_view kDefaultRoot = "/cosmos/v1/";

  // REQUIRES: `root` is non-empty and ends with '/'.
  explicit ClusterKeys(std::string root = std::string(kDefaultRoot));

  const std::string& root() const { return root_; }
  std::string NodesPrefix() const { return root_ + "nodes/"; }
  std::string Node(std::string_view id) const { return NodesPrefix() + std::string(id); }
  std::string RegionsPrefix() const { return root_ + "regions/"; }
  std::string Region(std::string_view name) const { return RegionsPrefix() + std::string(name); }

 private:
  std::string root_;
};

}  // namespace cosmos::cluster
