# find_package(cosmos) from an install tree (issue 17): install the "dev"
# component into a temp prefix, build tests/install_consumer against it and
# run it against the built cosmosd.
if(TARGET cosmos_client AND TARGET cosmosd)
  add_test(NAME install_consumer
    COMMAND ${CMAKE_COMMAND} -DBIN=${CMAKE_BINARY_DIR}
            -DSRC=${CMAKE_SOURCE_DIR}/tests/install_consumer
            -DWORK=${CMAKE_BINARY_DIR}/install_consumer_work
            -DCOSMOSD=$<TARGET_FILE:cosmosd> "-DGENERATOR=${CMAKE_GENERATOR}"
            -P ${CMAKE_SOURCE_DIR}/tests/install_consumer/run_test.cmake)
  set_tests_properties(install_consumer PROPERTIES LABELS integration TIMEOUT 300)
endif()
