// Server: the memory-node service behind cosmosd. Worker threads (one RPC
// endpoint and UDP port each) execute RPM batches against the region table;
// batches that must wait for a page-cache sync, a secure-region commit (which
// may wait for the trusted counter) or an admin change move to flusher
// threads, served round-robin across sessions, and are answered later through
// the worker endpoint's Post queue.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cosmos/result.h"
#include "server/region_table.h"
#include "server/replication_hook.h"
#include "server/server_metrics.h"

namespace cosmos::server {

// QoS limits; 0 = unlimited. Per client = per session; per region = per
// region handle on each worker.
struct QosLimits {
  double client_bytes_per_sec = 0;
  double client_ops_per_sec = 0;
  double region_bytes_per_sec = 0;
  double region_ops_per_sec = 0;
  double burst_seconds = 0.05;  // bucket size = rate x this (at least one max message)
  bool enabled() const {
    return client_bytes_per_sec > 0 || client_ops_per_sec > 0 || region_bytes_per_sec > 0 ||
           region_ops_per_sec > 0;
  }
};

// One line for logs: "off (unlimited)" or each limit with its unit.
std::string DescribeQos(const QosLimits& limits);

struct ServerOptions {
  std::string listen_ip = "0.0.0.0";
  uint16_t port = 7410;   // worker i listens on port + i; 0 = ephemeral ports
  uint32_t workers = 2;   // RPC endpoints (threads)
  uint32_t flushers = 2;  // threads that run batches waiting for a sync
  // Threads that run secure-region commits (with secure_engine only; 1..256).
  // A strict-mode flush holds one for the trusted counter's stabilisation
  // delay (sleeping); flushes of a region that wait together share one
  // counter value, so this bounds how many flushes one counter round serves.
  uint32_t secure_flushers = 16;
  // Largest UDP payload per datagram the workers use; each session runs at
  // the smaller of this, the client's and the path MTU - 28 (never IP
  // fragments). Raise it (up to 8972) on jumbo-frame networks or loopback.
  size_t mtu = 1472;
  bool busy_poll = false;       // workers spin instead of blocking when idle
  uint32_t idle_spin_us = 100;  // adaptive mode: spin this long without traffic before blocking
  QosLimits qos;
  size_t max_read_bytes = 4u << 20;  // largest READ (and response) served
  // Secure connections and regions (not owned; must outlive the server).
  // nullptr: a plain node that refuses both.
  SecureRegionEngine* secure_engine = nullptr;
  // Refuse plain (unprotected) connects with PermissionDenied; only secure
  // connects are accepted. REQUIRES: secure_engine (else Start fails).
  bool require_secure = false;
  // Replicated regions (cosmosd --cluster; not owned, must outlive the
  // server). nullptr: a single node; batches carrying an EPOCH op are refused.
  ReplicationHook* replication = nullptr;
  // Threads that run a primary's batches on replicated regions (each blocks
  // until the backups acknowledged); 1..64, with `replication` only.
  uint32_t replication_threads = 4;
};

struct ServerStats {
  uint64_t batches = 0;
  uint64_t ops = 0;
  uint64_t bytes_written = 0;
  uint64_t deferred_batches = 0;
  uint64_t rejected_batches = 0;  // unparseable
  uint64_t lost_responses = 0;    // session ended before a deferred answer
  uint64_t qos_delayed = 0;       // batches that waited for tokens
};

// Thread-safety: Stop, stats and accessors may be called from any thread.
class Server {
 public:
  // Starts workers and flushers serving `pools` (the first is the default
  // pool). Errors: InvalidArgument (options, no pools), IoError (bind).
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                               std::vector<ServedPool> pools);
  // Stops (see Stop) and releases the pools.
  ~Server();

  // Clean shutdown: new batches are refused with Unavailable, queued and
  // running deferred batches (flushes) finish and are answered, then the
  // endpoints close. Idempotent.
  void Stop();

  // Replaces the QoS limits of every worker (cosmosd's SIGHUP). Each worker
  // applies them on its own thread with fresh token buckets (so a session
  // may burst once right after the change); batches already waiting for
  // tokens are served as the new limits allow (at once when lifted).
  // Unavailable after Stop. Thread-safe.
  [[nodiscard]] Status SetQosLimits(const QosLimits& limits);

  // UDP port of worker 0 (the one clients connect to) and of every worker.
  uint16_t port() const;
  std::vector<uint16_t> worker_ports() const;
  RegionTable& table();
  ServerStats stats() const;
  // The data-path metrics (server_metrics.h); valid while the server exists.
  const ServerMetrics& metrics() const;
  // Every worker's RPC counters, summed: each worker copies its own on its
  // thread (a posted task); waits up to `timeout` and leaves out workers that
  // did not answer (workers_answered says how many did). Empty after Stop.
  ServerRpcSnapshot RpcSnapshot(std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cosmos::server
