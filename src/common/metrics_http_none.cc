// MetricsHttpServer backend of a build without prometheus-cpp: refuses to
// start, so `cosmosd --metrics-listen` fails with a clear error.
#include "common/metrics_http.h"

namespace cosmos {

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(const MetricsAddress& address,
                                                                    MetricsCollector) {
  return Status::FailedPrecondition("metrics: cannot listen on " + address.ToString() +
                                    ": this build has no metrics exporter (prometheus-cpp was "
                                    "not found at configure time; scripts/setup.sh installs it)");
}

}  // namespace cosmos
