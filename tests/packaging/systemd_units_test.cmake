# Installs the build tree (default component) into a scratch prefix and
# checks the installed cosmosd@ and cosmos-kv@ units with `systemd-analyze
# verify`: any message (it exits 0 on an unparsable directive and only
# prints it) or a non-zero status fails. Needs -DBIN= -DWORK=; exits with
# status 77 (skipped) without systemd-analyze.
find_program(ANALYZE systemd-analyze)
if(NOT ANALYZE)
  message("SKIP: systemd-analyze not found (Debian package systemd)")
  cmake_language(EXIT 77)
endif()
file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BIN} --prefix ${WORK}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(unit cosmosd cosmos-kv)
  set(file ${WORK}/prefix/lib/systemd/system/${unit}@.service)
  if(NOT EXISTS ${file})
    message(FATAL_ERROR "${file} was not installed")
  endif()
  file(READ ${file} text)
  foreach(want "Type=notify" "ExecStart=${WORK}/prefix/bin/${unit} " "NoNewPrivileges=yes"
          "ProtectSystem=strict" "ExecReload=/bin/kill -HUP $MAINPID" "RestartPreventExitStatus=2")
    string(FIND "${text}" "${want}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${unit}@.service lacks '${want}'")
    endif()
  endforeach()
  execute_process(COMMAND ${ANALYZE} verify --man=no ${unit}@test.service
                  WORKING_DIRECTORY ${WORK}/prefix/lib/systemd/system
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT "${out}${err}" STREQUAL "")
    message(FATAL_ERROR "systemd-analyze verify ${unit}@test.service: status ${rc}\n${out}${err}")
  endif()
  message(STATUS "${unit}@.service: systemd-analyze verify clean")
endforeach()
file(REMOVE_RECURSE ${WORK})
