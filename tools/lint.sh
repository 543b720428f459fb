#!/usr/bin/env bash
# Lints every Bazel file (BUILD, *.bzl, WORKSPACE, MODULE.bazel) with buildifier:
# formatting and the warnings Bazel 8 cares about (e.g. py_*/sh_* rules must be
# loaded). `./dev lint` calls this; so does .ci/run.
#
# buildifier comes from the npm registry (@bazel/buildifier, pinned below) into
# ~/.cache/tls-tools, once. If it cannot be installed (no registry), this says so
# and exits 0 unless TLS_LINT_REQUIRED=1: a network failure is not a lint failure.
set -euo pipefail
cd "$(dirname "$0")/.."

version=8.2.1
tools_dir="${XDG_CACHE_HOME:-$HOME/.cache}/tls-tools/buildifier-$version"
buildifier="$tools_dir/node_modules/.bin/buildifier"
if [[ ! -x $buildifier ]]; then
  if ! command -v npm >/dev/null ||
    ! npm install --silent --no-audit --no-fund --prefix "$tools_dir" "@bazel/buildifier@$version" >&2; then
    echo "tools/lint.sh: cannot install buildifier $version from npm; lint skipped" >&2
    [[ ${TLS_LINT_REQUIRED:-0} == 1 ]] && exit 1
    exit 0
  fi
fi

mapfile -t files < <(git ls-files 'BUILD' '*/BUILD' '*.bzl' '*.BUILD' 'WORKSPACE' 'MODULE.bazel')
"$buildifier" --mode=check --lint=warn "${files[@]}"
echo "tools/lint.sh: buildifier $version: ${#files[@]} files clean"
