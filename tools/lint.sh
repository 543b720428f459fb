#!/usr/bin/env bash
# The project's linters; `./dev lint` calls this, and so does .ci/run.
#   1. clang-format: every tracked C++ file formatted as .clang-format says
#      (`./dev format` rewrites them);
#   2. clang-tidy: the engine (core/) against .clang-tidy, with the compile
#      database of the CMake build (configured into a temporary folder);
#   3. buildifier: every Bazel file (BUILD, *.bzl, WORKSPACE, MODULE.bazel),
#      formatting and the warnings Bazel 8 cares about (e.g. py_*/sh_* rules
#      must be loaded).
# clang-format and clang-tidy are Debian packages (tools/setup.sh). buildifier
# comes from the npm registry (@bazel/buildifier, pinned below) into
# ~/.cache/tls-tools, once; if it cannot be installed (no registry), this says
# so and skips it unless TLS_LINT_REQUIRED=1: a network failure is not a lint
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t cxx_files < <(git ls-files '*.cc' '*.h')
# Output compared with the file, not --dry-run: clang-format 14's dry run flags
# the namespace comments of `namespace tls::inline ...` that it writes itself.
unformatted=()
for f in "${cxx_files[@]}"; do
  clang-format "$f" | cmp -s - "$f" || unformatted+=("$f")
done
if ((${#unformatted[@]})); then
  for f in "${unformatted[@]}"; do clang-format "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" - >&2 || true; done
  echo "tools/lint.sh: clang-format: ${#unformatted[@]} files differ (above); ./dev format fixes them" >&2
  exit 1
fi
echo "tools/lint.sh: clang-format: ${#cxx_files[@]} files clean"

compdb=$(mktemp -d "${TMPDIR:-/tmp}/tls-lint.XXXXXX")
trap 'rm -rf "$compdb"' EXIT
cmake -S . -B "$compdb" -DTLS_BUILD_TESTS=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
# core/embedder.cc is Bazel-only (//core:embedder, for the binding): not in the
# CMake build, so not in its compile database.
mapfile -t engine < <(git ls-files 'core/*.cc' ':!core/embedder.cc')
if ! out=$(clang-tidy -p "$compdb" --quiet "${engine[@]}" 2>&1); then
  # Findings in the public headers name the build tree's copy; point at core/.
  sed "s|$compdb/include/tls/|core/|g" <<<"$out" >&2
  echo "tools/lint.sh: clang-tidy found problems (above; every check is an error)" >&2
  exit 1
fi
echo "tools/lint.sh: clang-tidy: ${#engine[@]} engine files clean"

version=8.2.1
tools_dir="${XDG_CACHE_HOME:-$HOME/.cache}/tls-tools/buildifier-$version"
buildifier="$tools_dir/node_modules/.bin/buildifier"
if [[ ! -x $buildifier ]]; then
  if ! command -v npm >/dev/null ||
    ! npm install --silent --no-audit --no-fund --prefix "$tools_dir" "@bazel/buildifier@$version" >&2; then
    echo "tools/lint.sh: cannot install buildifier $version from npm; buildifier skipped" >&2
    [[ ${TLS_LINT_REQUIRED:-0} == 1 ]] && exit 1
    exit 0
  fi
fi

mapfile -t files < <(git ls-files 'BUILD' '*/BUILD' '*.bzl' '*.BUILD' 'WORKSPACE' 'MODULE.bazel')
"$buildifier" --mode=check --lint=warn "${files[@]}"
echo "tools/lint.sh: buildifier $version: ${#files[@]} files clean"
