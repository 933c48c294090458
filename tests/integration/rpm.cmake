# Remote persistent memory (issue 4): cosmosd as a process, bad input, crashes.
if(TARGET cosmos_server AND TARGET cosmos_client)
  cosmos_integration_test(rpm_daemon_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpm_daemon_test.cc
    DEPS cosmos::client cosmos::protocol cosmos::rpc)
  add_dependencies(rpm_daemon_test cosmosd)
  if(TARGET remote_log_lib)
    cosmos_integration_test(rpm_crash_test
      SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpm_crash_test.cc
      DEPS cosmos::client remote_log_lib
      TIMEOUT 600)
    add_dependencies(rpm_crash_test cosmosd)
  endif()
endif()

# The admin CLI's remote verbs against a real cosmosd (plain and secure).
if(TARGET cosmos_server AND TARGET cosmos)
  cosmos_integration_test(cli_remote_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_remote_test.cc
    DEPS cosmos::common nlohmann_json::nlohmann_json)
  add_dependencies(cli_remote_test cosmosd cosmos)
endif()

# Whole-process power loss: cosmosd's pool on the FUSE power-cut file system
# (plain and secure regions), power cut after 1, 4, 32 and 160 acknowledged
# flushes.
if(TARGET cosmos_server AND TARGET cosmos_client AND TARGET cosmos_sec
   AND TARGET cosmos-powercut-fs)
  cosmos_integration_test(rpm_power_cut_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/rpm_power_cut_test.cc
    DEPS cosmos::client cosmos::sec)
  target_include_directories(rpm_power_cut_test PRIVATE ${CMAKE_SOURCE_DIR}/tools/powercut_fs)
  add_dependencies(rpm_power_cut_test cosmosd cosmos-powercut-fs)
endif()
