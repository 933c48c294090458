# Fuzz targets of the security layer (parsers of untrusted bytes).
foreach(target sec_handshake_fuzz sec_quote_fuzz sec_sealed_fuzz sec_root_record_fuzz
               sec_channel_fuzz sec_user_key_fuzz)
  set(_corpus "")
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/corpus/${target})
    set(_corpus CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/${target})
  endif()
  cosmos_fuzz_target(${target} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${target}.cc
                     DEPS cosmos::sec ${_corpus})
endforeach()
