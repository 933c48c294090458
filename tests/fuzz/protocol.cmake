# RPM protocol fuzz targets (request/response/hello parsers; sealed-batch framing).
if(TARGET cosmos_protocol)
  cosmos_fuzz_target(protocol_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/protocol_fuzz.cc
                     DEPS cosmos::protocol CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/protocol_fuzz)
  cosmos_fuzz_target(sealed_batch_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/sealed_batch_fuzz.cc
                     DEPS cosmos::protocol)
endif()
