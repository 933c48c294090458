# systemd units and a Debian package (CPack DEB) of the binaries, the client
# library and its headers (docs/operations.md "systemd" and "Debian package").
include(GNUInstallDirs)

# packaging/systemd/*.service.in name the installed binaries' full paths,
# so they are configured at install time, for the prefix actually used
# (`cmake --install --prefix P`, or /usr when CPack builds the package).
foreach(unit cosmosd@.service cosmos-kv@.service)
  install(CODE "
    set(CMAKE_INSTALL_FULL_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    set(CMAKE_INSTALL_FULL_DOCDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\")
    configure_file(\"${CMAKE_SOURCE_DIR}/packaging/systemd/${unit}.in\"
                   \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\" @ONLY)
    message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\")
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES
         \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\")")
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/packaging/systemd/cosmos.sysusers
        DESTINATION lib/sysusers.d RENAME cosmos.conf)
install(FILES ${CMAKE_SOURCE_DIR}/docs/operations.md ${CMAKE_SOURCE_DIR}/docs/kv.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "cosmos")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "COSMOS maintainers <maintainers@cosmos.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "COSMOS secure remote persistent memory: cosmosd, cosmos-kv, the cosmos CLI")
set(CPACK_PACKAGE_DESCRIPTION
    "cosmosd serves persistent-memory regions over UDP (optionally through a simulated\n enclave), cosmos-kv is a Redis-protocol key-value server on top, cosmos administers\n pools and regions. Includes the cosmos::client library and headers.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "database")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://cosmos.invalid")
# Library dependencies from the binaries themselves (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd-sysusers creates the 'cosmos' user the units run as.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_SOURCE_DIR}/packaging/debian/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PACKAGE_INSTALL_DIRECTORY "/usr")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
include(CPack)
