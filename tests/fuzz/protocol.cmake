# RPM protocol fuzz target (request/response/hello parsers).
if(TARGET cosmos_protocol)
  cosmos_fuzz_target(protocol_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/protocol_fuzz.cc
                     DEPS cosmos::protocol CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/protocol_fuzz)
endif()
