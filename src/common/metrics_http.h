// MetricsHttpServer: serves a metrics snapshot in the Prometheus text format
// at http://HOST:PORT/metrics (cosmosd --metrics-listen). Neutral header: the
// backend (prometheus-cpp's Exposer over civetweb, or none when the build
// lacks it) is a leaf file.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "common/metrics.h"
#include "cosmos/result.h"

namespace cosmos {

// Fills `out` with the current values; called on an HTTP thread once per
// scrape, possibly concurrently with itself (two scrapers).
using MetricsCollector = std::function<void(std::vector<MetricFamily>* out)>;

// Thread-safety: construction and destruction on one thread; scrapes run on
// the server's own (blocking, idle-sleeping) threads.
class MetricsHttpServer {
 public:
  // Starts listening on `address` (port 0: an ephemeral port, see port()).
  // Errors: IoError when the address cannot be bound; FailedPrecondition
  // when this build has no metrics exporter (built without prometheus-cpp).
  // `collect` must stay valid until the server is destroyed.
  static Result<std::unique_ptr<MetricsHttpServer>> Start(const MetricsAddress& address,
                                                          MetricsCollector collect);
  // Stops listening; waits for a scrape in progress.
  virtual ~MetricsHttpServer() = default;
  // The bound TCP port.
  virtual uint16_t port() const = 0;
};

}  // namespace cosmos
