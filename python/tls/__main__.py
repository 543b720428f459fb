"""python -m tls: the flags and folders for building C++ against this package's engine.

    python -m tls --includes      -I<package>/include
    python -m tls --libs          <package>/lib/libtls-core.so.3 -Wl,-rpath,<package>/lib -pthread
    python -m tls --cmake-dir     the folder of TlsCoreConfig.cmake (find_package(TlsCore))
    python -m tls --pkgconfig-dir the folder of tls-core.pc (PKG_CONFIG_PATH)

Several flags print one line each, in the order given. An extension built with
them links the engine the `tls` module runs on (docs/python-cpp.md).
"""

import argparse
import os
import sys

from tls import _cpp


def _flags():
    lib_dir = os.path.dirname(_cpp.get_library())
    return {
        "includes": ("-I" + _cpp.get_include(), _cpp.get_include()),
        "libs": (f"{_cpp.get_library()} -Wl,-rpath,{lib_dir} -pthread", _cpp.get_library()),
        "cmake_dir": (_cpp.get_cmake_dir(), _cpp.get_cmake_dir()),
        "pkgconfig_dir": (_cpp.get_pkgconfig_dir(), _cpp.get_pkgconfig_dir()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tls", description=__doc__.splitlines()[0].partition(": ")[2])
    order = []

    class _Record(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            order.append(self.dest)

    parser.add_argument("--includes", nargs=0, action=_Record, help="the compiler's -I flag")
    parser.add_argument("--libs", nargs=0, action=_Record, help="the linker's flags")
    parser.add_argument("--cmake-dir", nargs=0, action=_Record, help="TlsCore_DIR for CMake")
    parser.add_argument("--pkgconfig-dir", nargs=0, action=_Record,
                        help="a folder for PKG_CONFIG_PATH")
    parser.parse_args(argv)
    if not order:
        parser.print_help()
        return 2
    flags = _flags()
    for name in order:
        line, needed = flags[name]
        if not os.path.exists(needed):
            print(f"python -m tls: {needed} is missing: this tls is not installed from its "
                  "wheel, which carries the C++ engine", file=sys.stderr)
            return 1
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
