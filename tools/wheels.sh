#!/usr/bin/env bash
# Builds the Python wheels and prints their paths, one a line, on stdout (and
# nothing else there). `./dev wheel` calls this.
#
#   tools/wheels.sh                    a wheel for every supported CPython found
#   tools/wheels.sh --python 3.12      the wheel for CPython 3.12 only
#   tools/wheels.sh --python 3.13t     the free-threaded 3.13's
#   tools/wheels.sh --pythons-file     print the path of @local_python's pythons.txt
#
# Other arguments go to `bazel build`. Interpreters are found by
# tools/offline_repos.bzl (python3 on PATH or $PYTHON_BIN_PATH, and pyenv's
# versions/*, and what tools/setup_platforms.sh built: sid's 3.14 and 3.15,
# a free-threaded 3.13t); supported: CPython 3.9 to 3.15, and 3.13t.
set -euo pipefail
cd "$(dirname "$0")/.."

version="" bazel_args=()
while (($#)); do
  case "$1" in
    --python) version="${2:?--python needs a version, e.g. 3.12}"; shift 2 ;;
    --python=*) version="${1#--python=}"; shift ;;
    --pythons-file) pythons_only=1; shift ;;
    *) bazel_args+=("$1"); shift ;;
  esac
done

# bazel-bin, through the workspace's convenience link when it points there.
bin_dir() {
  local bin
  bin=$(bazel info "${bazel_args[@]}" bazel-bin 2>/dev/null)
  if [[ -L bazel-bin && $(readlink -f bazel-bin) == "$(readlink -f "$bin")" ]]; then bin=$PWD/bazel-bin; fi
  echo "$bin"
}

# What the repository rule found on this machine, looked for again each time:
# tools/setup_platforms.sh may have built new interpreters since.
# `bazel sync` takes no build options (`--jobs` would make it fail, and the
# stale list would stand), so none of bazel_args go to it.
if ! sync_log=$(bazel sync --only=local_python 2>&1); then
  echo "wheels: bazel sync --only=local_python failed; the interpreter list may be stale:" >&2
  echo "$sync_log" | tail -5 >&2
fi
bazel build "${bazel_args[@]}" @local_python//:pythons.txt 2>/dev/null ||
  bazel build "${bazel_args[@]}" @local_python//:pythons.txt
pythons="$(bazel info output_base 2>/dev/null)/external/local_python/pythons.txt"
if [[ -n ${pythons_only:-} ]]; then echo "$pythons"; exit 0; fi

if [[ -z $version ]]; then
  while read -r xy word reason; do
    if [[ $word == skipped: ]]; then echo "wheels: no wheel for CPython $xy: $reason" >&2; fi
  done <"$pythons"
  bazel build "${bazel_args[@]}" //python:wheels //python:wheel_list
  bin=$(bin_dir)
  sed "s|^|$bin/python/|" "$bin/python/wheels.txt"
  exit 0
fi

if ! [[ $version =~ ^[0-9]+\.[0-9]+t?$ ]]; then
  echo "wheels: --python wants X.Y or X.Yt (e.g. 3.12, 3.13t), got '$version'" >&2
  exit 2
fi
line=$(awk -v v="$version" '$1 == v' "$pythons")
if [[ -z $line ]]; then
  echo "wheels: CPython $version not found on this machine; found: $(awk '$2 ~ /^cp/ {printf "%s ", $1}' "$pythons")" >&2
  echo "  (interpreters come from python3 on PATH, \$PYTHON_BIN_PATH and \$PYENV_ROOT/versions/*)" >&2
  exit 1
fi
read -r _ tag reason <<<"$line"
if [[ $tag == skipped: ]]; then
  echo "wheels: CPython $version: $reason" >&2
  exit 1
fi
bazel build "${bazel_args[@]}" "//python:wheel_$tag"
bin=$(bin_dir)
ls "$bin"/python/tls-*-cp*-"$tag"-*.whl
