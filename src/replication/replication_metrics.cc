// Scrape-time conversion of a cluster node's replication metrics.
#include "replication/cluster_node.h"

namespace cosmos::replication {

void ClusterNode::AppendMetrics(std::vector<MetricFamily>* out) const {
  const ReplicationMetrics& m = metrics_;
  auto counter = [&](const char* name, const char* help, const MetricCounter& c) {
    AddMetricPoint(AddMetricFamily(out, name, help, MetricType::kCounter),
                   static_cast<double>(c.value()));
  };
  counter("cosmos_replication_forwarded_batches_total",
          "Batches of replicated regions this primary forwarded and a backup acknowledged (one "
          "per backup).",
          m.forwarded_batches);
  counter("cosmos_replication_forwarded_bytes_total",
          "Op payload bytes in the forwarded batches (one count per backup).", m.forwarded_bytes);
  counter("cosmos_replication_forward_failures_total",
          "Forwards to a backup that failed (the backup is then removed).", m.forward_failures);
  AddMetricHistogram(AddMetricFamily(out, "cosmos_replication_forward_duration_seconds",
                                     "A primary's batch from its first forward to the last "
                                     "backup's acknowledgement (the replication lag).",
                                     MetricType::kHistogram),
                     m.forward_duration);
  counter("cosmos_replication_replicas_removed_total",
          "Failed replicas this node removed from a region (etcd compare-and-swap).",
          m.replicas_removed);
  counter("cosmos_replication_failovers_total",
          "Replica removals by this node that promoted a new primary.", m.failovers);
  counter("cosmos_replication_resyncs_started_total", "Resyncs of a joining node started here.",
          m.resyncs_started);
  counter("cosmos_replication_resyncs_completed_total",
          "Resyncs that added the joining node to its region.", m.resyncs_completed);
  counter("cosmos_replication_resyncs_failed_total", "Resyncs that stopped with an error.",
          m.resyncs_failed);
  counter("cosmos_replication_resync_copied_bytes_total",
          "Bytes resyncs copied to joining nodes (blocks whose digest differed).",
          m.resync_bytes_copied);
  AddMetricPoint(AddMetricFamily(out, "cosmos_replication_resyncs_running",
                                 "Resyncs in progress on this node.", MetricType::kGauge),
                 static_cast<double>(m.resyncs_running.value()));
}

}  // namespace cosmos::replication
