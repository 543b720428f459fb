#!/usr/bin/env python3
"""The Python side of the benchmark suite (issue 4): `tls` and its peers,
timed with timeit in one process, in one run.

Prints JSON {measure: ns per operation} on stdout (the median of the
repetitions); tools/run_benchmarks.sh hands it to tools/bench_table.py.
Every figure includes the same timeit loop overhead (a few ns), so ratios are
slightly compressed towards 1 for the cheapest operations.

The floor rows (issue 12) time `tls.get('k')` / `tls.set('k', 1)` against the
same calls on `tls_floor` (benchmarks/floor_ext: a minimal C extension, a dict
in a C thread_local), both through the module attribute as users write them.
Each pair runs in many short rounds, the two sides alternating (ABBA, so that
drift within a round hits both alike), timed in thread CPU time (time spent
preempted by other work on a shared machine does not count); the JSON has
each side's median, the median of the per-round ratios and their quartiles. Without `tls_floor` on
the path those rows are left out.

Run: python benchmarks/python_bench.py, with a python that imports tls (./dev bench:
a venv with the shipped wheel installed, and tls_floor on PYTHONPATH)
"""

import argparse
import concurrent.futures
import contextvars
import json
import statistics
import sys
import threading
import time
import timeit

import tls

try:
    import tls_floor
except ImportError:  # run by hand without benchmarks/floor_ext on the path
    tls_floor = None
if tls_floor is not None and tls_floor.built_for != sys.hexversion >> 16:
    print(f"python_bench: tls_floor was built for another CPython ({tls_floor.built_for:#x})",
          file=sys.stderr)
    tls_floor = None

# The floor pairs: (name, tls statement, floor statement). `tls` and `floor`
# are module globals of the timed code, as in a user's module.
# get_kw: the floor's get with tls.get's signature (key, /, default=None), for
# the part of the gap that is CPython's call of such a function (no target).
FLOOR_PAIRS = [
    ("get", "tls.get('k')", "floor.get('k')"),
    ("set", "tls.set('k', 1)", "floor.set('k', 1)"),
    ("get_kw", "tls.get('k')", "floor.get_kw('k')"),
]


def noop():
    pass


def thread_with_tls():
    tls.set("k", 1)
    tls.at_exit(noop)


def start_join(target):
    t = threading.Thread(target=target)
    t.start()
    t.join()


def quartiles(values):
    """(lower quartile, median, upper quartile) of `values`."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def time_floor_pairs(rounds, n):
    """{key: value} for the floor rows: per pair ("mine / theirs"), the median
    per-round ratio tls/floor with its quartiles and range, and each side's
    median ns; and the empty loop's ns (timeit's own cost, in both sides)."""
    env = {"tls": tls, "floor": tls_floor}
    for i in range(8):  # the same 9 keys in both dicts (main() set tls's key0..key7)
        tls_floor.set(f"key{i}", i)
    tls.set("k", 1)
    tls_floor.set("k", 1)

    def ns(stmt):
        return timeit.timeit(stmt, globals=env, number=n, timer=time.thread_time) / n * 1e9

    loop = []
    samples = {name: ([], [], []) for name, _, _ in FLOOR_PAIRS}  # tls ns, floor ns, ratios
    for r in range(rounds):
        loop.append(ns("pass"))
        for name, mine, theirs in FLOOR_PAIRS:
            # ABBA or BAAB: each side runs once early and once late in the round.
            order = (mine, theirs, theirs, mine) if r % 2 == 0 else (theirs, mine, mine, theirs)
            t = {mine: 0.0, theirs: 0.0}
            for stmt in order:
                t[stmt] += ns(stmt) / 2
            a_ns, b_ns, ratios = samples[name]
            a_ns.append(t[mine])
            b_ns.append(t[theirs])
            ratios.append(t[mine] / t[theirs])
    out = {"empty timeit loop": statistics.median(loop)}
    for name, mine, theirs in FLOOR_PAIRS:
        a_ns, b_ns, ratios = samples[name]
        q1, q2, q3 = quartiles(ratios)
        out[f"{mine} / {theirs}"] = {
            "median": q2, "q1": q1, "q3": q3, "min": min(ratios), "max": max(ratios),
            "rounds": rounds, "mine_ns": statistics.median(a_ns),
            "theirs_ns": statistics.median(b_ns)}
        print(f"python_bench: {mine} {statistics.median(a_ns):.1f} ns, {theirs} "
              f"{statistics.median(b_ns):.1f} ns: {q2:.3f}x (quartiles {q1:.3f}-{q3:.3f}, "
              f"range {min(ratios):.3f}-{max(ratios):.3f}, {rounds} rounds; empty loop "
              f"{out['empty timeit loop']:.1f} ns)", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--floor-only", action="store_true", help="only the floor pairs")
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
    if args.floor_only:
        cases = []
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
    if tls_floor is None:
        print("python_bench: tls_floor not importable: floor rows left out", file=sys.stderr)
    else:
        results.update(time_floor_pairs(rounds=5 if args.quick else 31,
                                         n=20_000 if args.quick else 200_000))
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
