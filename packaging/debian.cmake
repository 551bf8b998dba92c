# The Debian package: `./dev.sh deb` (cpack -G DEB in a Release build with prefix /usr).
# One package, parker: the programs, libparker (.so and .a), headers, pkg-config and CMake
# files, systemd units, man pages, docs and the C example. Dependencies come from
# dpkg-shlibdeps on what the binaries really link.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME parker)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "parker developers <parker@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "daemon that holds idle client sockets for heavy-state servers")
set(CPACK_PACKAGE_DESCRIPTION
  "parker takes idle client connections from a server by Unix-domain fd passing, watches\n\
them with libuv at a few hundred bytes each, and hands each back the moment its client\n\
speaks. Includes the client library (C API parker/parker.h, C++20 API), parkerctl and\n\
heavy_server, an example Redis-protocol server.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libparker-uv.so needs libparker.so.0, which is in this very package.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR}/lib)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_LIST_DIR}/deb/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
include(CPack)
