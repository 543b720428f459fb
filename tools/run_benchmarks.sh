#!/usr/bin/env bash
# Runs the benchmark suite and prints one markdown table: every
# target, the engine's figure, the peer's, their ratio, and whether it is met.
# `./dev bench` calls this.
#
#   tools/run_benchmarks.sh            full run: 5 repetitions, medians
#   tools/run_benchmarks.sh --quick    1 repetition, short timings (a smoke run)
#   tools/run_benchmarks.sh --python-only   only the Python rows (the default
#                                      python3's wheel, then the free-threaded
#                                      3.13t's), without the C++ benchmarks;
#                                      combines with --quick
#
# Ratios are taken within one run: absolute times drift on a shared machine,
# ratios hold. Environment:
#   BENCH_REPETITIONS   repetitions per benchmark (default 5; --quick: 1)
#   BENCH_OUT           directory for the raw results (default: a fresh temp dir)
#   BENCH_BAZEL_STARTUP extra Bazel startup options, e.g.
#                       "--output_user_root=/tmp/bazel-bench"
#   BENCH_JOBS          Bazel --jobs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 python_only=0
while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --python-only) python_only=1; shift ;;
    *) echo "run_benchmarks: unknown argument '$1' (--quick, --python-only)" >&2; exit 2 ;;
  esac
done

reps=${BENCH_REPETITIONS:-$((quick ? 1 : 5))}
min_time=$([[ $quick == 1 ]] && echo 0.01 || echo 0.5)
threads=$([[ $quick == 1 ]] && echo 1000 || echo 10000)
out=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tls-bench.XXXXXX")}
mkdir -p "$out"
# shellcheck disable=SC2206
bazel=(bazel ${BENCH_BAZEL_STARTUP:-})
build_flags=(--config=bench --symlink_prefix=/ "--jobs=${BENCH_JOBS:-2}")

log() { echo "run_benchmarks: $*" >&2; }

extra="$out/extra.txt"
churn_json=()
# Sections 1-4, the C++ benchmarks (not indented, to keep their history).
if [[ $python_only == 0 ]]; then
log "building (--config=bench)"
"${bazel[@]}" build "${build_flags[@]}" //benchmarks:tls_bench //benchmarks:thread_cost \
  //benchmarks:thread_cost_without_registry //benchmarks:churn_bench \
  //benchmarks:churn_bench_without_registry //benchmarks:table_bench //benchmarks:reset_bench >&2
bin=$("${bazel[@]}" info "${build_flags[@]}" bazel-bin 2>/dev/null)/benchmarks

# 1. Google Benchmark: the engine and every peer in one process.
log "tls_bench: $reps repetitions (results in $out)"
"$bin/tls_bench" \
  --benchmark_repetitions="$reps" \
  --benchmark_report_aggregates_only=true \
  --benchmark_min_time="$min_time" \
  --benchmark_out="$out/tls_bench.json" \
  --benchmark_out_format=json >&2

# 1b. The Rust peer of the walks (benchmarks/rust_peer): the thread_local
# crate from Debian's librust-thread-local-dev, built offline with cargo.
# Without cargo or the crate its rows say "not run".
rust_json=()
if command -v cargo >/dev/null && compgen -G "/usr/share/cargo/registry/thread_local-*" >/dev/null; then
  log "rust_peer: building offline, $reps repetitions"
  printf '%s\n' '[source.crates-io]' 'replace-with = "debian"' '[source.debian]' \
    'directory = "/usr/share/cargo/registry"' '[net]' 'offline = true' >"$out/cargo-config.toml"
  if (cd benchmarks/rust_peer && cargo --config "$out/cargo-config.toml" build --release -q \
      --target-dir "$out/rust_peer_target" >&2); then
    "$out/rust_peer_target/release/tls_rust_peer" "$reps" "$min_time" >"$out/rust_peer.json"
    rust_json=("$out/rust_peer.json")
  else
    log "rust_peer: did not build; its rows say not run"
  fi
else
  log "rust_peer: no cargo or no librust-thread-local-dev (tools/setup.sh --bench); its rows say not run"
fi

# The key table against its floor: lookups at 1,000,000 keys vs
# random loads and a pointer chase over the same bytes, the repetitions of all
# interleaved in random order, so that drift (other users' memory traffic, on a
# shared machine) hits each alike.
log "table_bench: $reps repetitions, interleaved"
"$bin/table_bench" \
  --benchmark_repetitions="$reps" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true \
  --benchmark_min_time="$min_time" \
  --benchmark_out="$out/table_bench.json" \
  --benchmark_out_format=json >&2

