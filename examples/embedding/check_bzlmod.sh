#!/usr/bin/env bash
# Checks that a service using Bazel 7+ (bzlmod) can embed //core through its
# MODULE.bazel: `bazel_dep(name = "tls")` and a local_path_override to this
# checkout. Makes a fresh consumer module in a temporary folder from the files
# of this folder (MODULE.bazel.consumer, BUILD.consumer, bazelrc.bzlmod.consumer,
# server.cc), builds and runs the server with Debian sid's Bazel 7
# (bazel-bootstrap) inside the chroot that tools/setup_platforms.sh makes,
# offline, and checks what it printed against expected_output.txt.
# The WORKSPACE-era counterpart for Bazel 4 on the host is check.sh.
#
# Run by .ci/run (after ./dev test-wheels, which sets the chroot up); by hand:
#   examples/embedding/check_bzlmod.sh
# About a minute on 2 cores: each run starts its own Bazel server with its own
# output root under the temporary folder (nothing shared with the host's Bazel 4,
# nothing left behind).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
platforms=${TLS_PLATFORMS:-/var/cache/tls-platforms}
root=$platforms/sid
start=$SECONDS

fail() {
  echo "check_bzlmod FAILED: $*" >&2
  exit 1
}

# tools/setup_platforms.sh installs run-in-chroot beside each sid interpreter's
# wrapper; any one of them will do.
run_in_chroot=
for f in "$platforms"/sid-python/*/bin/run-in-chroot; do
  [[ -x $f ]] && run_in_chroot=$f && break
done
if [[ -z $run_in_chroot || ! -x $root/usr/bin/bazel ]]; then
  fail "no Debian sid chroot with Bazel 7 at $root (looked for $root/usr/bin/bazel and
  $platforms/sid-python/*/bin/run-in-chroot): run tools/setup_platforms.sh first
  (as root, about 2 minutes; tools/setup.sh --platforms and ./dev test-wheels run it)"
fi

ws=$(mktemp -d "${TMPDIR:-/tmp}/tls-embed-bzlmod.XXXXXX")
consumer=$ws/service
out_root=$ws/bazel-root # Bazel 7's own output root: never the host's Bazel 4 one
bazel=(bazel --output_user_root="$out_root" --max_idle_secs=300)
cleanup() {
  cd /
  if [[ -d $consumer ]]; then
    (cd "$consumer" && "$run_in_chroot" "${bazel[@]}" shutdown >/dev/null 2>&1) || true
  fi
  rm -rf "$ws"
}
trap cleanup EXIT

# The chroot sees the host's /work, /tmp and $HOME at the same paths only while
# tools/setup_platforms.sh's bind mounts are up (they do not outlive a reboot).
if [[ ! $ws -ef $root$ws ]]; then
  fail "$ws is not visible inside the chroot at the same path (the bind mounts
  are down): run tools/setup_platforms.sh, which mounts them again"
fi

# The module the consumer points at: this checkout if the chroot sees it at the
# same path, else a copy of its files (e.g. a CI clone outside the mounts).
tls=$repo
if [[ ! $repo -ef $root$repo ]]; then
  tls=$ws/tls
  mkdir "$tls"
  tar -C "$repo" --exclude=./.git --exclude='./bazel-*' -cf - . | tar -C "$tls" -xf -
  echo "check_bzlmod: $repo is not visible inside the chroot; using a copy in $tls"
fi

mkdir "$consumer"
sed "s|@TLS_PATH@|$tls|" "$here/MODULE.bazel.consumer" >"$consumer/MODULE.bazel"
sed "s|@TLS_PATH@|$tls|g" "$here/bazelrc.bzlmod.consumer" >"$consumer/.bazelrc"
cp "$here/BUILD.consumer" "$consumer/BUILD"
cp "$here/server.cc" "$consumer/"

cd "$consumer"
version=$("$run_in_chroot" bazel --version 2>&1) || fail "bazel --version inside the chroot: $version"
if [[ $version != "bazel 7."* && $version != "bazel 8."* && $version != "bazel 9."* ]]; then
  fail "the chroot's Bazel is '$version', not Bazel 7 or later (bzlmod)"
fi

log=$ws/bazel.log
if ! result=$("$run_in_chroot" "${bazel[@]}" run --noshow_progress --ui_event_filters=-info //:server 2>"$log"); then
  echo "--- bazel run //:server (Bazel ${version#bazel }, in the chroot): last lines of its log" >&2
  grep -v '^$' "$log" | tail -30 >&2
  fail "bazel run //:server failed in the bzlmod consumer (MODULE.bazel: bazel_dep tls +
  local_path_override to $tls); its log is above"
fi
echo "$result"
expected=$(cat "$here/expected_output.txt")
if [[ $result != "$expected" ]]; then
  echo "expected:" >&2
  echo "$expected" >&2
  fail "the server built with Bazel ${version#bazel } (bzlmod) printed something else (above)"
fi
echo "embedding check (bzlmod): OK (@tls//core through MODULE.bazel, Bazel ${version#bazel }, offline, $((SECONDS - start)) s)"
