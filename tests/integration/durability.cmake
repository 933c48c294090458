# Durability steps that cross layers: the directory fsync that makes a newly
# created or renamed file survive a crash (simulated trusted counter), and
# power-loss crash tests of the kv store over every backend.
cosmos_unit_test(dir_sync_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/dir_sync_test.cc
  DEPS cosmos::sec cosmos::common)
