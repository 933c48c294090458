# cluster fuzz target: etcd gateway replies and cluster records (untrusted).
if(TARGET cosmos_cluster)
  cosmos_fuzz_target(cluster_etcd_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_etcd_fuzz.cc
                     DEPS cosmos::cluster CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/cluster_etcd_fuzz)
endif()
