#!/usr/bin/env bash
# Checks what a shared libtls-core exports (nm -D): exactly the symbols listed
# in exported_symbols.txt (the public API, plus the internals that the headers'
# templates call), all inside the versioned namespace tls::v3; anything else
# may only be the standard library's own inline objects. A symbol exported by
# mistake, or an API function that lost its TLS_API, fails here.
#   tests/abi/check_exports.sh <path to libtls-core.so>
set -euo pipefail
lib=${1:?usage: check_exports.sh <libtls-core.so>}
here=$(cd "$(dirname "$0")" && pwd)
expected="$here/exported_symbols.txt"

# Lower-case b/d/r/t are local symbols (gold lists a hidden thread_local's there
# for its relocations): defined, not exported.
exported=$(nm -D --defined-only "$lib" | awk '$2 !~ /^[bdrt]$/ { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' |
  c++filt | LC_ALL=C sort)
ours_re='^((typeinfo name|typeinfo|vtable) for )?tls::'
ours=$(grep -E "$ours_re" <<<"$exported" || true)
others=$(grep -Ev "$ours_re" <<<"$exported" | grep -Ev '^([^(]* )?std::' || true)
want=$(grep -v '^#' "$expected" | grep -v '^$' | LC_ALL=C sort)

status=0
if [[ $ours != "$want" ]]; then
  echo "exported symbols of $lib differ from $expected (- expected, + exported):" >&2
  diff <(echo "$want") <(echo "$ours") >&2 || true
  status=1
fi
if [[ -n $others ]]; then
  echo "exported outside namespace tls (only std:: inline objects are allowed):" >&2
  echo "$others" >&2
  status=1
fi
unversioned=$(grep -Ev '^((typeinfo name|typeinfo|vtable) for )?tls::v3::' <<<"$ours" || true)
if [[ -n $unversioned ]]; then
  echo "exported outside the ABI namespace tls::v3:" >&2
  echo "$unversioned" >&2
  status=1
fi
[[ $status == 0 ]] || exit 1
echo "exported symbols: OK ($(grep -c . <<<"$ours") in tls::v3, as listed in tests/abi/exported_symbols.txt)"
