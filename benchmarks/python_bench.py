#!/usr/bin/env python3
"""The Python side of the benchmark suite: `tls` and its peers,
timed with timeit in one process, in one run.

Prints JSON {measure: ns per operation} on stdout (the median of the
repetitions); tools/run_benchmarks.sh hands it to tools/bench_table.py.
Every figure includes the same timeit loop overhead (a few ns), so ratios are
slightly compressed towards 1 for the cheapest operations.

The floor rows time `tls.get('k')` / `tls.set('k', 1)` against the
same calls on `tls_floor` (benchmarks/floor_ext: a minimal C extension, a dict
in a C thread_local), both through the module attribute as users write them.
Each pair runs in many short rounds, the two sides alternating (ABBA, so that
drift within a round hits both alike), timed in thread CPU time (time spent
preempted by other work on a shared machine does not count); the JSON has
each side's median, the median of the per-round ratios and their quartiles. Without `tls_floor` on
the path those rows are left out.

--free-threaded (run on a free-threaded CPython, 3.13t) times only
the rows of that build, in the same rounds-and-medians way:
- tls.local against threading.local (LOCAL_PAIRS; also run on the default
  python3);
- scaling: N ops of `tls.get('k')` / `tls.set('k', 1)` on each of 2 threads
  started together (a barrier; wall time from the first thread's start to the
  last one's end) over the same N ops on 1 thread, and the same for the
  control, a plain dict of the thread's own (`d = {}` in the thread, then
  `d['k']` / `d['k'] = 1`); and, to check the method, a dict both threads
  write (`shared['k'] = 1`) against the same control. Each thread runs its own loop of the statement
  written out 10 times (the loop's own cost, which scales, matters less), on a
  fresh thread whose store (or dict) exists before the barrier. Each side's N
  is calibrated so that its 1-thread run takes about the same time. A round
  runs tls 1T, tls 2T, control 1T, control 2T and then the reverse (ABBA;
  every other round starts with the control); the JSON has each side's median
  2T/1T ratio and the median of the per-round quotients tls/control with
  quartiles. Wall time, so load from other work on the machine shows in it:
  the medians and the quotient (both sides share the round) are what hold.
- single thread: `tls.get('k')` / `tls.set('k', 1)` vs `tl.x` / `tl.x = 1`
  on a `threading.local`, the floor pairs' way (ABBA, thread CPU time).
The JSON also says whether the GIL was on (`sys._is_gil_enabled()`), which
would make the scaling rows meaningless.

Run: python benchmarks/python_bench.py, with a python that imports tls (./dev bench:
a venv with the shipped wheel installed, and tls_floor on PYTHONPATH; and
python3.13t's venv with the cp313t wheel, with --free-threaded)
"""

import argparse
import concurrent.futures
import contextvars
import json
import os
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


try:  # benchmarks/cross_ext, on the path beside tls_floor (./dev bench)
    import tls_cross
    import tls_cross_static
except ImportError:
    tls_cross = tls_cross_static = None

# Reads across the language line (docs/python-cpp.md), paired the floor pairs'
# way. The C++ sides are loops of CROSS_LOOP reads inside the extension
# (benchmarks/cross_ext/cross.cc), reported per read:
# - a C++ tls::Get<std::string>("py") of what Python stored with tls.cpp.set,
#   vs the same read of what C++ stored ("cpp");
# - that C++ read from an extension on the wheel's shared engine vs from one
#   with its own static engine (the layout before one engine per process);
# - Python's tls.cpp.get of a C++-set string vs tls.get of a Python str.
CROSS_LOOP = 1000
CROSS_PAIRS = [
    ("cpp read of a python-set str", f"tls_cross.get_loop(0, {CROSS_LOOP})",
     f"tls_cross.get_loop(1, {CROSS_LOOP})"),
    ("cpp read, shared vs static engine", f"tls_cross.get_loop(1, {CROSS_LOOP})",
     f"tls_cross_static.get_loop(1, {CROSS_LOOP})"),
    ("python read of a cpp-set string", "tls.cpp.get('cpp')", "tls.get('p')"),
]


