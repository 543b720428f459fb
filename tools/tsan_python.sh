#!/usr/bin/env bash
# The Python binding under ThreadSanitizer, on a free-threaded CPython.
#
#   1. A free-threaded CPython 3.13 built with ThreadSanitizer, from the same
#      source as $TLS_PLATFORMS/python3.13t (trixie's python3.13, 3.13.5;
#      tools/setup_platforms.sh), into $TLS_PLATFORMS/python3.13t-tsan:
#        ./configure --disable-gil --with-thread-sanitizer --enable-shared \
#          --prefix=$prefix LDFLAGS=-Wl,-rpath,$prefix/lib
#      with GCC 12, Debian's default (CC=... picks another; only GCC was
#      tried). Built once: kept while
#      $prefix/.tls-ready exists. CPython's own suppressions
#      (Tools/tsan/suppressions_free_threading.txt) are kept beside it, in
#      $prefix/share/tsan/.
#   2. The tls extension built by hand for it (not Bazel: no second Bazel in
#      the work tree), instrumented with -fsanitize=thread -O1 -g: bindings/*.cc
#      and core's sources as //bindings builds them, with the test hooks
#      (testing.cc, -DTLS_TESTING_HOOKS, as the test build //python:tls) unless
#      --release; installed as tls/_tls.cpython-313t-x86_64-linux-gnu.so in a
#      copy of python/tls under $TLS_TSAN_WORK (default /tmp/tls-tsan).
#   3. tests/python's free_threading, stress, tasks and introspection tests
#      (or the ones named: `tools/tsan_python.sh stress_test`) under it, with
#      PYTHON_GIL=0 and TSAN_OPTIONS=suppressions=<CPython's>:halt_on_error=0:
#      second_deadlock_stack=1 (CPython's advice) plus exitcode=0 (a process
#      that reported keeps its own exit code: the tests check their children's)
#      and log_path, each process's reports in
#      $TLS_TSAN_WORK/logs/<test>.<pid>; then a summary: per test its unittest
#      result and its reports, split into those with a frame in tls's code
#      (bindings/, core/) and the rest (CPython-internal, the test's own).
#      Exits non-zero if a test failed or a report has a frame in tls's code.
#
# Times on the 2-core machine (shared with other builds): the interpreter
# ~31 min the first time (configure 1, make -j2 11, make install 19: it
# byte-compiles the stdlib with the instrumented interpreter), the extension
# ~1 min, the four tests ~5 min (stress_test 3-4 of them). The other tests
# of tests/python also run (name them): threads, exit (~5 min), api, fork,
# late_import, refleak, subinterpreter; all eleven ~14 min. Needs root for
# apt (the build packages, trixie's source).
#
# What it found first (3.13.5, GCC 12): tls's reports are all one race,
# PythonCall's Py_IsInitialized() (bindings/python_access.h) on a daemon
# thread that CPython ends during finalization against _Py_Finalize's
# `runtime->initialized = 0`; the others are CPython's own (thread start and
# daemon threads racing finalization in mimalloc/brc, subinterpreter creation
# re-readying static types), as tls-free programs show.
#
#   tools/tsan_python.sh [--release] [--build-only] [TEST...]
#     TEST: free_threading_test, stress_test, ... (default: the four above)
#     --release: the extension without the test hooks (their tests skip)
#     --build-only: steps 1 and 2
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${TLS_PLATFORMS:-/var/cache/tls-platforms}
mirror=${TLS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
prefix=$cache/python3.13t-tsan
work=${TLS_TSAN_WORK:-/tmp/tls-tsan}
hooks=1
build_only=0
tests=()
for arg in "$@"; do
  case $arg in
    --release) hooks=0 ;;
    --build-only) build_only=1 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) tests+=("${arg%.py}") ;;
  esac
