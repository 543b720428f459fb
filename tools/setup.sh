#!/usr/bin/env bash
# Installs what a fresh Debian bookworm machine lacks to build, test and benchmark
# this project. Idempotent: does nothing when everything is present. Debian's
# archive only; no GitHub, no PyPI.
#
#   tools/setup.sh              the host's packages, and pybind11 (every build)
#   tools/setup.sh --platforms  also the newer interpreters the wheels are built
#                               for: CPython 3.14/3.15 (a sid chroot) and a
#                               free-threaded 3.13t (tools/setup_platforms.sh)
#   tools/setup.sh --bench      (with or without --platforms) also the Rust
#                               peer of the benchmarks: Debian's thread_local
#                               crate, and Debian's cargo if none is on PATH
set -euo pipefail
cd "$(dirname "$0")/.."

want_platforms=0 want_bench=0
for arg in "$@"; do
  case "$arg" in
    --platforms) want_platforms=1 ;;
    --bench) want_bench=1 ;;
    *) echo "tools/setup.sh: unknown argument '$arg' (--platforms, --bench)" >&2; exit 2 ;;
  esac
done

platforms() {
  if [[ $want_platforms == 1 ]]; then
    tools/setup_platforms.sh all
  else
    tools/setup_platforms.sh pybind11
  fi
}

packages=(
  bazel-bootstrap     # Bazel 4.2.3 (+ OpenJDK 17)
  bazel-rules-cc      # @rules_cc, patched for offline use by tools/offline_repos.bzl
  bazel-skylib        # loaded by rules_cc's BUILD files
  googletest          # GoogleTest sources, built by Bazel (instrumentable)
  cmake               # the CMake build (CMakeLists.txt), ctest, consumer checks
  pkg-config          # the pkg-config consumer check (tls-core.pc)
  libgtest-dev        # GoogleTest for the CMake build's tests
  python3-dev
  python3-venv        # the wheel test installs into a fresh venv
  python3-wheel-whl   # wheel for that venv, offline
  python3-mypy        # stubtest (tests/python/stubtest_test.py), on every supported CPython
  python3-tomli       # read by mypy on Python < 3.11
  libbenchmark-dev    # Google Benchmark
  libboost-dev        # boost::asio::thread_pool in tests/reliability/task_pool_test
  libboost-thread-dev # peer in the benchmarks
  valgrind            # instruction counts in the benchmarks
  clang               # clang++: tests/core:public_headers_test, the consumer checks
  clang-format        # ./dev lint: C++ formatting (.clang-format)
  clang-tidy          # ./dev lint: the engine's checks (.clang-tidy)
)
if [[ $want_bench == 1 ]]; then
  packages+=(librust-thread-local-dev)  # the Rust peer's crate (benchmarks/rust_peer), as source
  command -v cargo >/dev/null || packages+=(cargo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  platforms
  exit 0
fi

echo "tools/setup.sh: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) != 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
platforms
