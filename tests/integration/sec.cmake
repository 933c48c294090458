# Security wiring: the adapters between sec and the RPC / pmem layers
# (src/server/secure_channel_adapter, src/server/pmem_untrusted_store,
# src/client/secure_session) with their tests beside them.
cosmos_unit_test(sec_wire_test
  SOURCES
    ${CMAKE_SOURCE_DIR}/src/server/secure_channel_adapter.cc
    ${CMAKE_SOURCE_DIR}/src/server/pmem_untrusted_store.cc
    ${CMAKE_SOURCE_DIR}/src/client/secure_session.cc
    ${CMAKE_SOURCE_DIR}/src/server/secure_channel_adapter_test.cc
    ${CMAKE_SOURCE_DIR}/src/server/pmem_untrusted_store_test.cc
  DEPS cosmos::sec cosmos::rpc cosmos::pmem cosmos::common)
