#!/usr/bin/env bash
# The public headers as a consumer's compiler sees them, reached through plain
# -I (pkg-config and add_subdirectory give -I; find_package gives -isystem,
# which would hide every warning):
#   1. each header, included alone, compiles with no warning under g++ and
#      clang++ with -Wall -Wextra -Wpedantic -Wshadow -Wconversion
#      -Wsign-conversion -Wold-style-cast -Werror;
#   2. a floating-point key is refused with an error that names its type and
#      says keys are strings or integers;
#   3. before C++20, a consumer that uses tls gets exactly one error, ours.
# A compiler that is not installed is skipped, and said so; none at all fails.
set -euo pipefail
core=$(cd "${TEST_SRCDIR:?}/${TEST_WORKSPACE:-tls}/core" && pwd)
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/headers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include"
ln -s "$core" "$tmp/include/tls"  # "tls/tls.h", as installed
strict=(-std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Wshadow -Wconversion
        -Wsign-conversion -Wold-style-cast -Werror -I"$tmp/include")
headers=()
for h in "$core"/*.h; do headers+=("$(basename "$h")"); done
failed=0
compilers=0

for cxx in g++ clang++; do
  if ! command -v "$cxx" >/dev/null; then
    echo "SKIP: $cxx is not installed"
    continue
  fi
  compilers=$((compilers + 1))
  for h in "${headers[@]}"; do
    printf '#include "tls/%s"\n' "$h" >"$tmp/one.cc"
    if ! out=$("$cxx" "${strict[@]}" "$tmp/one.cc" 2>&1) || [[ -n $out ]]; then
      printf 'FAIL: %s: tls/%s alone is not clean:\n%s\n' "$cxx" "$h" "$out"
      failed=1
    fi
  done
  echo "$cxx: ${#headers[@]} public headers clean alone"

  printf '#include "tls/tls.h"\nint main() { tls::Set(3.5, tls::MakeData(1)); }\n' >"$tmp/double_key.cc"
  if out=$("$cxx" "${strict[@]}" "$tmp/double_key.cc" 2>&1); then
    echo "FAIL: $cxx accepted a double key"
    failed=1
  elif ! grep -q 'double' <<<"$out" || ! grep -q 'floating-point key is not allowed' <<<"$out"; then
    printf 'FAIL: %s: a double key'"'"'s error does not say so:\n%s\n' "$cxx" "$out"
    failed=1
  else
    echo "$cxx: a double key is refused by name"
  fi

  printf '#include "tls/tls.h"\nint main() {\n  tls::Set("x", tls::MakeData(1));\n  tls::AtExit([] {});\n  return tls::Get("x") ? 0 : 1;\n}\n' >"$tmp/old.cc"
  out=$("$cxx" -std=c++17 -fsyntax-only -I"$tmp/include" "$tmp/old.cc" 2>&1) && {
    echo "FAIL: $cxx -std=c++17 accepted tls"
    failed=1
  }
  errors=$(grep -c 'error:' <<<"$out" || true)
  if [[ $errors != 1 ]] || ! grep -q 'error:.*tls requires C++20' <<<"$out"; then
    printf 'FAIL: %s -std=c++17 should give one error, ours; gave:\n%s\n' "$cxx" "$out"
    failed=1
  else
    echo "$cxx: C++17 stops at one line"
  fi
done

if [[ $compilers == 0 ]]; then
  echo "FAIL: neither g++ nor clang++ is installed"
  exit 1
fi
exit $failed
