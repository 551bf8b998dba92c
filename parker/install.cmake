# The installed library: libparker (the fd-passing core, the protocol, the client and its C
# API) as a shared library with a SOVERSION and as a static one, libparker-uv (the libuv
# adapter), the public headers, pkg-config files and a CMake package (find_package(parker)
# gives parker::client and parker::client_uv).
#
# The in-tree targets (parker_fdpass, parker_protocol, parker_client...) stay as they are for
# the programs and tests; the installed libraries are compiled once more from the same source
# lists, as position-independent objects shared by the .so and the .a.
include(CMakePackageConfigHelpers)

add_library(parker_lib_objects OBJECT ${parker_fdpass_sources} ${parker_protocol_sources} ${parker_client_sources})
set_target_properties(parker_lib_objects PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_include_directories(parker_lib_objects PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
  $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/generated/include>)
target_compile_features(parker_lib_objects PUBLIC cxx_std_20)
target_link_libraries(parker_lib_objects PRIVATE fmt::fmt parker::warnings)

set(parker_soversion ${PROJECT_VERSION_MAJOR})

# EXPORT_NAME: what outside projects call them (parker::client, parker::client_static).
add_library(parker_shared SHARED $<TARGET_OBJECTS:parker_lib_objects>)
add_library(parker_static STATIC $<TARGET_OBJECTS:parker_lib_objects>)
foreach(lib parker_shared parker_static)
  target_include_directories(${lib} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/generated/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${lib} PUBLIC cxx_std_20)
endforeach()
# fmt is used inside error.cpp only: private to the .so; the .a passes it on to its link.
# parker::warnings brings the sanitizer runtime into the .so of a -DPARKER_SANITIZE build.
target_link_libraries(parker_shared PRIVATE fmt::fmt parker::warnings)
target_link_libraries(parker_static PRIVATE fmt::fmt)
set_target_properties(parker_shared PROPERTIES
  OUTPUT_NAME parker VERSION ${PROJECT_VERSION} SOVERSION ${parker_soversion} EXPORT_NAME client
  LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
set_target_properties(parker_static PROPERTIES
  OUTPUT_NAME parker EXPORT_NAME client_static ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)

# libparker-uv: client_uv.cpp over libparker.
add_library(parker_uv_shared SHARED lib/client_uv.cpp lib/client_sharded_uv.cpp)
set_target_properties(parker_uv_shared PROPERTIES
  OUTPUT_NAME parker-uv VERSION ${PROJECT_VERSION} SOVERSION ${parker_soversion} EXPORT_NAME client_uv
  LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
target_link_libraries(parker_uv_shared PUBLIC parker_shared PkgConfig::libuv PRIVATE parker::warnings)

install(TARGETS parker_shared parker_static parker_uv_shared EXPORT parkerTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/parker DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/generated/include/parker/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/parker)

# pkg-config: parker (the C and C++ client) and parker-uv. Libs.private lists what a static
# link needs (libparker.a is C++ and uses fmt: a C program linking it statically needs
# libstdc++ and libfmt); fmt is not a Requires, so a program linking the .so needs no fmt.pc.
file(RELATIVE_PATH parker_pc_to_prefix /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
foreach(pc parker parker-uv)
  configure_file(packaging/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()

# CMake package: find_package(parker) -> parker::client (shared), parker::client_static,
# parker::client_uv.
set(parker_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/parker)
install(EXPORT parkerTargets NAMESPACE parker:: DESTINATION ${parker_cmake_dir})
configure_package_config_file(packaging/parkerConfig.cmake.in ${PROJECT_BINARY_DIR}/parkerConfig.cmake
  INSTALL_DESTINATION ${parker_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/parkerConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/parkerConfig.cmake ${PROJECT_BINARY_DIR}/parkerConfigVersion.cmake
  DESTINATION ${parker_cmake_dir})

# The C example, as source for readers to build (see its first lines).
install(FILES examples/park_one.c DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