: >"$extra"

# Probe lengths and bytes per key of the key table: no timing.
log "table_bench probes, memory"
# Probe lengths depend on the hash's per-process secret (core/key.h): seven
# processes, seven secrets; tools/bench_table.py takes the median of each figure.
for _ in 1 2 3 4 5 6 7; do "$bin/table_bench" probes >>"$extra"; done
"$bin/table_bench" memory >>"$extra"
# Hash flooding: 50,000 keys crafted against the old public seeds
# vs random keys, Set + Find + Reset, timed in ABBA rounds.
log "table_bench flood"
"$bin/table_bench" flood >>"$extra"
# Add + Reset on a Counter made after 100,000 others vs one made first.
log "reset_bench"
"$bin/reset_bench" >>"$extra"

# 2. RSS per live thread (64 KiB stacks), each mode in its own process, the
#    median of 3 runs. value_without_registry: one value, on the engine built
#    without the registry of stubs (benchmarks/BUILD).
for mode in bare value value_without_registry pthread boost; do
  binary=thread_cost
  if [[ $mode == *_without_registry ]]; then binary=thread_cost_without_registry; fi
  runs=()
  for _ in 1 2 3; do
    runs+=("$("$bin/$binary" rss "${mode%_without_registry}" "$threads" | awk '{print $3}')")
  done
  median=$(printf '%s\n' "${runs[@]}" | sort -g | sed -n 2p)
  log "rss $mode: ${runs[*]} KiB/thread"
  echo "rss_kib_per_thread.$mode $median" >>"$extra"
done

