# cosmos-kv integration tests: the real cosmos-kv binary driven by redis-cli
# and by a minimal RESP client, including a SIGKILL crash test.
cosmos_integration_test(kv_cli_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_cli_test.cc
  DEPS cosmos::common)
add_dependencies(kv_cli_test cosmos-kv)
cosmos_integration_test(kv_crash_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_crash_test.cc
  DEPS cosmos::common Threads::Threads)
add_dependencies(kv_crash_test cosmos-kv)
# Differential test: the same command sequences against redis-server and
# cosmos-kv, replies compared (data types, WRONGTYPE, MULTI/EXEC/WATCH).
cosmos_integration_test(kv_redis_diff_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_redis_diff_test.cc
  DEPS cosmos::common)
add_dependencies(kv_redis_diff_test cosmos-kv)
# SIGKILL under MULTI/EXEC load touching every data type: no acknowledged
# EXEC lost, none half applied.
cosmos_integration_test(kv_types_crash_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_types_crash_test.cc
  DEPS cosmos::common Threads::Threads)
add_dependencies(kv_types_crash_test cosmos-kv)
# cosmos-kv on a region of a real cosmosd (secure and plain): redis-cli,
# restarts, no plaintext on the node, RESP errors on node loss, and a SIGKILL
# crash test that also kills cosmosd.
if(TARGET cosmos_sec)
  cosmos_integration_test(kv_remote_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_remote_test.cc
    DEPS cosmos::sec cosmos::common Threads::Threads)
  add_dependencies(kv_remote_test cosmos-kv cosmosd)
endif()
# Whole-process power loss: cosmos-kv (file and pool backends) on the FUSE
# power-cut file system, which drops everything unsynced at the cut.
if(TARGET cosmos-powercut-fs)
  cosmos_integration_test(kv_power_cut_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_power_cut_test.cc
    DEPS cosmos::common Threads::Threads)
  target_include_directories(kv_power_cut_test PRIVATE ${CMAKE_SOURCE_DIR}/tools/powercut_fs)
  add_dependencies(kv_power_cut_test cosmos-kv cosmos-powercut-fs)
endif()
# Differential test through a real client library: python3-redis drives a
# redis-server and cosmos-kv with the same calls (data types, expiry,
# pipelines, transactions, pub/sub, blocking pops). Debian's python3-redis
# is installed for /usr/bin/python3 (a pyenv or venv python3 earlier on PATH
# would not see it), so that one is preferred. Skips (77) without
# python3-redis or redis-server.
find_program(COSMOS_SYSTEM_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT COSMOS_SYSTEM_PYTHON3)
  find_program(COSMOS_SYSTEM_PYTHON3 python3)
endif()
if(COSMOS_SYSTEM_PYTHON3)
  add_test(NAME kv_pyredis_diff_test
    COMMAND ${COSMOS_SYSTEM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/kv_pyredis_diff_test.py
            $<TARGET_FILE:cosmos-kv>)
  set_tests_properties(kv_pyredis_diff_test PROPERTIES
    LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
# cosmos-kv --cluster on a replicated region: etcd + three cosmosd, SIGKILL
# of the primary / the backup under SET+INCR load, then of cosmos-kv itself;
# every acknowledged write is on the cluster. Skipped without etcd.
if(TARGET cosmos_replication AND TARGET cosmos_client AND TARGET cosmos_cluster)
  cosmos_integration_test(kv_cluster_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_cluster_test.cc
    DEPS cosmos::cluster cosmos::common Threads::Threads TIMEOUT 600 SERIAL)
  add_dependencies(kv_cluster_test cosmos-kv cosmosd)
endif()
