#!/usr/bin/env bash
# Checks that a service in ANOTHER Bazel workspace can embed //core: copies
# the consumer files of this folder into a fresh workspace that points at this
# checkout, builds and runs the server, and checks what it printed.
# Run by .ci/run; by hand: examples/embedding/check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ws=$(mktemp -d "${TMPDIR:-/tmp}/tls-embed.XXXXXX")
trap 'cd /; (cd "$ws" && bazel shutdown >/dev/null 2>&1) || true; rm -rf "$ws"' EXIT

sed "s|@TLS_PATH@|$repo|" "$here/WORKSPACE.consumer" >"$ws/WORKSPACE"
cp "$here/BUILD.consumer" "$ws/BUILD"
cp "$here/bazelrc.consumer" "$ws/.bazelrc"
cp "$here/server.cc" "$ws/"

out=$(cd "$ws" && bazel run --ui_event_filters=-info --noshow_progress //:server 2>/dev/null)
echo "$out"
expected=$(cat "$here/expected_output.txt")
if [[ $out != "$expected" ]]; then
  echo "embedding check FAILED: expected:" >&2
  echo "$expected" >&2
  exit 1
fi
echo "embedding check: OK (@tls//core from another workspace)"
