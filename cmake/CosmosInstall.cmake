# install() rules and a CMake package config so other projects can
# find_package(cosmos) and link cosmos::client. Binaries install in the
# default component; the library, headers and package files in "dev":
#   cmake --install BUILD --component dev --prefix PREFIX
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(COSMOS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/cosmos)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/cosmos DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev FILES_MATCHING PATTERN "*.h")
install(FILES ${CMAKE_BINARY_DIR}/include/cosmos/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cosmos COMPONENT dev)

# cosmos::client and the static layers it needs (a static library's private
# dependencies are link dependencies of its users).
set(_cosmos_exported cosmos_client cosmos_cluster cosmos_common cosmos_protocol cosmos_rpc cosmos_sec)
foreach(t ${_cosmos_exported})
  string(REPLACE "cosmos_" "" _short ${t})
  set_target_properties(${t} PROPERTIES EXPORT_NAME ${_short})
endforeach()
install(TARGETS ${_cosmos_exported} EXPORT cosmosTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT cosmosTargets NAMESPACE cosmos:: DESTINATION ${COSMOS_CMAKE_DIR} COMPONENT dev)

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/cosmosConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cosmosConfig.cmake INSTALL_DESTINATION ${COSMOS_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cosmosConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cosmosConfig.cmake ${CMAKE_BINARY_DIR}/cosmosConfigVersion.cmake
  DESTINATION ${COSMOS_CMAKE_DIR} COMPONENT dev)
