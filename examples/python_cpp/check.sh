#!/usr/bin/env bash
# The Python + C++ example, the way its users get it: the wheel that
# `./dev wheel` makes, installed with pip --no-index into a fresh venv; the
# extension (request_ext.cc) built by CMake in a folder that holds only this
# example, finding the engine with `python -m tls --cmake-dir`, and again by
# plain c++ with pkg-config's flags (`python -m tls --pkgconfig-dir`);
# handler.py run with each and its output compared with expected_output.txt.
#   examples/python_cpp/check.sh [--python X.Y]   (default: the default CPython)
# Run by .ci/run, on the default interpreter and the free-threaded 3.13t.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tls-python-cpp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

quiet() { # runs "$@", showing its output only if it fails
  local log
  if ! log=$("$@" 2>&1); then echo "$log" >&2; echo "FAILED: $*" >&2; exit 1; fi
}

[[ $# -gt 0 ]] || set -- --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if ! wheel=$(cd "$repo" && tools/wheels.sh "$@" 2>"$tmp/wheels.log" | head -n 1); then
  cat "$tmp/wheels.log" >&2
  exit 1
fi
tag=$(basename "$wheel" | cut -d- -f4)  # the ABI tag: cp311, cp313t
python=$(awk -v t="$tag" '$2 == t { print $4 }' "$(cd "$repo" && tools/wheels.sh --pythons-file)")
[[ -n $python ]] || { echo "python_cpp check: no interpreter for $tag" >&2; exit 1; }
if [[ -e "$(dirname "$python")/run-in-chroot" ]]; then
  echo "python_cpp check: $tag runs in the sid chroot; this check is for host interpreters" >&2
  exit 1
fi

quiet "$python" -m venv "$tmp/venv"
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 quiet "$tmp/venv/bin/python" -m pip install --no-index "$wheel"
mkdir "$tmp/project"
cp "$here"/{CMakeLists.txt,request_ext.cc,handler.py} "$tmp/project/"
quiet cmake -S "$tmp/project" -B "$tmp/project/build" -DCMAKE_BUILD_TYPE=Release \
  -DPython3_EXECUTABLE="$tmp/venv/bin/python" \
  -DTlsCore_DIR="$("$tmp/venv/bin/python" -m tls --cmake-dir)"
quiet cmake --build "$tmp/project/build" -j "${BAZEL_JOBS:-2}"

# The same extension built without CMake, by pkg-config's flags for the
# wheel's tls-core.pc (python -m tls --pkgconfig-dir).
vpython="$tmp/venv/bin/python"
mkdir "$tmp/project/build-pc"
suffix=$("$vpython" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
pyinc=$("$vpython" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
pc_flags=$(PKG_CONFIG_PATH="$("$vpython" -m tls --pkgconfig-dir)" pkg-config --cflags --libs tls-core)
# shellcheck disable=SC2086  # pc_flags is a list of flags
quiet c++ -std=c++20 -O2 -shared -fPIC "$tmp/project/request_ext.cc" -I"$pyinc" $pc_flags \
  -o "$tmp/project/build-pc/request_ext$suffix"

env=(PYTHONSAFEPATH=)
[[ $tag == *t ]] && env+=(PYTHON_GIL=0)
for build in build build-pc; do
  out=$(cd "$tmp/project" && env "${env[@]}" PYTHONPATH=$build "$vpython" handler.py)
  if [[ $out != "$(cat "$here/expected_output.txt")" ]]; then
    printf 'python_cpp check FAILED (%s, %s): got\n%s\nexpected\n%s\n' "$tag" "$build" "$out" \
      "$(cat "$here/expected_output.txt")" >&2
    exit 1
  fi
done
echo "python_cpp check: OK ($(basename "$wheel"), request_ext built against the installed wheel by CMake and by pkg-config)"
