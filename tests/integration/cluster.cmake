# cluster control-plane tests against a real etcd (etcd-server) on loopback.
# SERIAL: each test starts its own etcd; running them side by side only
# competes for the two cores.
if(TARGET cosmos_cluster)
  cosmos_integration_test(cluster_etcd_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_etcd_test.cc
                          DEPS cosmos::cluster TIMEOUT 120 SERIAL)
endif()
