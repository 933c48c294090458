# Helper functions every layer uses to declare libraries, tests and fuzzers.

if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # -Werror for the primary (g++) build; clang builds (sanitizers, fuzzing)
  # keep warnings visible without failing on clang-only diagnostics.
  set(COSMOS_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)
  # g++ 12 at -O3 (Release, used by scripts/bench.sh) reports false
  # -Wstringop-overflow / -Wrestrict / -Warray-bounds on inlined
  # std::vector growth (GCC bug 105329 family). They stay visible as
  # warnings there; the -O2 test build keeps them as errors.
  if(CMAKE_BUILD_TYPE STREQUAL "Release")
    list(APPEND COSMOS_WARNINGS -Wno-error=stringop-overflow -Wno-error=restrict
         -Wno-error=array-bounds)
  endif()
else()
  set(COSMOS_WARNINGS -Wall -Wextra -Wno-missing-field-initializers -Wno-unused-parameter)
endif()

if(COSMOS_SANITIZE)
  add_compile_options(-fsanitize=${COSMOS_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${COSMOS_SANITIZE})
endif()

# cosmos_library(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Declares layer library cosmos_<NAME>; include root is src/ and include/.
function(cosmos_library name)
  cmake_parse_arguments(A "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(cosmos_${name} STATIC ${A_SOURCES})
  add_library(cosmos::${name} ALIAS cosmos_${name})
  target_include_directories(cosmos_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/src>
    $<INSTALL_INTERFACE:include>)
  target_compile_options(cosmos_${name} PRIVATE ${COSMOS_WARNINGS})
  target_link_libraries(cosmos_${name} PUBLIC ${A_PUBLIC_DEPS} PRIVATE ${A_PRIVATE_DEPS})
endfunction()

# cosmos_unit_test(NAME SOURCES ... DEPS ... [TIMEOUT s] [SERIAL])
# A GoogleTest binary beside the code; registered with ctest under label
# "unit" and built by the `unit_tests` aggregate target. (No extra labels:
# gtest_discover_tests cannot pass a multi-value LABELS property; select
# tests by name with ctest -R instead.)
function(cosmos_unit_test name)
  if(NOT COSMOS_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "SERIAL" "TIMEOUT" "SOURCES;DEPS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_compile_options(${name} PRIVATE ${COSMOS_WARNINGS})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  set(props LABELS unit TIMEOUT ${A_TIMEOUT})
  if(A_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120 PROPERTIES ${props})
  set_property(GLOBAL APPEND PROPERTY COSMOS_UNIT_TESTS ${name})
endfunction()

# cosmos_integration_test(NAME SOURCES ... DEPS ... [TIMEOUT s] [SERIAL])
# A GoogleTest binary that starts real processes; label "integration".
function(cosmos_integration_test name)
  if(NOT COSMOS_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "SERIAL" "TIMEOUT" "SOURCES;DEPS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 600)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_compile_options(${name} PRIVATE ${COSMOS_WARNINGS})
  target_compile_definitions(${name} PRIVATE COSMOS_BINARY_DIR="${CMAKE_BINARY_DIR}")
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  set(props LABELS integration TIMEOUT ${A_TIMEOUT})
  if(A_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120 PROPERTIES ${props})
endfunction()

# cosmos_fuzz_target(NAME SOURCES ... DEPS ... [SECONDS n] [CORPUS dir])
# With COSMOS_FUZZ=ON (clang): a libFuzzer binary run by ctest for a bounded
# time (label "fuzz"). Otherwise: the same entry point linked with a replay
# driver (tests/fuzz/replay_main.cc) that runs the seed corpus plus a fixed
# number of deterministic random inputs, so g++ builds exercise it too.
function(cosmos_fuzz_target name)
  if(NOT COSMOS_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "" "SECONDS;CORPUS" "SOURCES;DEPS" ${ARGN})
  if(NOT A_SECONDS)
    set(A_SECONDS 20)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS})
  set(corpus_args "")
  if(A_CORPUS)
    set(corpus_args ${A_CORPUS})
  endif()
  if(COSMOS_FUZZ)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set(workdir ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
    file(MAKE_DIRECTORY ${workdir})
    add_test(NAME ${name} COMMAND ${name} -max_total_time=${A_SECONDS} -rss_limit_mb=2048
             -print_final_stats=1 ${workdir} ${corpus_args})
  else()
    target_sources(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.cc)
    add_test(NAME ${name} COMMAND ${name} --iterations=20000 ${corpus_args})
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "fuzz" TIMEOUT 600)
  set_property(GLOBAL APPEND PROPERTY COSMOS_FUZZ_TARGETS ${name})
endfunction()

# cosmos_add_components(): in a shared folder (apps/, examples/,
# tests/integration/, tests/fuzz/), adds every subfolder with a
# CMakeLists.txt and includes every <component>.cmake fragment, so each
# component registers itself without editing the folder's CMakeLists.txt.
macro(cosmos_add_components)
  file(GLOB _cosmos_children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT _cosmos_children)
  foreach(_cosmos_child ${_cosmos_children})
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${_cosmos_child} AND
       EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_cosmos_child}/CMakeLists.txt)
      add_subdirectory(${_cosmos_child})
    endif()
  endforeach()
  file(GLOB _cosmos_fragments ${CMAKE_CURRENT_SOURCE_DIR}/*.cmake)
  list(SORT _cosmos_fragments)
  foreach(_cosmos_fragment ${_cosmos_fragments})
    include(${_cosmos_fragment})
  endforeach()
endmacro()
