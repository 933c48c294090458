// Scrape-time conversion of the server's counters into metric families.
#include "server/server_metrics.h"

#include <string>

#include "cosmos/status.h"
#include "protocol/rpm_protocol.h"
#include "server/server.h"

namespace cosmos::server {

void AppendServerMetrics(const Server& server, std::vector<MetricFamily>* out,
                         std::chrono::milliseconds rpc_timeout) {
  const ServerMetrics& m = server.metrics();
  const ServerStats stats = server.stats();

  MetricFamily& ops = AddMetricFamily(out, "cosmos_ops_total",
                                      "RPM ops executed by the node, by opcode (failed ops "
                                      "included; cosmos_op_errors_total counts those).",
                                      MetricType::kCounter);
  for (int b = 0; b < 256; ++b) {
    if (!protocol::IsKnownOpcode(static_cast<uint8_t>(b))) continue;
    AddMetricPoint(
        ops, static_cast<double>(m.ops[b].value()),
        {{"opcode", std::string(protocol::OpcodeName(static_cast<protocol::Opcode>(b)))}});
  }
  MetricFamily& errors = AddMetricFamily(
      out, "cosmos_op_errors_total", "RPM ops that failed, by status code.", MetricType::kCounter);
  for (int c = 1; c < static_cast<int>(m.errors.size()); ++c) {
    const std::string_view name = StatusCodeName(static_cast<StatusCode>(c));
    if (name == "unknown" || name == "would_block") continue;
    AddMetricPoint(errors, static_cast<double>(m.errors[c].value()), {{"code", std::string(name)}});
  }
  auto counter = [&](const char* name, const char* help, uint64_t value) {
    AddMetricPoint(AddMetricFamily(out, name, help, MetricType::kCounter),
                   static_cast<double>(value));
  };
  counter("cosmos_batches_total", "RPM batches (requests) the node started.", stats.batches);
  counter("cosmos_written_bytes_total", "Payload bytes of WRITE ops executed.",
          stats.bytes_written);
  counter("cosmos_read_bytes_total", "Payload bytes returned by successful READ ops.",
          m.bytes_read.value());
  counter("cosmos_deferred_batches_total",
          "Batches moved off a worker to a flusher, secure flusher or replication thread.",
          stats.deferred_batches);
  counter("cosmos_rejected_batches_total", "Batches refused as unparseable.",
          stats.rejected_batches);
  counter("cosmos_lost_responses_total",
          "Answers that could not be sent because the session had ended.", stats.lost_responses);
  counter("cosmos_qos_delayed_batches_total", "Batches that waited for QoS tokens.",
          stats.qos_delayed);
  counter("cosmos_secure_counter_wait_deferrals_total",
          "Secure-region ops moved to a secure flusher because they would wait for the trusted "
          "counter.",
          m.counter_wait_deferrals.value());
  AddMetricHistogram(
      AddMetricFamily(out, "cosmos_flush_duration_seconds",
                      "Execution time of FLUSH ops on the node (sync, or secure commit).",
                      MetricType::kHistogram),
      m.flush_duration);
  AddMetricHistogram(AddMetricFamily(out, "cosmos_write_flush_batch_duration_seconds",
                                     "Batches holding a WRITE and a FLUSH: from the worker "
                                     "starting them to their answer (replication included).",
                                     MetricType::kHistogram),
                     m.write_flush_duration);

  const ServerRpcSnapshot rpc = server.RpcSnapshot(rpc_timeout);
  AddMetricPoint(AddMetricFamily(out, "cosmos_rpc_workers_reporting",
                                 "Workers whose RPC counters this scrape includes (the others "
                                 "did not answer in time).",
                                 MetricType::kGauge),
                 rpc.workers_answered);
  AddMetricPoint(AddMetricFamily(out, "cosmos_rpc_sessions", "RPC sessions open on the workers.",
                                 MetricType::kGauge),
                 static_cast<double>(rpc.sessions));
  counter("cosmos_rpc_sessions_connected_total", "RPC sessions established.",
          rpc.sessions_connected);
  counter("cosmos_rpc_sessions_failed_total",
          "RPC sessions ended by failure detection (peer silent or reset).", rpc.sessions_failed);
  counter("cosmos_rpc_connects_refused_total", "Connect requests refused.", rpc.connects_refused);
  counter("cosmos_rpc_retransmissions_total", "Packets re-sent after a retransmission timeout.",
          rpc.retransmissions);
  counter("cosmos_rpc_timeouts_total", "Retransmission timeouts.", rpc.timeouts);
  counter("cosmos_rpc_packets_sent_total", "UDP datagrams sent.", rpc.packets_sent);
  counter("cosmos_rpc_packets_received_total", "UDP datagrams received.", rpc.packets_received);
  counter("cosmos_rpc_sent_bytes_total", "UDP payload bytes sent.", rpc.bytes_sent);
  counter("cosmos_rpc_received_bytes_total", "UDP payload bytes received.", rpc.bytes_received);
  counter("cosmos_rpc_dropped_packets_total",
          "Datagrams dropped as truncated, malformed, of an unknown session or out of window.",
          rpc.dropped_packets);
  counter("cosmos_rpc_auth_failures_total", "Datagrams a session's protector rejected.",
          rpc.auth_failures);
}

}  // namespace cosmos::server
