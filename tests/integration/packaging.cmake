# Packaging (issue 17): the installed systemd units pass systemd-analyze
# verify, and CPack builds a Debian package holding the binaries with their
# shared-library dependencies. Both skip (status 77) without the tools.
if(TARGET cosmosd AND TARGET cosmos-kv AND TARGET cosmos)
  add_test(NAME systemd_units
    COMMAND ${CMAKE_COMMAND} -DBIN=${CMAKE_BINARY_DIR} -DWORK=${CMAKE_BINARY_DIR}/systemd_units_work
            -P ${CMAKE_SOURCE_DIR}/tests/packaging/systemd_units_test.cmake)
  set_tests_properties(systemd_units PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 300)
  add_test(NAME deb_package
    COMMAND ${CMAKE_COMMAND} -DBIN=${CMAKE_BINARY_DIR} -DWORK=${CMAKE_BINARY_DIR}/deb_package_work
            -DCMAKE_CPACK_COMMAND=${CMAKE_CPACK_COMMAND}
            -P ${CMAKE_SOURCE_DIR}/tests/packaging/deb_package_test.cmake)
  set_tests_properties(deb_package PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 600
                       RESOURCE_LOCK cosmos_install)
  set_tests_properties(systemd_units PROPERTIES RESOURCE_LOCK cosmos_install)
endif()
