# Install rules of CMakeLists.txt: headers under include/tls/, the library,
# the CMake package TlsCore (target tls::core) and the pkg-config module tls-core.
include(CMakePackageConfigHelpers)

set(tls_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/TlsCore)

install(TARGETS tls_core EXPORT TlsCoreTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(header IN LISTS TLS_PUBLIC_HEADERS TLS_TEMPLATE_HEADERS)
  get_filename_component(subdir ${header} DIRECTORY)
  install(FILES core/${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tls/${subdir})
endforeach()

install(EXPORT TlsCoreTargets NAMESPACE tls:: DESTINATION ${tls_cmake_dir})
configure_package_config_file(cmake/TlsCoreConfig.cmake.in
  ${PROJECT_BINARY_DIR}/TlsCoreConfig.cmake INSTALL_DESTINATION ${tls_cmake_dir})
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/TlsCoreConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/TlsCoreConfig.cmake
              ${PROJECT_BINARY_DIR}/TlsCoreConfigVersion.cmake
        DESTINATION ${tls_cmake_dir})

# pkg-config: relocatable (prefix from the .pc file's own place), so that
# `cmake --install --prefix <dir>` gives a working file; fixed paths only if
# the install directories are given as absolute paths. A static library
# needs the engine's own link flags on every link, a shared one only with --static.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(tls_pc_prefix "${CMAKE_INSTALL_PREFIX}")
  set(tls_pc_libdir "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(tls_pc_includedir "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH tls_pc_to_prefix
    ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
  set(tls_pc_prefix "\${pcfiledir}/${tls_pc_to_prefix}")
  set(tls_pc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(tls_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(tls_pc_engine_libs "-pthread")
foreach(lib IN LISTS CMAKE_DL_LIBS)
  string(APPEND tls_pc_engine_libs " -l${lib}")
endforeach()
if(BUILD_SHARED_LIBS)
  set(tls_pc_libs "-ltls-core")
  set(tls_pc_libs_private "Libs.private: ${tls_pc_engine_libs}")
else()
  set(tls_pc_libs "-ltls-core ${tls_pc_engine_libs}")
  set(tls_pc_libs_private "")
endif()
configure_file(cmake/tls-core.pc.in ${PROJECT_BINARY_DIR}/tls-core.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tls-core.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