def time_cross_pairs(rounds, n):
    """CROSS_PAIRS timed by time_pairs; the loop pairs' ns are per C++ read."""
    tls.cpp.set("py", "a Python str")
    tls_cross.set_cpp()
    tls_cross_static.set_cpp()
    tls.set("p", "a Python str")
    assert tls_cross.get_loop(0, 1) == 1 and tls_cross.get_loop(1, 1) == 1
    assert tls_cross_static.get_loop(1, 1) == 1 and tls_cross_static.get_loop(0, 1) == 0
    env = {"tls": tls, "tls_cross": tls_cross, "tls_cross_static": tls_cross_static}
    out = time_pairs(CROSS_PAIRS[:2], env, rounds, max(1, n // CROSS_LOOP))
    for entry in out.values():
        entry["mine_ns"] /= CROSS_LOOP
        entry["theirs_ns"] /= CROSS_LOOP
    out.update(time_pairs(CROSS_PAIRS[2:], env, rounds, n))
    return out


# tls.local against threading.local, paired the floor pairs' way (ABBA,
# thread CPU time): attribute get and set on the class and on a subclass with
# an __init__ (its per-thread dict made on first use, as in a user's
# program), the same on a tls.task_local (`ttl`), one object made and
# dropped, and 10,000 made and then dropped.
# `tl_` names are tls.local's side, `stdl_` threading.local's.
LOCAL_PAIRS = [
    ("local get", "tl_.x", "stdl_.x"),
    ("local set", "tl_.x = v", "stdl_.x = v"),
    ("local subclass get", "tl_sub.x", "stdl_sub.x"),
    ("local subclass set", "tl_sub.x = v", "stdl_sub.x = v"),
    ("task_local get", "ttl.x", "stdl_.x"),
    ("task_local set", "ttl.x = v", "stdl_.x = v"),
    ("local create+drop", "TlsLocal()", "StdLocal()"),
    ("10k locals", "make_locals(TlsLocal)", "make_locals(StdLocal)"),
]


def local_env():
    """The globals of LOCAL_PAIRS' statements."""
    class TlsSub(tls.local):
        def __init__(self):
            self.x = 1

    class StdSub(threading.local):
        def __init__(self):
            self.x = 1

    def make_locals(cls):
        made = [cls() for _ in range(10_000)]
        del made

    tl_, stdl_, ttl = tls.local(), threading.local(), tls.task_local()
    tl_.x = stdl_.x = ttl.x = 1
    return {"tl_": tl_, "stdl_": stdl_, "ttl": ttl, "tl_sub": TlsSub(), "stdl_sub": StdSub(), "v": 7,
            "TlsLocal": tls.local, "StdLocal": threading.local, "make_locals": make_locals}


def time_local_pairs(rounds, n, prefix=""):
    """LOCAL_PAIRS timed by time_pairs; the 10k pair runs n // 10,000 times."""
    env = local_env()
    out = time_pairs(LOCAL_PAIRS[:-1], env, rounds, n, prefix=prefix)
    out.update(time_pairs(LOCAL_PAIRS[-1:], env, rounds, max(1, n // 10_000), prefix=prefix))
    return out


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


def time_pairs(pairs, env, rounds, n, prefix="", each_round=None, note=lambda: ""):
    """{prefix + "mine / theirs": {...}} for (name, mine, theirs) pairs timed
    in ABBA rounds (thread CPU time): per pair, the median per-round ratio
    with its quartiles and range, and each side's median ns. each_round(ns),
    if given, runs first in every round; note() adds to each pair's log line."""
    def ns(stmt):
        return timeit.timeit(stmt, globals=env, number=n, timer=time.thread_time) / n * 1e9

    samples = {name: ([], [], []) for name, _, _ in pairs}
    for r in range(rounds):
        if each_round is not None:
            each_round(ns)
        for name, mine, theirs in pairs:
            # ABBA or BAAB: each side runs once early and once late in the round.
            order = (mine, theirs, theirs, mine) if r % 2 == 0 else (theirs, mine, mine, theirs)
            t = {mine: 0.0, theirs: 0.0}
            for stmt in order:
                t[stmt] += ns(stmt) / 2
            a_ns, b_ns, ratios = samples[name]
            a_ns.append(t[mine])
            b_ns.append(t[theirs])
            ratios.append(t[mine] / t[theirs])
    out = {}
    for name, mine, theirs in pairs:
        a_ns, b_ns, ratios = samples[name]
        q1, q2, q3 = quartiles(ratios)
        out[f"{prefix}{mine} / {theirs}"] = {
            "median": q2, "q1": q1, "q3": q3, "min": min(ratios), "max": max(ratios),
            "rounds": rounds, "mine_ns": statistics.median(a_ns),
            "theirs_ns": statistics.median(b_ns)}
        print(f"python_bench: {prefix}{mine} {statistics.median(a_ns):.1f} ns, {theirs} "
              f"{statistics.median(b_ns):.1f} ns: {q2:.3f}x (quartiles {q1:.3f}-{q3:.3f}, "
              f"range {min(ratios):.3f}-{max(ratios):.3f}, {rounds} rounds{note()})", file=sys.stderr)
    return out


def time_floor_pairs(rounds, n):
    """{key: value} for the floor rows: per pair ("mine / theirs"), the median
    per-round ratio tls/floor with its quartiles and range, and each side's
    median ns; and the empty loop's ns (timeit's own cost, in both sides)."""
    env = {"tls": tls, "floor": tls_floor}
    for i in range(8):  # the same 9 keys in both dicts (main() set tls's key0..key7)
        tls_floor.set(f"key{i}", i)
    tls.set("k", 1)
    tls_floor.set("k", 1)

    loop = []
    out = time_pairs(FLOOR_PAIRS, env, rounds, n,
                     each_round=lambda ns: loop.append(ns("pass")),
                     note=lambda: f"; empty loop {statistics.median(loop):.1f} ns")
    out["empty timeit loop"] = statistics.median(loop)
    return out

# Free-threaded rows. Scaling pairs: (tls setup, tls statement,
# control setup, control statement); each thread runs its side's setup before
# the barrier: the tls side's sets 'k' (the thread's store exists), the
# control's makes its own dict `d` with 'k' in it.
# The last pair is a check of the method, not of tls: a dict both threads
# write (`shared`, one object: each write takes its lock and moves its cache
# line), which must come out well above the control wherever the two threads
# really run in parallel; where it does not, the scaling rows cannot show a
# loss either.
FT_SCALING_PAIRS = [
    ("tls.set('k', 1)", "tls.get('k')", "d = {}; d['k'] = 1", "d['k']"),
    ("tls.set('k', 1)", "tls.set('k', 1)", "d = {}; d['k'] = 1", "d['k'] = 1"),
    ("pass", "shared['k'] = 1", "d = {}; d['k'] = 1", "d['k'] = 1"),
]
FT_UNROLL = 10  # the statement written out this many times per loop iteration
# Single-thread pairs against threading.local (`tl`, a module global): first
# as the default python3's rows spell them (main(): `get`/`set_` are tls.get
# and tls.set bound to names, as `from tls import get` gives; 8 keys, k is
# "key3"), then through the module attribute. 3.13t does not specialise its
# bytecode, so there `tls.get` alone (an attribute of a module) costs about
# what `tl.x` does.
FT_LOCAL_PAIRS = [
    ("get", "get(k)", "tl.x"),
    ("set", "set_(k, v)", "tl.x = v"),
    ("get attr", "tls.get('k')", "tl.x"),
    ("set attr", "tls.set('k', 1)", "tl.x = 1"),
]


def ft_loop(setup, stmt, env=None):
    """A function (iterations, barrier, out) that runs `setup`, waits at the
    barrier, then `stmt` FT_UNROLL times per iteration, and appends its
    (start, end) perf_counter times and its thread CPU time to `out`."""
    body = "".join(f"        {stmt}\n" for _ in range(FT_UNROLL))
    src = (f"def loop(iterations, barrier, out):\n"
           f"    {setup}\n"
           f"    barrier.wait()\n"
           f"    start, cpu = perf_counter(), thread_time()\n"
           f"    for _ in range(iterations):\n{body}"
           f"    end, cpu = perf_counter(), thread_time() - cpu\n"
           f"    out.append((start, end, cpu))\n")
    env = {**(env or {}), "tls": tls, "perf_counter": time.perf_counter,
           "thread_time": time.thread_time}
    exec(compile(src, f"<ft_loop {stmt}>", "exec"), env)  # noqa: S102 (our own statements)
    return env["loop"]


def ft_wall(loop, iterations, threads):
    """(wall seconds from the first thread's start to the last one's end, CPU
    seconds of the threads per thread) for `threads` fresh threads each
    running `loop`, released together."""
    barrier = threading.Barrier(threads)
    out = []
    ts = [threading.Thread(target=loop, args=(iterations, barrier, out)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return (max(end for _, end, _ in out) - min(start for start, _, _ in out),
            sum(cpu for _, _, cpu in out) / threads)


def time_ft_scaling(rounds, run_seconds, pairs=FT_SCALING_PAIRS, env=None):
    """{key: value} for the scaling rows: per pair, each side's median 2T/1T
    wall-time ratio and ns per op on 1 thread, and the median per-round
    quotient (tls ratio / control ratio) with its quartiles and range."""
    out = {}
    for mine_setup, mine, theirs_setup, theirs in pairs:
        loops = {mine: ft_loop(mine_setup, mine, env), theirs: ft_loop(theirs_setup, theirs, env)}
        iterations = {}
        for stmt, loop in loops.items():  # calibrate: 1 thread, ~run_seconds
            trial = 1000
            t = min(ft_wall(loop, trial, 1)[1] for _ in range(3))
            iterations[stmt] = max(100, int(trial * run_seconds / t))
        order = [(mine, 1), (mine, 2), (theirs, 1), (theirs, 2)]
        samples = {key: [] for key in order}  # seconds, each the mean of its two runs
        quotients, mine_ratios, theirs_ratios = [], [], []
        cpu_ratios = {mine: [], theirs: []}  # CPU time per thread, 2 threads over 1
        busy = []  # 1 thread's wall time over its CPU time: ~1 on an otherwise idle machine
        for r in range(rounds):
            seq = order if r % 2 == 0 else order[2:] + order[:2]
            t = dict.fromkeys(order, 0.0)
            cpu = dict.fromkeys(order, 0.0)
            for stmt, threads in seq + seq[::-1]:  # ABBA
                wall, cpu_per_thread = ft_wall(loops[stmt], iterations[stmt], threads)
                t[stmt, threads] += wall / 2
                cpu[stmt, threads] += cpu_per_thread / 2
            for key in order:
                samples[key].append(t[key])
            for stmt in (mine, theirs):
                cpu_ratios[stmt].append(cpu[stmt, 2] / cpu[stmt, 1])
                busy.append(t[stmt, 1] / cpu[stmt, 1])
            a = t[mine, 2] / t[mine, 1]
            b = t[theirs, 2] / t[theirs, 1]
            mine_ratios.append(a)
            theirs_ratios.append(b)
            quotients.append(a / b)
        q1, q2, q3 = quartiles(quotients)

        def ns_per_op(stmt, threads):
            return statistics.median(samples[stmt, threads]) / (iterations[stmt] * FT_UNROLL) * 1e9

        entry = {"median": q2, "q1": q1, "q3": q3, "min": min(quotients),
                 "max": max(quotients), "rounds": rounds,
                 "mine_ratio": statistics.median(mine_ratios),
                 "theirs_ratio": statistics.median(theirs_ratios),
                 "mine_1t_ns": ns_per_op(mine, 1), "mine_2t_ns": ns_per_op(mine, 2),
                 "theirs_1t_ns": ns_per_op(theirs, 1), "theirs_2t_ns": ns_per_op(theirs, 2),
                 "mine_ops": iterations[mine] * FT_UNROLL,
                 "theirs_ops": iterations[theirs] * FT_UNROLL,
                 # Diagnostic: CPU time per thread, 2 threads over 1 (> 1: the
                 # threads slow each other down, e.g. on a shared cache line).
                 "mine_cpu_ratio": statistics.median(cpu_ratios[mine]),
                 "theirs_cpu_ratio": statistics.median(cpu_ratios[theirs]),
                 "wall_over_cpu_1t": statistics.median(busy)}
        out[f"scaling {mine} / {theirs}"] = entry
        print(f"python_bench: 3.13t scaling, 2 threads / 1 thread (wall): {mine} "
              f"{entry['mine_ratio']:.2f}x ({entry['mine_1t_ns']:.1f} ns/op alone, "
              f"{entry['mine_ops']} ops), {theirs} {entry['theirs_ratio']:.2f}x "
              f"({entry['theirs_1t_ns']:.1f} ns/op alone, {entry['theirs_ops']} ops): "
              f"quotient {q2:.3f}x (quartiles {q1:.3f}-{q3:.3f}, range "
              f"{min(quotients):.3f}-{max(quotients):.3f}, {rounds} rounds); CPU time per "
              f"thread 2T/1T {entry['mine_cpu_ratio']:.2f}x vs "
              f"{entry['theirs_cpu_ratio']:.2f}x; 1 thread's wall over CPU time "
              f"{entry['wall_over_cpu_1t']:.2f} (about 1 when nothing else runs)", file=sys.stderr)
    return out


def free_threaded(quick):
    """The free-threaded build's rows (--free-threaded)."""
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    if gil:
        print("python_bench: the GIL is on (sys._is_gil_enabled()): the 3.13t scaling rows "
              "cannot show scaling", file=sys.stderr)
    results = {"free_threaded": {"gil_enabled": gil, "version": sys.version.split()[0],
                                 "loadavg_before": os.getloadavg()[0]}}
    results.update(time_ft_scaling(rounds=5 if quick else 41,
                                   run_seconds=0.001 if quick else 0.005,
                                   env={"shared": {"k": 1}}))
    tl = threading.local()
    tl.x = 1
    for i in range(8):
        tls.set(f"key{i}", i)
    tls.set("k", 1)
    env = {"tls": tls, "tl": tl, "get": tls.get, "set_": tls.set, "k": "key3", "v": 7}
    results.update(time_pairs(FT_LOCAL_PAIRS, env,
                              rounds=5 if quick else 31, n=20_000 if quick else 200_000,
                              prefix="3.13t "))
    results.update(time_local_pairs(rounds=5 if quick else 31, n=20_000 if quick else 200_000,
                                    prefix="3.13t "))
    results["free_threaded"]["loadavg_after"] = os.getloadavg()[0]
    if not gil and sys._is_gil_enabled():  # e.g. an extension without Py_mod_gil imported since
        print("python_bench: the GIL came on during the run", file=sys.stderr)
        results["free_threaded"]["gil_enabled"] = True
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--floor-only", action="store_true", help="only the floor pairs")
    ap.add_argument("--free-threaded", action="store_true",
                    help="only the free-threaded build's rows (scaling, threading.local)")
    args = ap.parse_args()
    if args.free_threaded:
        json.dump(free_threaded(args.quick), sys.stdout, indent=1)
        print()
        return

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
    if not args.floor_only:
        results.update(time_local_pairs(rounds=5 if args.quick else 31,
                                        n=20_000 if args.quick else 200_000))
        if tls_cross is None:
            print("python_bench: tls_cross not importable: cross-language rows left out",
                  file=sys.stderr)
        else:
            results.update(time_cross_pairs(rounds=5 if args.quick else 31,
                                            n=20_000 if args.quick else 200_000))
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
