# cosmos-kv fuzz targets: RESP parser + command dispatch, and log recovery.
if(TARGET cosmos_kv)
  cosmos_fuzz_target(kv_resp_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_resp_fuzz.cc
                     DEPS cosmos::kv CORPUS ${CMAKE_CURRENT_LIST_DIR}/kv_corpus/resp)
  cosmos_fuzz_target(kv_log_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_log_fuzz.cc
                     DEPS cosmos::kv)
  # Typed-value decoding (hash, list, set, sorted set records read from the log).
  cosmos_fuzz_target(kv_value_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_value_fuzz.cc
                     DEPS cosmos::kv CORPUS ${CMAKE_CURRENT_LIST_DIR}/kv_corpus/value)
endif()
