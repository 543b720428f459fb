#!/usr/bin/env bash
# Builds the newer platforms the wheels are made for and tested on, from
# Debian's archive only, into a cache outside the work tree, so a second run
# rebuilds nothing:
#
#   $TLS_PLATFORMS/pybind11/      pybind11-dev from sid, header-only: the one
#                                 pybind11 every build uses (third_party/)
#   $TLS_PLATFORMS/sid/           a Debian sid chroot: CPython 3.14 and 3.15
#                                 (with venv), Bazel 7 (bzlmod), GCC 16
#   $TLS_PLATFORMS/sid-python/    what the host builds against: each sid
#                                 interpreter's headers, and a wrapper that runs
#                                 it inside the chroot (tools/run_in_chroot.sh)
#   $TLS_PLATFORMS/python3.13t/   a free-threaded CPython 3.13 built from
#                                 trixie's source (./configure --disable-gil)
#
#   tools/setup_platforms.sh            all of the above (idempotent)
#   tools/setup_platforms.sh pybind11   the pybind11 headers only
#   tools/setup_platforms.sh --print    the cache folder
#
# TLS_PLATFORMS defaults to /var/cache/tls-platforms. Needs root (debootstrap,
# chroot, bind mounts). Times on 2 cores: pybind11 5 s, chroot ~2 min,
# 3.13t ~6 min.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${TLS_PLATFORMS:-/var/cache/tls-platforms}
mirror=${TLS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [[ ${1:-} == --print ]]; then echo "$cache"; exit 0; fi
what=${1:-all}
mkdir -p "$cache"
log() { echo "tools/setup_platforms.sh: $*" >&2; }

# side_apt SUITE ARGS... and host_packages PKG...
# shellcheck source=tools/debian_apt.sh
source tools/debian_apt.sh

# ---- pybind11 3.1 (sid), header-only ----------------------------------------
# One pybind11 for every extension: 3.x supports CPython 3.14 and free-threaded
# builds (py::mod_gil_not_used), which bookworm's 2.10 does not.
setup_pybind11() {
  local dest=$cache/pybind11
  if [[ -f $dest/include/pybind11/pybind11.h ]]; then return; fi
  log "pybind11: fetching pybind11-dev from sid"
  side_apt sid update
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && side_apt sid download pybind11-dev)
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  dpkg-deb -x "$tmp"/pybind11-dev_*.deb "$tmp/x"
  cp -r "$tmp/x/usr/include" "$dest.new/"
  dpkg-deb -f "$tmp"/pybind11-dev_*.deb Version >"$dest.new/VERSION"
  rm -rf "$tmp" "$dest"
  mv "$dest.new" "$dest"
  log "pybind11 $(cat "$dest/VERSION") in $dest"
}

# ---- the sid chroot: CPython 3.14, 3.15, Bazel 7 ----------------------------
chroot_mounts() {
  local root=$cache/sid
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  # The same paths inside as outside: the work tree, temp files, Bazel's
  # output base (under $HOME) and the cache itself.
  local d
  for d in /work /tmp "${HOME:-/root}" "$cache"; do
    [[ -d $d ]] || continue
    mkdir -p "$root$d"
    mountpoint -q "$root$d" || mount --bind "$d" "$root$d"
  done
  # And this work tree wherever it was cloned (CI clones outside /work): the
  # wheel tests and check_bzlmod.sh run in the chroot from inside it. A mount
  # left from an earlier clone at the same path (deleted since, so stale) is
  # dropped first.
  local tree=$root$PWD
  if [[ ! -e $tree/.git ]]; then
    if mountpoint -q "$tree" 2>/dev/null; then umount -l "$tree"; fi
    mkdir -p "$tree"
    mount --bind "$PWD" "$tree"
  fi
}

# What the chroot holds besides debootstrap's base: the interpreters with venv,
# Bazel 7 (examples/embedding/check_bzlmod.sh), mypy (tests/python/stubtest_test.py),
# and the interpreters' own test suites (tests/python/cpython_local_test.py runs
# their Lib/test/test_threading_local.py against tls.local).
sid_packages=(python3.15-dev python3.15-venv bazel-bootstrap pybind11-dev python3-mypy
  libpython3.14-testsuite libpython3.15-testsuite)