# 3. User-space instructions per thread create+join, from callgrind totals at
#    two thread counts (start-up cancels out). Exact and repeatable.
#    stub_without_registry: the same on the engine without the registry.
if command -v valgrind >/dev/null; then
  n1=100 n2=300
  for mode in bare stub stub_without_registry boost; do
    binary=thread_cost
    if [[ $mode == *_without_registry ]]; then binary=thread_cost_without_registry; fi
    total() {
      valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin/$binary" loop \
        "${mode%_without_registry}" "$1" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    }
    a=$(total $n1) b=$(total $n2)
    per=$(( (b - a) / (n2 - n1) ))
    log "callgrind $mode: $per instructions/thread"
    echo "instructions_per_thread.$mode $per" >>"$extra"
  done

  # Cache lines a random-key tls::Find touches at 1,000,000 keys: cachegrind's
  # D1 and LL read misses of the lookups minus those of the same run without
  # them (keys made, not looked up), per lookup; and the same for one random
  # 8-byte load over a buffer the table's size (the floor, ~1). Explicit caches
  # smaller than the table, so the figure does not depend on the host. ~40 s.
  lookups=200000
  misses() {  # mode -> "D1 LL" read misses
    valgrind --tool=cachegrind --cache-sim=yes --D1=32768,8,64 --LL=4194304,16,64 \
      --cachegrind-out-file=/dev/null "$bin/table_bench" lines 1000000 "$lookups" "$1" 2>&1 |
      sed -n 's/.*\(D1\|LLd\) *misses:.*( *\([0-9,]*\) rd.*/\2/p' | tr -d , | tr '\n' ' '
  }
  read -r d1_keys ll_keys <<<"$(misses keys)"
  for mode in find load; do
    read -r d1 ll <<<"$(misses "$mode")"
    d1_per=$(awk -v a="$d1" -v b="$d1_keys" -v n="$lookups" 'BEGIN { printf "%.3f", (a - b) / n }')
    ll_per=$(awk -v a="$ll" -v b="$ll_keys" -v n="$lookups" 'BEGIN { printf "%.3f", (a - b) / n }')
    log "cachegrind $mode: $d1_per D1, $ll_per LL lines per lookup"
    echo "lines_per_lookup_1m.$mode $d1_per" >>"$extra"
    echo "ll_lines_per_lookup_1m.$mode $ll_per" >>"$extra"
  done
else
  log "valgrind not found: instruction counts and lines per lookup skipped"
fi

# 4. Thread churn with and without the registry of stubs: one source
#    built on each engine (benchmarks/churn_bench.cc), the two binaries run
#    alternately, one repetition each time, so that drift hits both alike;
#    bench_table.py takes the medians over the runs.
log "churn: $reps alternating runs of each engine"
for i in $(seq "$reps"); do
  for binary in churn_bench churn_bench_without_registry; do
    # Google Benchmark's banner each time would bury the log: kept unless it fails.
    if ! "$bin/$binary" --benchmark_min_time="$min_time" --benchmark_out="$out/$binary.$i.json" \
      --benchmark_out_format=json >/dev/null 2>"$out/$binary.$i.log"; then
      cat "$out/$binary.$i.log" >&2
      exit 1
    fi
    churn_json+=("$out/$binary.$i.json")
  done
done
fi  # the C++ benchmarks (--python-only skips them)

# 5. Python: the shipped wheel (optimised and stripped whatever the flags, see
#    python/BUILD) of the default python3, installed into a fresh venv.
py_json=()
py=${PYTHON_BIN_PATH:-python3}  # the interpreter @local_python made //python:wheel for
#    The floor rows' `tls_floor` (benchmarks/floor_ext, built for the same
#    python3) goes on the benchmark's PYTHONPATH only, not into the venv.
#    @local_python is looked for again first (as tools/wheels.sh does): the
#    free-threaded 3.13t of section 6 may have been built since.
"${bazel[@]}" sync --only=local_python >/dev/null 2>&1 || true
if [[ -f benchmarks/python_bench.py ]] &&
  "${bazel[@]}" build --symlink_prefix=/ "--jobs=${BENCH_JOBS:-2}" //python:wheels //python:wheel_list \
    //benchmarks/floor_ext //benchmarks/cross_ext >/dev/null 2>&1; then
  pybin="$("${bazel[@]}" info bazel-bin 2>/dev/null)/python"
  floor_dir="$(dirname "$pybin")/benchmarks/floor_ext:$(dirname "$pybin")/benchmarks/cross_ext"
  tag=$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  wheel="$pybin/$(grep -- "-$tag-$tag-" "$pybin/wheels.txt")"  # this build's name, not a stale one
  rm -rf "$out/venv"
  "$py" -m venv "$out/venv" &&
    PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$out/venv/bin/python" -m pip install -q --no-index "$wheel" >&2
  log "python_bench: $reps repetitions, $(basename "$wheel") in a venv"
  quick_flag=()
  if [[ $quick == 1 ]]; then quick_flag=(--quick); fi
  (cd "$out" && PYTHONPATH="$floor_dir" venv/bin/python "$OLDPWD/benchmarks/python_bench.py" \
    --repetitions "$reps" "${quick_flag[@]}") >"$out/python_bench.json"
  py_json=(--python "$out/python_bench.json")
else
  log "python: //python:wheel does not build; Python benchmarks skipped"
fi

# 6. Free-threaded CPython 3.13t: its cp313t wheel (built with the
#    others above) in a fresh venv of the python3.13t @local_python found,
#    `python_bench.py --free-threaded`: 2 threads vs 1 against a plain
#    per-thread dict, and tls vs threading.local on one thread.
if [[ -n ${pybin:-} ]]; then
  pythons="$("${bazel[@]}" info output_base 2>/dev/null)/external/local_python/pythons.txt"
  ft_py=$(awk '$1 == "3.13t" && $2 == "cp313t" {print $4}' "$pythons" 2>/dev/null || true)
  ft_wheel=$(grep -- "-cp313t-" "$pybin/wheels.txt" || true)
  if [[ -z $ft_py || -z $ft_wheel ]]; then
    log "python 3.13t: no free-threaded CPython 3.13t found (tools/setup_platforms.sh builds one); its rows skipped"
  else
    rm -rf "$out/venv-3.13t"
    "$ft_py" -m venv "$out/venv-3.13t" &&
      PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$out/venv-3.13t/bin/python" -m pip install \
        -q --no-index "$pybin/$ft_wheel" >&2
    log "python_bench --free-threaded: $ft_wheel in a venv of $ft_py"
    (cd "$out" && venv-3.13t/bin/python "$OLDPWD/benchmarks/python_bench.py" --free-threaded \
      "${quick_flag[@]}") >"$out/python_ft_bench.json"
    py_json+=(--python-ft "$out/python_ft_bench.json")
  fi
else
  log "python 3.13t: the wheels did not build; its rows skipped"
fi

if [[ $python_only == 1 ]]; then
  python3 tools/bench_table.py "${py_json[@]}"
else
  python3 tools/bench_table.py "$out/tls_bench.json" "$out/table_bench.json" "${rust_json[@]}" \
    --extra "$extra" --runs "${churn_json[@]}" "${py_json[@]}"
fi
