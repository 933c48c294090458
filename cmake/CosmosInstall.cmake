# install() rules and a CMake package config so other projects can
# find_package(cosmos) and link cosmos::client / cosmos::kv.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/cosmos DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cosmosConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
file(WRITE ${CMAKE_BINARY_DIR}/cosmosConfig.cmake
  "include(CMakeFindDependencyMacro)\n"
  "include(\${CMAKE_CURRENT_LIST_DIR}/cosmosTargets.cmake OPTIONAL)\n")
install(FILES ${CMAKE_BINARY_DIR}/cosmosConfig.cmake ${CMAKE_BINARY_DIR}/cosmosConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cosmos)
