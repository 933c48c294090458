// ReplicationMetrics: what a cluster node counts about forwarding, failover
// and resync (cosmosd --metrics-listen; docs/operations.md "Metrics").
#pragma once

#include "common/metrics.h"

namespace cosmos::replication {

// Thread-safe: relaxed atomics, updated where the event happens.
struct ReplicationMetrics {
  MetricCounter forwarded_batches;  // batches a backup acknowledged (one per backup)
  MetricCounter forwarded_bytes;    // payload bytes of the ops in them (per backup)
  MetricCounter forward_failures;   // forwards to a backup that failed (not fenced)
  // A primary's batch from its first forward to the last backup's ack: what
  // replication adds to the client's latency (the replication lag).
  MetricHistogram forward_duration;
  MetricCounter replicas_removed;  // failed replicas removed by this node (etcd CAS)
  MetricCounter failovers;         // of those, removals that made a new primary
  MetricCounter resyncs_started, resyncs_completed, resyncs_failed;
  MetricCounter resync_bytes_copied;  // bytes a resync wrote to joining nodes
  MetricGauge resyncs_running;
};

}  // namespace cosmos::replication
