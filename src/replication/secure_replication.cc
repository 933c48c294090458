// Secure replicated regions on the primary (docs/cluster.md "Secure
// replicated regions"): a client's sealed batch runs in this node's enclave,
// which seals the batch's effects for each backup's enclave over an attested
// peer channel; the host forwards those messages (RPC kReplicaBatchRequestType)
// and acknowledges the client once every backup applied them. The hosts see
// only ciphertext and the clear headers.
#include <algorithm>
#include <memory>

#include "client/replica_region.h"
#include "common/log.h"
#include "protocol/sealed_batch.h"
#include "replication/cluster_node.h"
#include "sec/peer_handshake.h"

namespace cosmos::replication {
namespace {

// Connections of one replication thread to the backups for secure
// forwarding (a Client belongs to the thread that made it).
thread_local std::map<const void*, std::map<std::string, std::unique_ptr<Client>>> t_secure_targets;

bool Has(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The one result of an RPM response (replica batch answers, refused hellos).
Status SingleResult(std::span<const std::byte> response) {
  std::vector<protocol::OpResult> results;
  COSMOS_RETURN_IF_ERROR(protocol::ParseResponse(response, &results));
  if (results.size() != 1) return Status::Corruption("expected one result");
  return protocol::ResultStatus(results[0]);
}

}  // namespace

Result<cluster::RegionPlacement> ClusterNode::CheckPrimary(std::string_view region,
                                                           uint64_t epoch) {
  COSMOS_ASSIGN_OR_RETURN(cluster::RegionPlacement p, PlacementFor(region, epoch));
  if (epoch < p.epoch) {
    return Status::Aborted("region '" + std::string(region) + "': stale epoch " +
                           std::to_string(epoch) + ", the region is at epoch " +
                           std::to_string(p.epoch));
  }
  if (epoch > p.epoch) {
    return Status::Unavailable("region '" + std::string(region) + "': epoch " +
                               std::to_string(epoch) + " not known yet");
  }
  if (p.primary != options_.node_id) {
    return Status::Aborted("region '" + std::string(region) + "': node " + options_.node_id +
                           " is not the primary at epoch " + std::to_string(epoch) + " (" +
                           p.primary + " is)");
  }
  return p;
}

Result<sec::PeerChannelId> ClusterNode::PeerChannelTo(const std::string& node, Client& via) {
  {
    std::lock_guard lock(mu_);
    if (auto it = peer_channels_.find(node); it != peer_channels_.end()) return it->second;
  }
  COSMOS_ASSIGN_OR_RETURN(sec::PeerConnectStart start, options_.enclave->PeerConnect());
  std::vector<std::byte> hello(start.hello.size());
  std::memcpy(hello.data(), start.hello.data(), hello.size());
  // Shared with the callback: after a timeout it may still run later, from
  // another call's event loop on the same connection.
  struct Call {
    bool done = false;
    Status got;
    std::vector<std::byte> reply;
  };
  auto call = std::make_shared<Call>();
  COSMOS_RETURN_IF_ERROR(
      client::SendRawRequest(via, protocol::kPeerHelloRequestType, hello,
                             [call](const Status& s, std::span<const std::byte> response) {
                               call->done = true;
                               call->got = s;
                               call->reply.assign(response.begin(), response.end());
                             }));
  COSMOS_RETURN_IF_ERROR(client::WaitForRaw(via, [&] { return call->done; }));
  COSMOS_RETURN_IF_ERROR(call->got);
  const std::vector<std::byte>& reply = call->reply;
  if (reply.size() != sec::kPeerReplySize) {
    // The node's host answered with an error instead of its enclave's reply.
    Status refused = SingleResult(reply);
    return refused.ok() ? Status::Corruption("malformed peer reply") : refused;
  }
  COSMOS_ASSIGN_OR_RETURN(
      sec::PeerChannelId id,
      options_.enclave->PeerFinish(start.attempt,
                                   {reinterpret_cast<const uint8_t*>(reply.data()), reply.size()}));
  COSMOS_LOG_INFO("cluster: attested peer channel to node {}'s enclave opened", node);
  std::lock_guard lock(mu_);
  peer_channels_[node] = id;
  return id;
}

void ClusterNode::DropPeerChannel(const std::string& node) {
  sec::PeerChannelId id = 0;
  {
    std::lock_guard lock(mu_);
    auto it = peer_channels_.find(node);
    if (it == peer_channels_.end()) return;
    id = it->second;
    peer_channels_.erase(it);
  }
  (void)options_.enclave->ClosePeer(id);
}

bool ClusterNode::IsSecureRegion(std::string_view region) {
  std::lock_guard lock(mu_);
  if (secure_regions_.find(region) == secure_regions_.end()) return false;
  if (secure_resync_logged_.emplace(region).second) {
    COSMOS_LOG_WARN(
        "cluster: secure region '{}' has fewer replicas than its factor; resync of secure "
        "regions (enclave to enclave) is not built yet: it stays degraded until an operator "
        "recreates a replica",
        region);
  }
  return true;
}

Result<std::vector<std::byte>> ClusterNode::ExecutePrimarySealed(std::string_view region,
                                                                 uint64_t epoch,
                                                                 const SealedRunner& run) {
  if (options_.enclave == nullptr) {
    return Status::FailedPrecondition(
        "secure replicated regions need the node's enclave (cosmosd with platform keys)");
  }
  // One batch of a region at a time from check to last backup ack: the
  // backups apply batches in the order the primary ran them.
  std::lock_guard region_lock(RegionMutex(region));
  COSMOS_ASSIGN_OR_RETURN(cluster::RegionPlacement p, CheckPrimary(region, epoch));
  {
    std::lock_guard lock(mu_);
    secure_regions_.emplace(region);
  }
  auto& targets = t_secure_targets[this];
  std::vector<std::string> backups, failed;
  std::vector<Client*> clients;
  std::vector<sec::PeerChannelId> channels;
  for (const std::string& b : p.replicas) {
    if (b == options_.node_id) continue;
    Status s;
    auto address = AddressOf(b);
    s = address.status();
    auto& c = targets[b];
    if (s.ok() && c != nullptr && c->server() != *address) c.reset();  // moved
    if (s.ok() && c == nullptr) {
      ClientOptions co;
      co.server = *address;
      co.busy_poll = false;
      co.idle_spin_us = 0;
      co.mtu = 8972;
      co.heartbeat_interval_ms = static_cast<uint32_t>(options_.heartbeat_interval.count());
      co.missed_heartbeats = options_.missed_heartbeats;
      co.timeout_ms = 2000;
      auto connected = Client::Connect(co);
      s = connected.status();
      if (s.ok()) c = std::move(*connected);
    }
    if (s.ok()) {
      auto id = PeerChannelTo(b, *c);
      s = id.status();
      if (s.ok()) {
        backups.push_back(b);
        clients.push_back(c.get());
        channels.push_back(*id);
        continue;
      }
    }
    COSMOS_LOG_WARN(
        "cluster: region '{}' epoch {}: backup {} unreachable for secure forwarding: {}", region,
        epoch, b, s.ToString());
    c.reset();
    failed.push_back(b);
  }
  auto batch = run(channels);
  if (!batch.ok() && batch.status().code() == StatusCode::kNotFound && !channels.empty()) {
    // A channel the enclave no longer knows (evicted): nothing ran; reopen.
    for (size_t i = 0; i < backups.size(); ++i) {
      DropPeerChannel(backups[i]);
      auto id = PeerChannelTo(backups[i], *clients[i]);
      if (!id.ok()) return id.status();
      channels[i] = *id;
    }
    batch = run(channels);
  }
  COSMOS_RETURN_IF_ERROR(batch.status());

  Status fenced;
  if (!batch->replica_messages.empty()) {
    // Send to every backup first, then wait: the backups apply in parallel.
    struct Answer {
      bool done = false;
      Status status;
    };
    // Shared with the callbacks (see PeerChannelTo).
    auto shared_answers = std::make_shared<std::vector<Answer>>(backups.size());
    std::vector<Answer>& answers = *shared_answers;
    for (size_t i = 0; i < backups.size(); ++i) {
      const sec::Bytes& m = batch->replica_messages[i];
      Status sent = client::SendRawRequest(
          *clients[i], protocol::kReplicaBatchRequestType,
          {reinterpret_cast<const std::byte*>(m.data()), m.size()},
          [shared_answers, i](const Status& s, std::span<const std::byte> response) {
            Answer& a = (*shared_answers)[i];
            a.done = true;
            a.status = s.ok() ? SingleResult(response) : s;
          });
      if (!sent.ok()) answers[i] = {true, sent};
      (void)clients[i]->Poll(0);  // transmit now; the waits below run each loop in turn
    }
    for (size_t i = 0; i < backups.size(); ++i) {
      Status s = client::WaitForRaw(*clients[i], [&] { return answers[i].done; });
      if (s.ok()) s = answers[i].status;
      if (s.ok()) continue;
      COSMOS_LOG_WARN("cluster: region '{}' epoch {}: secure forwarding to {} failed: {}", region,
                      epoch, backups[i], s.ToString());
      if (s.code() == StatusCode::kAborted) {
        fenced = s;
        continue;
      }
      if (s.code() == StatusCode::kIntegrityViolation) {
        DropPeerChannel(backups[i]);  // e.g. the backup's enclave restarted
      }
      targets.erase(backups[i]);
      failed.push_back(backups[i]);
    }
  }
  if (!fenced.ok()) {
    // A backup knows a newer configuration: this node must not acknowledge.
    return Status::Aborted("fenced: " + fenced.message());
  }
  for (const std::string& b : failed) RemoveReplica(region, b, epoch);
  if (!failed.empty()) {
    // Acknowledge only if the new configuration holds exactly this node and
    // the backups that did apply the batch; otherwise the client retries.
    auto now = PlacementFor(region, epoch + 1);
    bool covered =
        now.ok() && now->primary == options_.node_id && now->epoch == epoch + failed.size();
    for (const std::string& f : failed) covered = covered && now.ok() && !Has(now->replicas, f);
    if (!covered) {
      return Status::Unavailable("region '" + std::string(region) + "': backup " + failed.front() +
                                 " failed; retry on the new epoch");
    }
  }
  std::vector<std::byte> out(batch->response.size());
  if (!out.empty()) std::memcpy(out.data(), batch->response.data(), out.size());
  return out;
}

}  // namespace cosmos::replication
