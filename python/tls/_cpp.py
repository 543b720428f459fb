"""Where the engine of this installed package is, for building C++ against it.

The wheel carries the C++ engine the `tls` module runs on as a shared library,
its headers, a CMake package and a pkg-config file. A C++ extension built
against them links that same library, so Python and C++ are one engine in one
process: one ID per thread, one store, the same tasks and thread exits
(docs/python-cpp.md). ``python -m tls --cmake-dir`` prints the same paths.

Example (CMake)::

    cmake -DTlsCore_DIR="$(python -m tls --cmake-dir)" ...
    # CMakeLists.txt: find_package(TlsCore 0.4 REQUIRED)
    #                 target_link_libraries(my_ext PRIVATE tls::core)
"""

import os

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
SONAME = "libtls-core.so.3"


def get_include() -> str:
    """The folder to put on the include path: ``#include "tls/tls.h"``."""
    return os.path.join(_PACKAGE, "include")


def get_library() -> str:
    """The engine's shared library (libtls-core.so.3), the one `tls` itself links."""
    return os.path.join(_PACKAGE, "lib", SONAME)


def get_cmake_dir() -> str:
    """The folder of TlsCoreConfig.cmake, for ``find_package(TlsCore)``."""
    return os.path.join(_PACKAGE, "lib", "cmake", "TlsCore")


def get_pkgconfig_dir() -> str:
    """The folder of tls-core.pc, for ``PKG_CONFIG_PATH``."""
    return os.path.join(_PACKAGE, "lib", "pkgconfig")
