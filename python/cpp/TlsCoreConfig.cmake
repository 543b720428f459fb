# find_package(TlsCore) for the engine inside the installed `tls` wheel:
#   cmake -DTlsCore_DIR="$(python -m tls --cmake-dir)" ...
#   target_link_libraries(my_ext PRIVATE tls::core)
# tls::core is the wheel's own libtls-core.so.3, the engine the `tls` module
# runs on, so an extension linking it shares IDs, values, tasks and thread
# exits with Python (docs/python-cpp.md). Relocatable: found from this file's
# place in the package (tls/lib/cmake/TlsCore/).
get_filename_component(_tls_package "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

include(CMakeFindDependencyMacro)
find_dependency(Threads)

if(NOT TARGET tls::core)
  add_library(tls::core SHARED IMPORTED)
  set_target_properties(tls::core PROPERTIES
    IMPORTED_LOCATION "${_tls_package}/lib/libtls-core.so.3"
    IMPORTED_SONAME "libtls-core.so.3"
    INTERFACE_INCLUDE_DIRECTORIES "${_tls_package}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_20
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
set(TlsCore_FOUND TRUE)
unset(_tls_package)
