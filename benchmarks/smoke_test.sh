#!/usr/bin/env bash
# Runs each benchmark binary once, as briefly as it allows (see BUILD).
set -euo pipefail
tls_bench=$1
thread_cost=$2
thread_cost_without_registry=$3
churn_bench=$4
churn_bench_without_registry=$5
table_bench=$6
reset_bench=$7

# The 1,000,000-key cases take most of a second to fill, and the 1,000 parked
# threads of the Read cases are started for every timing pass; the rest is quick.
"$tls_bench" --benchmark_min_time=0.0001 --benchmark_filter='-(keys:1000000|threads:1000)$' >/dev/null
"$thread_cost" loop stub 3
"$thread_cost" loop boost 3
"$thread_cost" rss value 50 | grep -q '^rss_kib_per_thread value '
"$thread_cost_without_registry" loop stub 3
"$thread_cost_without_registry" rss value 50 | grep -q '^rss_kib_per_thread value '
# Each checks at start-up that it is linked with the engine its benchmark names say.
out=$("$churn_bench" --benchmark_min_time=0.0001)
grep -q '^BM_Churn_Tls_WithRegistry' <<<"$out"
out=$("$churn_bench_without_registry" --benchmark_min_time=0.0001)
grep -q '^BM_Churn_Tls_WithoutRegistry' <<<"$out"
# The key table's modes at small N (the 1,000,000-key cases take seconds to fill).
out=$("$table_bench" probes 256)
grep -q '^probes_hit_worst.string ' <<<"$out"
out=$("$table_bench" memory 1000)
grep -q '^store_bytes_per_key.1000 ' <<<"$out"
for mode in keys find load; do
  out=$("$table_bench" lines 1000 100 "$mode")
  grep -q "^lines $mode" <<<"$out"
done
out=$("$table_bench" --table_keys=4096 --benchmark_min_time=0.0001)
grep -q '^BM_Tls_FindDependentAtN/keys:4096 ' <<<"$out"
out=$("$table_bench" flood 2000)
grep -q '^flood.crafted_ns_per_key ' <<<"$out"
out=$("$reset_bench" 1000 2)
grep -q '^reset.last_ns ' <<<"$out"
echo "PASS"
