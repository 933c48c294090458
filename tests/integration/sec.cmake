# Security wiring: the adapters between sec and the RPC / pmem layers
# (src/server/secure_channel_adapter, pmem_untrusted_store, src/client/
# secure_session; tests beside them), and cosmosd in secure mode end to end.
if(TARGET cosmos_server AND TARGET cosmos_client)
  cosmos_unit_test(sec_wire_test
    SOURCES
      ${CMAKE_SOURCE_DIR}/src/server/secure_channel_adapter_test.cc
      ${CMAKE_SOURCE_DIR}/src/server/pmem_untrusted_store_test.cc
      ${CMAKE_SOURCE_DIR}/src/server/secure_flush_dispatch_test.cc
      ${CMAKE_SOURCE_DIR}/src/server/user_key_receipt_test.cc
      ${CMAKE_SOURCE_DIR}/src/server/sealed_batch_host_test.cc
    DEPS cosmos::server cosmos::client cosmos::sec cosmos::rpc cosmos::pmem cosmos::common)

  cosmos_integration_test(sec_daemon_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/sec_daemon_test.cc
    DEPS cosmos::client cosmos::sec cosmos::pmem)
  add_dependencies(sec_daemon_test cosmosd)

  # The soundness attacks (issue 11) against a real cosmosd: authorization of
  # admin calls, host edits of the region table, colliding region ids.
  cosmos_integration_test(sec_tamper_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/sec_tamper_test.cc
    DEPS cosmos::client cosmos::sec cosmos::pmem)
  target_include_directories(sec_tamper_test PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  add_dependencies(sec_tamper_test cosmosd)

  # The untrusted host's region-table edits as a command (scripts/demo.sh).
  add_executable(pool_table_tamper ${CMAKE_SOURCE_DIR}/tests/tools/pool_table_tamper.cc)
  target_link_libraries(pool_table_tamper PRIVATE cosmos::pmem)
  target_include_directories(pool_table_tamper PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  set_target_properties(pool_table_tamper PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                        ${CMAKE_BINARY_DIR}/tests/tools)

  # cosmosd secure-mode options (--require-secure, TOML keys) as a process.
  cosmos_integration_test(sec_options_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/sec_options_test.cc
    DEPS cosmos::client cosmos::sec)
  add_dependencies(sec_options_test cosmosd)

  # Secure regions under repeated SIGKILL (the rpm crash test's shape).
  cosmos_integration_test(sec_crash_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/sec_crash_test.cc
    DEPS cosmos::client cosmos::sec
    TIMEOUT 600)
  add_dependencies(sec_crash_test cosmosd)

  # Packet capture and man in the middle (UDP relay) of the secure channel.
  cosmos_integration_test(sec_capture_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/sec_capture_test.cc
    DEPS cosmos::client cosmos::sec)
  add_dependencies(sec_capture_test cosmosd)

  # Secure-region administration (grant, revoke, list access, rotate key) and
  # atomics on secure regions, through the client library.
  cosmos_integration_test(sec_access_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/sec_access_test.cc
    DEPS cosmos::client cosmos::sec)
  add_dependencies(sec_access_test cosmosd)
endif()
