#!/usr/bin/env bash
# What including tls costs a consumer's translation unit: the compile time of a
# file that includes <string> and nothing else (the baseline), then the same
# with "tls/store.h" (keyed values, ID, AtExit) and with "tls/tls.h" (all),
# reached through plain -I, at -O2 -std=c++20, with g++ and clang++. The three
# are alternated over the rounds, so load on the machine hits each alike; the
# medians are printed, with each header's cost over the baseline.
#   benchmarks/compile_cost.sh [rounds]      (default 11)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-11}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/compile-cost.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include"
ln -s "$repo/core" "$tmp/include/tls"
cases=(baseline store tls)
printf '#include <string>\nint main() { return 0; }\n' >"$tmp/baseline.cc"
printf '#include <string>\n#include "tls/store.h"\nint main() { return 0; }\n' >"$tmp/store.cc"
printf '#include <string>\n#include "tls/tls.h"\nint main() { return 0; }\n' >"$tmp/tls.cc"

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

printf '| compiler | <string> alone | + tls/store.h | + tls/tls.h |\n|---|---|---|---|\n'
for cxx in g++ clang++; do
  command -v "$cxx" >/dev/null || continue
  for c in "${cases[@]}"; do : >"$tmp/$c.times"; done
  for ((r = 0; r < rounds; r++)); do
    for c in "${cases[@]}"; do
      start=$(date +%s.%N)
      "$cxx" -std=c++20 -O2 -c -I"$tmp/include" "$tmp/$c.cc" -o "$tmp/$c.o"
      echo "$(date +%s.%N) - $start" | bc >>"$tmp/$c.times"
    done
  done
  base=$(median <"$tmp/baseline.times")
  store=$(median <"$tmp/store.times")
  all=$(median <"$tmp/tls.times")
  printf '| %s %s | %.2f s | %.2f s (+%.2f s) | %.2f s (+%.2f s) |\n' "$cxx" \
    "$("$cxx" -dumpversion)" "$base" "$store" "$(echo "$store - $base" | bc)" \
    "$all" "$(echo "$all - $base" | bc)"
done
