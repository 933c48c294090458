# rpc integration tests: real UDP on loopback, garbage spray, restart, the
# rpc_echo example as processes, netns + tc netem loss (root only).
if(TARGET cosmos_rpc)
  cosmos_integration_test(rpc_udp_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpc_udp_test.cc
                          DEPS cosmos::rpc SERIAL)
  if(TARGET rpc_echo AND TARGET rpc_udp_test)
    add_dependencies(rpc_udp_test rpc_echo)
  endif()
endif()
