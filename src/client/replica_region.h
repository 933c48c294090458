// Client-library internals for replicated regions (docs/cluster.md): a Region
// whose batches carry an EPOCH op, and the cluster client behind
// ClientOptions::cluster. Used by src/replication (a primary forwarding to
// its backups) and by tests; applications use include/cosmos/client.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "cosmos/client.h"

namespace cosmos::client {

// Opens region `name` on the node `client` is connected to, as a copy of a
// replicated region at `epoch`: every batch of the returned Region starts
// with an EPOCH op (epoch, kEpochFlagReplica when `replica`, i.e. sent by the
// primary to a backup), so the node refuses it with Aborted when it knows a
// newer epoch or does not hold the role. REQUIRES: `client` came from
// Client::Connect without `cluster`. InvalidArgument otherwise or for epoch 0;
// else OpenRegion's errors.
Result<std::unique_ptr<Region>> OpenRegionAtEpoch(Client& client, const std::string& name,
                                                  uint64_t epoch, bool replica);

// OpenRegionAtEpoch for a primary resyncing this node into the region
// (kEpochFlagReplica | kEpochFlagResync): accepted only while the node is
// not a replica of `epoch`.
Result<std::unique_ptr<Region>> OpenRegionForResync(Client& client, const std::string& name,
                                                    uint64_t epoch);

// Cluster-internal requests of other RPC types than RPM batches (replica
// batches and peer hellos of secure replicated regions:
// protocol/sealed_batch.h). `done` runs exactly once, on the client's thread,
// inside its event loop (Poll, WaitForRaw), with the raw response or the
// transport error. REQUIRES: a single-node client (InvalidArgument
// otherwise); Unavailable when not connected.
using RawDone = std::function<void(const Status& status, std::span<const std::byte> response)>;
Status SendRawRequest(Client& client, uint16_t type, std::span<const std::byte> payload,
                      RawDone done);
// Runs `client`'s event loop until `done()` or its call timeout (Timeout).
Status WaitForRaw(Client& client, const std::function<bool()>& done);

// Client::Connect with options.cluster set (cluster_client.cc).
Result<std::unique_ptr<Client>> ConnectCluster(const ClientOptions& options);

}  // namespace cosmos::client
