#!/bin/sh
# Runs a command inside the sid chroot at @ROOT@, from the same working
# directory: tools/setup_platforms.sh bind-mounts /work, /tmp, $HOME, its
# cache and the work tree it runs from at the same paths inside, so paths
# mean the same on both sides. sid's binaries need sid's glibc: this is how
# the host runs them. Installed by
# tools/setup_platforms.sh as $TLS_PLATFORMS/sid-python/X.Y/bin/run-in-chroot,
# next to the pythonX.Y wrapper that calls it.
#
#   run-in-chroot /usr/bin/python3.14 -c 'import sys; print(sys.version)'
#   run-in-chroot /tmp/venv/bin/python -m pip --version   (a venv made in the chroot)
# The chroot's own PATH: the host's (pyenv's shims, say) names host binaries.
if [ ! -d "@ROOT@$PWD" ]; then
  echo "run-in-chroot: $PWD is not visible inside @ROOT@; tools/setup_platforms.sh run from this work tree bind-mounts it" >&2
  exit 2
fi
exec env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  chroot @ROOT@ /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$PWD" "$@"
