#!/usr/bin/env bash
# Checks that a C++ service can use the engine WITHOUT Bazel, each way
# docs/cpp.md shows: builds and runs server.cc and checks what it printed.
#   1. CMake, find_package(TlsCore) after `cmake --install` to a temp prefix,
#      against the static and the shared (BUILD_SHARED_LIBS=ON) library;
#   2. CMake, add_subdirectory(<this checkout>);
#   3. a Makefile with `pkg-config --cflags --libs tls-core`, static and shared;
#   4. a C++17 consumer gets one line, "tls requires C++20", and no other error;
#   5. the shared library exports only the API (tests/abi/check_exports.sh);
#   6. with no build type given, the top-level build is Release.
# Run by .ci/run; by hand: examples/embedding/check_cmake.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tls-cmake.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
jobs=${BAZEL_JOBS:-2}
expected=$(cat "$here/expected_output.txt")

quiet() { # runs "$@", showing its output only if it fails
  local log
  if ! log=$("$@" 2>&1); then echo "$log" >&2; echo "FAILED: $*" >&2; exit 1; fi
}

check_server() { # <what> <server binary>
  local out
  out=$("$2")
  if [[ $out != "$expected" ]]; then
    printf 'consumer check FAILED (%s): got\n%s\nexpected\n%s\n' "$1" "$out" "$expected" >&2
    exit 1
  fi
  echo "consumer check: OK ($1)"
}

consumer() { # <dir>: a fresh service folder with server.cc
  mkdir -p "$1" && cp "$here/server.cc" "$1/"
}

cmake_consumer() { # <folder> <what> <cmake args...>: configures, builds, runs
  local svc="$tmp/$1" what=$2
  shift 2
  consumer "$svc"
  cp "$here/CMakeLists.consumer.txt" "$svc/CMakeLists.txt"
  quiet cmake -S "$svc" -B "$svc/build" "$@"
  quiet cmake --build "$svc/build" -j "$jobs"
  check_server "$what" "$svc/build/server"
}

# The engine, built and installed twice: static (default) and shared.
for kind in static shared; do
  shared=OFF; [[ $kind == shared ]] && shared=ON
  quiet cmake -S "$repo" -B "$tmp/build-$kind" -DCMAKE_BUILD_TYPE=Release \
    -DTLS_BUILD_TESTS=OFF -DBUILD_SHARED_LIBS=$shared -DCMAKE_INSTALL_LIBDIR=lib
  quiet cmake --build "$tmp/build-$kind" -j "$jobs"
  quiet cmake --install "$tmp/build-$kind" --prefix "$tmp/prefix-$kind"
done

soname=$(objdump -p "$tmp/prefix-shared/lib/libtls-core.so" | awk '$1 == "SONAME" {print $2}')
if [[ $soname != libtls-core.so.3 ]]; then
  echo "consumer check FAILED: SONAME is '$soname', expected libtls-core.so.3" >&2
  exit 1
fi
echo "consumer check: OK (shared library's SONAME is $soname)"
"$repo/tests/abi/check_exports.sh" "$tmp/prefix-shared/lib/libtls-core.so"

for kind in static shared; do
  cmake_consumer "find_package-$kind" "CMake find_package(TlsCore), $kind" \
    -DCMAKE_PREFIX_PATH="$tmp/prefix-$kind"

  svc="$tmp/pkg-config-$kind"
  consumer "$svc"
  cp "$here/Makefile.consumer" "$svc/Makefile"
  PKG_CONFIG_PATH="$tmp/prefix-$kind/lib/pkgconfig" quiet make -C "$svc" server
  LD_LIBRARY_PATH="$tmp/prefix-$kind/lib" check_server "pkg-config tls-core, $kind" "$svc/server"
done

cmake_consumer add_subdirectory "CMake add_subdirectory" -DTLS_SOURCE_DIR="$repo"

# The commands in docs/cpp.md give no build type: the top-level tls build defaults to
# Release (optimised), and a parent project's choice (none here) stands.
build_type() { sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$1/CMakeCache.txt"; }
quiet cmake -S "$repo" -B "$tmp/build-default" -DTLS_BUILD_TESTS=OFF
if [[ $(build_type "$tmp/build-default") != Release ]]; then
  echo "consumer check FAILED: with no build type, tls configured '$(build_type "$tmp/build-default")'" >&2
  exit 1
fi
if [[ -n $(build_type "$tmp/add_subdirectory/build") ]]; then
  echo "consumer check FAILED: add_subdirectory(tls) set the parent's build type" >&2
  exit 1
fi
echo "consumer check: OK (no build type: Release at top level, the parent's choice under add_subdirectory)"

# C++17: exactly one diagnostic line, ours; the consumer's own uses of tls
# after it give none (the compiler stops there).
cat >"$tmp/old.cc" <<'EOF'
#include "tls/tls.h"
int main() {
  tls::Set("x", tls::MakeData(1));
  tls::AtExit([] {});
  return tls::Get("x") ? 0 : 1;
}
EOF
for cxx in g++ clang++; do
  command -v "$cxx" >/dev/null || continue
  if out=$("$cxx" -std=c++17 -fsyntax-only -I"$tmp/prefix-static/include" "$tmp/old.cc" 2>&1); then
    echo "consumer check FAILED: $cxx -std=c++17 accepted tls/tls.h" >&2
    exit 1
  fi
  errors=$(grep -c 'error:' <<<"$out" || true)
  if [[ $errors != 1 ]] || ! grep -q 'error:.*tls requires C++20' <<<"$out"; then
    printf 'consumer check FAILED: %s -std=c++17 should give one line, gave:\n%s\n' "$cxx" "$out" >&2
    exit 1
  fi
  echo "consumer check: OK ($cxx -std=c++17: $(grep 'error:' <<<"$out" | sed 's/.*error: //'))"
done
