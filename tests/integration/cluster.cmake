# cluster control-plane tests against a real etcd (etcd-server) on loopback.
# SERIAL: each test starts its own etcd; running them side by side only
# competes for the two cores.
if(TARGET cosmos_cluster)
  cosmos_integration_test(cluster_etcd_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_etcd_test.cc
                          DEPS cosmos::cluster TIMEOUT 120 SERIAL)
endif()

# Replicated regions end to end: etcd + three cosmosd + the cluster client
# (SIGKILL of the primary, fencing of a stale epoch).
if(TARGET cosmos_replication AND TARGET cosmos_client)
  cosmos_integration_test(cluster_replication_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_replication_test.cc
    DEPS cosmos::client cosmos::cluster nlohmann_json::nlohmann_json TIMEOUT 300 SERIAL)
  add_dependencies(cluster_replication_test cosmosd cosmos)
endif()

# Secure replicated regions: etcd + three secure cosmosd (own platform keys,
# simulated enclaves, attested peer channels) + the secure cluster client.
if(TARGET cosmos_replication AND TARGET cosmos_client)
  cosmos_integration_test(cluster_secure_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_secure_test.cc
    DEPS cosmos::client cosmos::cluster cosmos::sec TIMEOUT 300 SERIAL)
  add_dependencies(cluster_secure_test cosmosd cosmos cosmos-kv)
endif()

# Replicated regions under faults: a node on an empty pool rebuilt by resync,
# etcd SIGKILLed and restarted under load, the SIGKILL soak
# (COSMOS_SOAK_KILLS, default 100: ~2.3 min at load 4, ~4 min at 12-17), a
# network-partitioned old primary (root: a network namespace; skipped
# otherwise); `cosmos cluster add-replica|drain`.
if(TARGET cosmos_replication AND TARGET cosmos_client)
  cosmos_integration_test(cluster_fault_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_fault_test.cc
    DEPS cosmos::client cosmos::cluster nlohmann_json::nlohmann_json TIMEOUT 900 SERIAL)
  add_dependencies(cluster_fault_test cosmosd cosmos)
endif()

# cosmosd --metrics-listen on cluster nodes: forwarded batches, failover and
# resync counted in the Prometheus scrape (etcd + two cosmosd).
if(TARGET cosmos_replication AND TARGET cosmos_client AND TARGET prometheus-cpp::pull)
  cosmos_integration_test(cluster_metrics_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_metrics_test.cc
    DEPS cosmos::client cosmos::cluster TIMEOUT 300 SERIAL)
  add_dependencies(cluster_metrics_test cosmosd)
endif()