sid_install() {
  local root=$cache/sid missing=() p
  for p in "${sid_packages[@]}"; do
    chroot "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then return; fi
  log "sid chroot: installing ${missing[*]}"
  chroot "$root" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

setup_sid() {
  local root=$cache/sid
  if [[ -f $root/.tls-ready ]]; then chroot_mounts; sid_install; return; fi
  host_packages debootstrap
  log "sid chroot: debootstrap into $root (about 2 minutes)"
  rm -rf "$root"
  debootstrap --variant=minbase --include=python3.14-dev,python3.14-venv,g++ \
    sid "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99no-valid-until"
  echo "deb $mirror sid main" >"$root/etc/apt/sources.list"
  echo "deb $mirror experimental main" >>"$root/etc/apt/sources.list"
  chroot_mounts
  sid_install
  touch "$root/.tls-ready"
}

# What the host needs to build for a sid interpreter: its headers in one
# self-contained folder (Debian splits pyconfig.h into the multiarch folder;
# the chroot's whole usr/include must never reach the host's compiler), and a
# wrapper that runs it inside the chroot from the same working directory.
setup_sid_pythons() {
  local root=$cache/sid out=$cache/sid-python xy
  local wrapper
  wrapper=$(sed "s|@ROOT@|$root|g" tools/run_in_chroot.sh)
  for xy in 3.14 3.15; do
    local dest=$out/$xy
    if [[ -x $dest/bin/run-in-chroot ]]; then
      # Kept current: a cache made by an older work tree gets today's wrapper.
      [[ $(<"$dest/bin/run-in-chroot") == "$wrapper" ]] ||
        printf '%s\n' "$wrapper" >"$dest/bin/run-in-chroot"
      continue
    fi
    rm -rf "$dest"
    mkdir -p "$dest/include" "$dest/bin"
    cp -r "$root/usr/include/python$xy" "$dest/include/"
    cp "$root/usr/include/x86_64-linux-gnu/python$xy/pyconfig.h" "$dest/include/python$xy/pyconfig.h"
    printf '%s\n' "$wrapper" >"$dest/bin/run-in-chroot"
    printf '#!/bin/sh\n# CPython %s of the sid chroot (tools/run_in_chroot.sh)\nexec "$(dirname "$0")/run-in-chroot" /usr/bin/python%s "$@"\n' \
      "$xy" "$xy" >"$dest/bin/python$xy"
    chmod +x "$dest/bin/run-in-chroot" "$dest/bin/python$xy"
  done
}

# ---- free-threaded CPython 3.13 from trixie's source -------------------------
setup_python313t() {
  local prefix=$cache/python3.13t
  if [[ -f $prefix/.tls-ready ]]; then return; fi
  host_packages build-essential libffi-dev zlib1g-dev libssl-dev libbz2-dev liblzma-dev \
    libsqlite3-dev libncurses-dev libreadline-dev uuid-dev xz-utils
  log "python3.13t: fetching trixie's python3.13 source"
  side_apt trixie update
  local src=$cache/src-3.13
  rm -rf "$src"
  mkdir -p "$src"
  (cd "$src" && side_apt trixie source --download-only python3.13 >/dev/null)
  local tarball
  tarball=$(ls "$src"/python3.13_*.orig.tar.xz)
  tar -C "$src" -xJf "$tarball"
  local tree
  tree=$(find "$src" -maxdepth 1 -type d -name 'Python-3.13*' | head -1)
  log "python3.13t: building $(basename "$tree") with --disable-gil (about 6 minutes)"
  rm -rf "$prefix"
  (cd "$tree" &&
    ./configure --disable-gil --prefix="$prefix" --enable-shared \
      LDFLAGS="-Wl,-rpath,$prefix/lib" >"$cache/python3.13t-configure.log" 2>&1 &&
    make -j"$(nproc)" >"$cache/python3.13t-make.log" 2>&1 &&
    make install >"$cache/python3.13t-install.log" 2>&1) ||
    { log "python3.13t build failed; see $cache/python3.13t-*.log"; exit 1; }
  rm -rf "$src"
  "$prefix/bin/python3.13t" -c 'import sys; assert not sys._is_gil_enabled(); print(sys.version)' >&2
  touch "$prefix/.tls-ready"
}

case $what in
  pybind11) setup_pybind11 ;;
  all)
    setup_pybind11
    setup_sid
    setup_sid_pythons
    setup_python313t
    ;;
  *) echo "tools/setup_platforms.sh: unknown argument '$what'" >&2; exit 2 ;;
esac
