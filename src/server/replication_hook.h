// ReplicationHook: what the server asks of the cluster layer for replicated
// regions (docs/cluster.md "Data path"). The server stays a single node; a
// cosmosd started with --cluster installs an implementation (src/replication)
// that checks epochs and forwards a primary's batches to the backups.
#pragma once

#include <functional>
#include <span>
#include <string_view>

#include "cosmos/result.h"
#include "cosmos/status.h"
#include "protocol/rpm_protocol.h"
#include "sec/enclave.h"

namespace cosmos::server {

class ReplicationHook {
 public:
  virtual ~ReplicationHook() = default;

  // Runs ops[from..] of the batch on this node (as the server would without
  // replication) and appends one result per op to `out`; returns the index
  // one past the last op executed (ops after a failure are answered
  // Cancelled and count as executed).
  using LocalExecutor = std::function<size_t(size_t from, protocol::ResponseBuilder* out)>;

  // A client's batch on replicated region `region`: ops[0] is its EPOCH op
  // (no replica flag). Checks that this node is the region's primary at
  // exactly that epoch, executes the batch locally through `local`, forwards
  // what it changed to every backup of the epoch and returns once they all
  // acknowledged (or fails the batch). Appends exactly one result per op to
  // `out`. Runs on a server thread that may block (network, etcd).
  virtual void ExecutePrimary(std::string_view region, std::span<const protocol::Op> ops,
                              const LocalExecutor& local, protocol::ResponseBuilder* out) = 0;

  // A batch forwarded by a primary (EPOCH op with kEpochFlagReplica): Ok when
  // this node is a backup of `region` at exactly `epoch`. Aborted for an
  // older epoch (fencing) or when this node is not a backup of it;
  // Unavailable when this node does not know `epoch` yet. With `may_block`
  // it may read the placement from etcd; without, it answers from what the
  // node knows and returns WouldBlock when only etcd could tell (the server
  // then repeats the call on a flusher thread, with `may_block`).
  // `resync`: the batch copies data to a node that is joining the region
  // (kEpochFlagResync); Ok when this node is not a replica of exactly
  // `epoch` (it is not serving the region yet), Aborted when it is one.
  virtual Status CheckReplica(std::string_view region, uint64_t epoch, bool resync,
                              bool may_block) = 0;

  // True when `region` is replicated: ops on it without an EPOCH op are
  // refused (they would bypass replication and fencing). Never blocks.
  virtual bool IsReplicated(std::string_view region) = 0;

  // Secure replicated regions (docs/cluster.md "Secure replicated regions").
  // Runs a client's sealed batch in this node's enclave with its effects
  // sealed for the backups' enclaves: given the peer channel ids of the
  // backups (in order), returns the client's sealed response and one replica
  // message per backup.
  using SealedRunner =
      std::function<Result<sec::ReplicatedSealedBatch>(std::span<const sec::PeerChannelId>)>;
  // A client's sealed batch on replicated secure region `region` at `epoch`
  // (from the batch's authenticated header): checks the role and epoch as
  // ExecutePrimary does, opens peer channels to the backups' enclaves where
  // needed, runs the batch through `run`, forwards each replica message to
  // its backup and returns the client's sealed response once they all
  // applied it. An error when the batch failed (the client sees it as a host
  // error: Aborted when fenced, Unavailable when a backup failed and the new
  // configuration is not in place yet, FailedPrecondition without an
  // enclave). Runs on a thread that may block.
  virtual Result<std::vector<std::byte>> ExecutePrimarySealed(std::string_view region,
                                                              uint64_t epoch,
                                                              const SealedRunner& run) = 0;
};

}  // namespace cosmos::server