done
((${#tests[@]})) || tests=(free_threading_test stress_test tasks_test introspection_test)
log() { echo "tools/tsan_python.sh: $*" >&2; }
jobs=$(nproc)

# side_apt SUITE ARGS... and host_packages PKG... (shared with setup_platforms.sh)
# shellcheck source=tools/debian_apt.sh
source tools/debian_apt.sh

# ---- 1. the TSan interpreter ------------------------------------------------
build_interpreter() {
  if [[ -f $prefix/.tls-ready ]]; then return; fi
  host_packages build-essential libffi-dev zlib1g-dev libssl-dev libbz2-dev liblzma-dev \
    libsqlite3-dev libncurses-dev libreadline-dev uuid-dev xz-utils
  log "python3.13t-tsan: fetching trixie's python3.13 source"
  local src=$work/src
  rm -rf "$src"
  mkdir -p "$src"
  [[ -n $(ls "$cache/apt-trixie/lists/"*Sources* 2>/dev/null) ]] || side_apt trixie update
  (cd "$src" && side_apt trixie source --download-only python3.13 >/dev/null) ||
    { side_apt trixie update && (cd "$src" && side_apt trixie source --download-only python3.13 >/dev/null); }
  tar -C "$src" -xJf "$(ls "$src"/python3.13_*.orig.tar.xz)"
  local tree
  tree=$(find "$src" -maxdepth 1 -type d -name 'Python-3.13*' | head -1)
  log "python3.13t-tsan: building $(basename "$tree") with --disable-gil --with-thread-sanitizer" \
    "(${CC:-gcc}; about 25 minutes on 2 cores)"
  rm -rf "$prefix"
  local t0=$SECONDS
  (cd "$tree" &&
    ./configure --disable-gil --with-thread-sanitizer --prefix="$prefix" --enable-shared \
      LDFLAGS="-Wl,-rpath,$prefix/lib" >"$cache/python3.13t-tsan-configure.log" 2>&1 &&
    make -j"$jobs" >"$cache/python3.13t-tsan-make.log" 2>&1 &&
    make install >"$cache/python3.13t-tsan-install.log" 2>&1) ||
    { log "python3.13t-tsan build failed; see $cache/python3.13t-tsan-*.log"; exit 1; }
  mkdir -p "$prefix/share/tsan"
  cp "$tree"/Tools/tsan/suppressions*.txt "$prefix/share/tsan/"
  rm -rf "$src"
  "$prefix/bin/python3.13t" -c 'import sys, sysconfig; assert not sys._is_gil_enabled(); assert "thread" in sysconfig.get_config_var("CONFIG_ARGS"); print(sys.version)' >&2
  log "python3.13t-tsan: built in $(((SECONDS - t0) / 60)) min"
  touch "$prefix/.tls-ready"
}

# ---- 2. the instrumented extension ------------------------------------------
build_extension() {
  local py=$prefix/bin/python3.13t
  local suffix
  suffix=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  local obj=$work/obj pkg=$work/pkg
  rm -rf "$obj" "$pkg"
  mkdir -p "$obj/include" "$pkg/tls"
  ln -s "$root/core" "$obj/include/tls"  # core's include_prefix: "tls/..."
  [[ -f $cache/pybind11/include/pybind11/pybind11.h ]] || tools/setup_platforms.sh pybind11
  local srcs=() s
  for s in bindings/*.cc core/*.cc core/internal/*.cc; do
    if [[ $s == bindings/testing.cc ]] && ((!hooks)); then continue; fi
    srcs+=("$root/$s")  # absolute: TSan's stacks name tls's files by full path
  done
  local flags=(-std=c++20 -fPIC -fsanitize=thread -O1 -g -fno-omit-frame-pointer
    -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter
    -I"$root" -I"$obj/include" -isystem "$cache/pybind11/include"
    -isystem "$prefix/include/python3.13t")
  ((hooks)) && flags+=(-DTLS_TESTING_HOOKS)
  log "extension: compiling ${#srcs[@]} sources with -fsanitize=thread$( ((hooks)) && echo ', test hooks')"
  # shellcheck disable=SC2016  # expanded by the inner sh, per source
  printf '%s\n' "${srcs[@]}" |
    xargs -P"$jobs" -I{} sh -c 'o="$1/$(echo "${2#"$3"/}" | tr / _).o"; shift 3; exec "$@" -c "$0" -o "$o"' \
      {} "$obj" {} "$root" "${CXX:-g++}" "${flags[@]}"
  "${CXX:-g++}" -shared -fsanitize=thread -o "$pkg/tls/_tls$suffix" "$obj"/*.o \
    -Wl,--version-script="$root/bindings/exports.lds" -pthread -ldl
  cp python/tls/*.py python/tls/*.pyi python/tls/py.typed "$pkg/tls/"
  log "extension: $pkg/tls/_tls$suffix"
}

# ---- 3. the tests under TSan ------------------------------------------------
run_tests() {
  local py=$prefix/bin/python3.13t logs=$work/logs
  rm -rf "$logs"
  mkdir -p "$logs"
  local supp=$prefix/share/tsan/suppressions_free_threading.txt
  local failed=0 in_tls=0 t
  for t in "${tests[@]}"; do
    log "$t: running under TSan"
    local t0=$SECONDS rc=0
    (cd "$logs" &&
      PYTHON_GIL=0 PYTHONPATH="$work/pkg:$root/tests/python" \
        TSAN_OPTIONS="suppressions=$supp:halt_on_error=0:second_deadlock_stack=1:exitcode=0:log_path=$logs/$t" \
        "$py" "$root/tests/python/$t.py" -v >"$logs/$t.out" 2>&1) || rc=$?
    local result reports tls_reports files
    result=$(grep -E '^(OK|FAILED)' "$logs/$t.out" | tail -1 || true)
    files=$(find "$logs" -name "$t.[0-9]*" | sort)
    # A report is tls's if any of its frames is in bindings/ or core/.
    read -r reports tls_reports < <(
      # shellcheck disable=SC2086  # file names without spaces, under $logs
      { [[ -z $files ]] || cat $files; } | awk -v root="$root" -v hdrs="$work/obj/include/tls/" '
        /^WARNING: ThreadSanitizer/ { if (inrep && hit) n++; inrep = 1; hit = 0; all++ }
        inrep && (index($0, root "/bindings/") || index($0, root "/core/") || index($0, hdrs)) { hit = 1 }
        END { if (inrep && hit) n++; print all + 0, n + 0 }')
    echo "$t: exit $rc, ${result:-no unittest result}, $((SECONDS - t0)) s;" \
      "$reports TSan report(s), $tls_reports with a frame in bindings/ or core/"
    [[ $result == OK* ]] || failed=1
    ((tls_reports == 0)) || in_tls=1
  done
  log "logs: $logs (<test>.out: the test's output; <test>.<pid>: TSan's reports per process)"
  local all
  all=$(find "$logs" -name '*.[0-9]*' | sort)
  if [[ -n $all ]]; then
    echo "== report summaries (count, SUMMARY line):"
    # shellcheck disable=SC2086  # file names without spaces, under $logs
    grep -h '^SUMMARY: ThreadSanitizer' $all | sed "s|$root/||" | sort | uniq -c | sort -rn
  fi
  ((failed == 0 && in_tls == 0))
}

build_interpreter
build_extension
((build_only)) || run_tests
