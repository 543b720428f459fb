#!/usr/bin/env python3
"""The Python side of the benchmark suite (issue 4): `tls` and its peers,
timed with timeit in one process, in one run.

Prints JSON {measure: ns per operation} on stdout (the median of the
repetitions); tools/run_benchmarks.sh hands it to tools/bench_table.py.
Every figure includes the same timeit loop overhead (a few ns), so ratios are
slightly compressed towards 1 for the cheapest operations.

Run: python benchmarks/python_bench.py, with a python that imports tls (./dev bench:
a venv with the shipped wheel installed)
"""

import argparse
import concurrent.futures
import contextvars
import json
import statistics
import sys
import threading
import timeit

import tls


def noop():
    pass


def thread_with_tls():
    tls.set("k", 1)
    tls.at_exit(noop)


def start_join(target):
    t = threading.Thread(target=target)
    t.start()
    t.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    tl = threading.local()
    tl.x = 1
    tl.d = {f"key{i}": i for i in range(8)}
    for i in range(8):
        tls.set(f"key{i}", i)
    cv = contextvars.ContextVar("cv")
    cv.set(1)
    # One worker each: submit+result is a round trip to the same thread.
    tls_pool = tls.ThreadPoolExecutor(max_workers=1)
    plain_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    copy_context = contextvars.copy_context

    env = {
        "tl": tl,
        "k": "key3",
        "v": 7,
        "get": tls.get,
        "set_": tls.set,
        "id_": tls.id,
        "get_ident": threading.get_ident,
        "cv": cv,
        "start_join": start_join,
        "noop": noop,
        "thread_with_tls": thread_with_tls,
        "tls_pool": tls_pool,
        "plain_pool": plain_pool,
        "copy_context": copy_context,
        "wrap": tls.wrap,
        "snapshot": tls.capture(),
    }
    fast_n = 20_000 if args.quick else 1_000_000
    thread_n = 50 if args.quick else 2_000
    pool_n = 200 if args.quick else 5_000
    cases = [
        ("tls.get", "get(k)", fast_n),
        ("threading.local dict lookup", "tl.d[k]", fast_n),
        ("threading.local attr get", "tl.x", fast_n),
        ("tls.set", "set_(k, v)", fast_n),
        ("threading.local attr set", "tl.x = v", fast_n),
        ("tls.id", "id_()", fast_n),
        ("threading.get_ident", "get_ident()", fast_n),
        ("ContextVar.get", "cv.get()", fast_n),
        ("thread bare", "start_join(noop)", thread_n),
        ("thread with tls", "start_join(thread_with_tls)", thread_n),
        # A task to a pool and its result, from a thread holding 8 tls values.
        ("tls.ThreadPoolExecutor submit+result", "tls_pool.submit(noop).result()", pool_n),
        ("ThreadPoolExecutor submit(copy_context().run)+result",
         "plain_pool.submit(copy_context().run, noop).result()", pool_n),
        ("ThreadPoolExecutor submit+result", "plain_pool.submit(noop).result()", pool_n),
        # The same tasks without the pool's thread hop (CPU only, no wake-up).
        ("tls.wrap(f)()", "wrap(noop)()", fast_n // 10),
        ("copy_context().run(f)", "copy_context().run(noop)", fast_n // 10),
        ("snapshot.run(f)", "snapshot.run(noop)", fast_n // 10),
        ("f()", "noop()", fast_n // 10),
    ]
    results = {}
    # Interleave the repetitions so a burst of load on the machine hits every
    # case, not just one.
    samples = {name: [] for name, _, _ in cases}
    for _ in range(args.repetitions):
        for name, stmt, n in cases:
            t = timeit.timeit(stmt, globals=env, number=n)
            samples[name].append(t / n * 1e9)
    tls_pool.shutdown()
    plain_pool.shutdown()
    for name, values in samples.items():
        results[name] = statistics.median(values)
        if len(values) > 1:  # spread between repetitions, as Google Benchmark's cv
            results[name + " cv"] = statistics.stdev(values) / statistics.mean(values)
        print(f"python_bench: {name}: {results[name]:.1f} ns", file=sys.stderr)
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
