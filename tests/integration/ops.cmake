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
