#!/usr/bin/env bash
# Runs the demo so it cannot rot: checks the story it prints, in order.
set -euo pipefail
out=$("$1")
echo "$out"
expect_in_order() {
  local rest="$out"
  for line in "$@"; do
    case "$rest" in
      *"$line"*) rest="${rest#*"$line"}" ;;
      *) echo "MISSING (or out of order): $line" >&2; exit 1 ;;
    esac
  done
}
expect_in_order \
  "[alice] thread id" "returning from the thread function" \
  "[alice] at-exit handler 2 (registered last, runs first): served 3 requests" \
  "[alice] at-exit handler 1" "[alice] connection closed automatically" \
  "[bob] at-exit handler 2 (registered last, runs first): served 5 requests" \
  "[carol] connection closed automatically" \
  "8 concurrent threads got ids" \
  "main sees key \"name\"? no" \
  "requests counted, live and ended threads: 36" \
  "live thread id" "holds 1 key(s): \"job\"" \
  "live thread id" "holds 1 key(s): \"job\"" \
  "after they ended, still: 36" \
  "main thread's at-exit handler: runs when main returns"
ids=$(grep -o 'got ids: [0-9 ]*' <<<"$out" | cut -d: -f2 | tr ' ' '\n' | grep -c .)
uniq=$(grep -o 'got ids: [0-9 ]*' <<<"$out" | cut -d: -f2 | tr ' ' '\n' | grep . | sort -u | wc -l)
[[ $ids == 8 && $uniq == 8 ]] || { echo "ids not distinct" >&2; exit 1; }
