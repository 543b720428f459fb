#!/usr/bin/env bash
# Runs the request fan-out example so it cannot rot, and checks what it
# promises: every part logs with its request's ID and sees the connection open,
# though the request answered without waiting for it;
# each part's scratch is closed; each connection is closed exactly once, after
# the request's last part; nothing is left on the pool's threads or on main.
set -euo pipefail
out=$("$1")
echo "$out"
fail() { echo "FAILED: $*" >&2; exit 1; }
count() { grep -c -- "$1" <<<"$out" || true; }

for req in req-7:4 req-8:2; do
  id=${req%%:*} parts=${req##*:}
  [[ $(count "^\[$id\] part .* on a pool thread, connection open$") == "$parts" ]] ||
    fail "$id: expected $parts parts logging with the request ID and seeing the connection"
  [[ $(count "^\[$id\] scratch of part [0-9]* closed$") == "$parts" ]] ||
    fail "$id: expected $parts scratch values closed, each in its own task"
  [[ $(count "^\[$id\] connection to db-1 closed$") == 1 ]] ||
    fail "$id: the connection must be closed exactly once"
  last_part=$(grep -n "^\[$id\] part " <<<"$out" | tail -1 | cut -d: -f1)
  closed=$(grep -n "^\[$id\] connection to db-1 closed$" <<<"$out" | cut -d: -f1)
  answered=$(grep -n "^\[$id\] answered, not waiting for its parts$" <<<"$out" | cut -d: -f1)
  [[ -n $answered ]] || fail "$id: the request did not answer"
  ((closed > last_part)) || fail "$id: connection closed before its last part"
done
[[ $(count "connection \(missing\|closed\)") == 0 ]] || fail "a part did not see its request's connection open"
grep -q "^\[no request\] plain pool task: scratch gone$" <<<"$out" || fail "a task's value leaked onto a pool thread"
grep -q "^\[no request\] main: request values gone$" <<<"$out" || fail "request values leaked onto main"
echo "PASS"
