# rpc fuzz targets (packet parser; endpoint receive path via the in-memory transport).
if(TARGET cosmos_rpc)
  cosmos_fuzz_target(rpc_packet_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpc_packet_fuzz.cc
                     DEPS cosmos::rpc)
  cosmos_fuzz_target(rpc_endpoint_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpc_endpoint_fuzz.cc
                     DEPS cosmos::rpc)
endif()
