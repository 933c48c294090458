# Operator behaviour of the built binaries (issue 17): --version everywhere,
# exit code 2 for usage errors, SIGHUP reopens logs and reloads settings.
if(TARGET cosmosd AND TARGET cosmos-kv AND TARGET cosmos)
  cosmos_integration_test(ops_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/ops_test.cc
    DEPS cosmos::common)
  add_dependencies(ops_test cosmosd cosmos-kv cosmos)
  if(TARGET remote_log AND TARGET rpc_echo)
    add_dependencies(ops_test remote_log rpc_echo)
    target_compile_definitions(ops_test PRIVATE COSMOS_HAVE_EXAMPLES=1)
  endif()
endif()

# cosmosd --metrics-listen: a Prometheus scrape shows what a client did;
# bad or taken addresses stop the start. Needs prometheus-cpp (without it the
# flag is refused, which metrics_http_test checks).
if(TARGET cosmosd AND TARGET cosmos_client AND TARGET prometheus-cpp::pull)
  cosmos_integration_test(metrics_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/metrics_test.cc
    DEPS cosmos::client cosmos::common)
  add_dependencies(metrics_test cosmosd)
endif()
