# Sourced by tools/setup_platforms.sh and tools/tsan_python.sh: Debian's
# archive from a bookworm host. Needs $cache, $mirror and a log function.

sudo=()
if [[ $(id -u) != 0 ]]; then sudo=(sudo); fi

# apt with its own sources list, lists and cache: newer suites never enter the
# host's own sources (their libraries would replace bookworm's).
side_apt() {
  local suite=$1
  shift
  local dir=$cache/apt-$suite
  mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  cat >"$dir/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main
EOF
  apt-get -qq -o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir" \
    -o Dir::Cache::archives="$dir/archives" -o Acquire::Check-Valid-Until=false \
    -o APT::Sandbox::User=root "$@"
}

host_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
