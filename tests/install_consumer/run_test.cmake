# ctest driver (cmake -P): installs the "dev" component of the build at BIN
# into a temp prefix, configures and builds the consumer project in SRC
# against it, and runs it against the built cosmosd (COSMOSD). WORK is a
# scratch directory, emptied first.
foreach(v BIN SRC WORK COSMOSD GENERATOR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_test.cmake needs -D${v}=...")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
  message(STATUS "ok: ${ARGN}")
endfunction()

step(${CMAKE_COMMAND} --install ${BIN} --component dev --prefix ${WORK}/prefix)
file(GLOB_RECURSE _targets ${WORK}/prefix/*cosmosTargets.cmake)
if(NOT _targets)
  message(FATAL_ERROR "no cosmosTargets.cmake installed: find_package(cosmos) would define nothing")
endif()
step(${CMAKE_COMMAND} -S ${SRC} -B ${WORK}/build -G ${GENERATOR}
     -DCMAKE_PREFIX_PATH=${WORK}/prefix -DCMAKE_BUILD_TYPE=Release)
step(${CMAKE_COMMAND} --build ${WORK}/build)
step(${WORK}/build/consumer ${COSMOSD} ${WORK})
file(REMOVE_RECURSE ${WORK})
