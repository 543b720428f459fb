#!/usr/bin/env bash
# Runs each benchmark binary once, as briefly as it allows (see BUILD).
set -euo pipefail
tls_bench=$1
thread_cost=$2

# The 1,000,000-key cases take most of a second to fill; the rest is quick.
"$tls_bench" --benchmark_min_time=0.0001 --benchmark_filter='-keys:1000000$' >/dev/null
"$thread_cost" loop stub 3
"$thread_cost" loop boost 3
"$thread_cost" rss value 50 | grep -q '^rss_kib_per_thread value '
echo "PASS"
