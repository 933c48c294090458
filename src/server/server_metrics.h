// ServerMetrics: the memory node's data-path counters beyond ServerStats
// (ops by opcode, errors by status code, bytes read, flush latency), kept
// with relaxed atomics on the hot path, and AppendServerMetrics, which turns
// them, ServerStats and the workers' RPC counters into metric families at
// scrape time (cosmosd --metrics-listen; docs/operations.md "Metrics").
#pragma once

#include <array>
#include <chrono>
#include <vector>

#include "common/metrics.h"

namespace cosmos::server {

class Server;

// Thread-safe: every member is updated with relaxed atomics by the thread
// that executes the op and read at scrape time.
struct ServerMetrics {
  std::array<MetricCounter, 256> ops;    // ops executed, by opcode byte
  std::array<MetricCounter, 32> errors;  // failed ops, by StatusCode
  MetricCounter bytes_read;              // payload bytes of successful reads
  // A FLUSH op's execution on the node (the page-cache sync, the pmem flush
  // and drain, or the secure commit with its trusted-counter wait).
  MetricHistogram flush_duration;
  // A plain batch holding at least one WRITE and one FLUSH (the client's
  // write+flush): from its worker starting it (after any QoS wait) to its
  // answer being queued, deferral to a flusher or replication included.
  MetricHistogram write_flush_duration;
  // Secure-region ops a worker moved to a secure flusher because they would
  // have waited for the trusted counter.
  MetricCounter counter_wait_deferrals;
};

// The RPC endpoints' counters, summed over the workers (a snapshot each
// worker took on its own thread).
struct ServerRpcSnapshot {
  uint32_t workers_answered = 0;  // workers that answered within the timeout
  uint64_t sessions = 0;          // open now
  uint64_t sessions_connected = 0, sessions_failed = 0, connects_refused = 0;
  uint64_t packets_sent = 0, packets_received = 0, bytes_sent = 0, bytes_received = 0;
  uint64_t retransmissions = 0, timeouts = 0;
  uint64_t dropped_packets = 0;  // truncated, bad, wrong session/version, out of window
  uint64_t auth_failures = 0;
};

// Appends the families of `server` (names in docs/operations.md "Metrics").
// Waits up to `rpc_timeout` for the workers' RPC counters (each worker copies
// its own on its thread); a worker that does not answer in time is left out
// and cosmos_rpc_workers_reporting says so.
void AppendServerMetrics(const Server& server, std::vector<MetricFamily>* out,
                         std::chrono::milliseconds rpc_timeout = std::chrono::milliseconds(1000));

}  // namespace cosmos::server
