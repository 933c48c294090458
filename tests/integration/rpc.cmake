# rpc integration tests: real UDP on loopback, garbage spray, restart, the
# rpc_echo example as processes, netns + tc netem loss (root only).
if(TARGET cosmos_rpc)
  cosmos_integration_test(rpc_udp_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpc_udp_test.cc
                          DEPS cosmos::rpc SERIAL)
  if(TARGET rpc_echo AND TARGET rpc_udp_test)
    add_dependencies(rpc_udp_test rpc_echo)
  endif()
endif()

# Issue 15: a captured secure connect replayed with fresh session fields
# against a real cosmosd (secure mode) while real secure clients work.
if(TARGET cosmos_client AND TARGET cosmos_sec AND TARGET cosmosd)
  cosmos_integration_test(rpc_secure_flood_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpc_secure_flood_test.cc
    DEPS cosmos::client cosmos::sec cosmos::rpc)
  add_dependencies(rpc_secure_flood_test cosmosd)
endif()

# Issue 15: cosmosd --listen :: (dual stack) with IPv6 and IPv4 clients.
if(TARGET cosmos_client AND TARGET cosmos_sec AND TARGET cosmosd)
  cosmos_integration_test(rpc_ipv6_daemon_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpc_ipv6_daemon_test.cc
    DEPS cosmos::client cosmos::sec)
  add_dependencies(rpc_ipv6_daemon_test cosmosd)
endif()
