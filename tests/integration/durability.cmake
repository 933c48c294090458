# Durability steps that cross layers: the directory fsync that makes a newly
# created or renamed file survive a crash (simulated trusted counter), and
# power-loss crash tests (the kv store's are in src/kv; the server's here).
cosmos_unit_test(dir_sync_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/dir_sync_test.cc
  DEPS cosmos::sec cosmos::common)

# Power loss under the memory node's flush paths: the server library over a
# pool on pmem's fault-injection twin, plain and secure regions driven by real
# clients, power lost at every persist point (src/server/server_power_loss_test.cc).
if(TARGET cosmos_server AND TARGET cosmos_client)
  cosmos_unit_test(server_power_loss_test
    SOURCES ${CMAKE_SOURCE_DIR}/src/server/server_power_loss_test.cc
    DEPS cosmos::server cosmos::client cosmos::sec cosmos::pmem cosmos::common)
endif()
