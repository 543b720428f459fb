#!/usr/bin/env python3
"""Turns the benchmark results into the one markdown table of docs/benchmarks.md.

Reads Google Benchmark JSON (medians of the repetitions; the single run when
there was one repetition), the key/value file tools/run_benchmarks.sh writes
for RSS and callgrind figures, optionally the JSON of runs of binaries that
alternate (--runs: medians over the runs), and, optionally, the Python
benchmark's JSON.
Prints: measure | tls | peer | ratio | target | met?

Micro-benchmarks use CPU time (preemption by other users of a shared machine
does not count); thread create+join uses wall time, as the target says.
Standard library only.
"""

import argparse
import json
import statistics
import sys

# (measure, tls benchmark, peer benchmark, target ratio or None)
RATIO_ROWS = [
    ("typed slot get: `Slot<int>::Get` vs `pthread_getspecific`",
     "BM_Slot_Get", "BM_Pthread_Get", 1.3),
    ("typed slot get: `Slot<int>::Get` vs `boost::thread_specific_ptr::get`",
     "BM_Slot_Get", "BM_Boost_Get", 0.3),
    ("string-key get hit, literal, 8 keys: `tls::Find` (borrows) vs "
     "`unordered_map<string,int>::find(literal)`",
     "BM_Tls_FindLiteralHit", "BM_Map_FindLiteralHit", 0.5),
    ("string-key get hit, literal, 8 keys: `tls::Get` (copies the handle) vs "
     "`unordered_map<string,int>::find(literal)`",
     "BM_Tls_GetLiteralHit", "BM_Map_FindLiteralHit", 0.5),
    ("string-key get hit, literal, 8 keys: `tls::Get` vs "
     "`unordered_map<string,Data>` find + handle copy (like for like)",
     "BM_Tls_GetLiteralHit", "BM_DataMap_GetLiteralHit", 0.5),
    ("string-key get hit, `std::string` key: `tls::Find` vs `find(string)`",
     "BM_Tls_FindStringHit", "BM_Map_FindStringHit", None),
    ("string-key get hit, `std::string` key: `tls::Get` vs `find(string)`",
     "BM_Tls_GetStringHit", "BM_Map_FindStringHit", None),
    ("string-key get miss, literal: `tls::Find` vs `find(literal)`",
     "BM_Tls_FindLiteralMiss", "BM_Map_FindLiteralMiss", None),
    ("string-key get miss, `std::string` key: `tls::Get` vs `find(string)`",
     "BM_Tls_GetStringMiss", "BM_Map_FindStringMiss", None),
    ("integer-key get hit: `tls::Find(3)` vs `pthread_getspecific`",
     "BM_Tls_FindIntHit", "BM_Pthread_Get", 2.0),
    ("integer-key get hit: `tls::Get(3)` (copies the handle) vs `pthread_getspecific`",
     "BM_Tls_GetIntHit", "BM_Pthread_Get", 2.0),
    ("set over an existing key, literal: `tls::Set(\"key3\", d)` vs "
     "`map<string,int>[\"key3\"] = v`",
     "BM_Tls_SetLiteral", "BM_Map_AssignLiteral", 0.6),
    ("set over an existing key, literal: `tls::Set` vs "
     "`map<string,Data>[\"key3\"] = d` (like for like)",
     "BM_Tls_SetLiteral", "BM_DataMap_AssignLiteral", 0.6),
    ("set over an existing key, `std::string` key: `tls::Set` vs `map[s] = v`",
     "BM_Tls_SetString", "BM_Map_AssignString", 0.6),
    ("set, integer key: `tls::Set(3, d)` vs `pthread_setspecific`",
     "BM_Tls_SetInt", "BM_Pthread_Set", None),
    ("thread-scoped slot get: `ThreadSlot<int>::Get` vs `Slot<int>::Get`",
     "BM_ThreadSlot_Get", "BM_Slot_Get", None),
    ("thread-scoped slot get inside a task: `ThreadSlot<int>::Get` vs `Slot<int>::Get` "
     "outside one", "BM_ThreadSlot_GetInsideATask", "BM_Slot_Get", None),
    *[(f"a Slot as an object, {n:,} parked thread{'s' * (n > 1)}: make + `Emplace` + destroy "
       "(a walk of every thread releasing their values) vs a pthread key made, set and deleted "
       "(releases no other thread's value)",
       f"BM_Slot_MakeSetDestroy/threads:{n}", f"BM_PthreadKey_MakeSetDelete/threads:{n}", None)
      for n in (1, 64, 1000)],
    ("typed slot set in place: `*slot.Get() = v` vs `pthread_setspecific`",
     "BM_Slot_SetInPlace", "BM_Pthread_Set", None),
    ("typed slot replace: `slot.Emplace(v)` (allocates) vs `boost` `reset(p)`",
     "BM_Slot_Emplace", "BM_Boost_Set", None),
    ("`tls::ID()` vs a non-inlined `thread_local` read",
     "BM_Tls_ID", "BM_ThreadLocal_Id", 1.5),
    ("get at 1,000,000 keys vs at 8 keys, same hot key (`tls::Find`)",
     "BM_Tls_FindHotAtN/keys:1000000", "BM_Tls_FindHotAtN/keys:8", 3.0),
    ("get at 1,000,000 keys vs at 8 keys, random keys (`tls::Find`)",
     "BM_Tls_FindRandomAtN/keys:1000000", "BM_Tls_FindRandomAtN/keys:8", 3.0),
    ("peer scaling: `unordered_map` find at 1,000,000 vs 8 keys, hot key",
     "BM_Map_FindHotAtN/keys:1000000", "BM_Map_FindHotAtN/keys:8", None),
    ("peer scaling: `unordered_map` find at 1,000,000 vs 8 keys, random keys",
     "BM_Map_FindRandomAtN/keys:1000000", "BM_Map_FindRandomAtN/keys:8", None),
    ("get at 1,000 keys, random: `tls::Find` vs `unordered_map::find`",
     "BM_Tls_FindRandomAtN/keys:1000", "BM_Map_FindRandomAtN/keys:1000", None),
    ("get at 1,000,000 keys, random: `tls::Find` vs `unordered_map::find`",
     "BM_Tls_FindRandomAtN/keys:1000000", "BM_Map_FindRandomAtN/keys:1000000", None),
    ("thread create+join (wall): 4 values + 1 `AtExit` vs bare thread",
     "BM_Thread_Stub", "BM_Thread_Bare", 1.10),
    ("thread create+join (wall): boost, 4 `thread_specific_ptr` + 1 "
     "`at_thread_exit` vs bare thread",
     "BM_Thread_Boost", "BM_Thread_Bare", None),
    ("`tls::Counter::Add` vs `std::atomic<int64_t>::fetch_add(relaxed)`, 1 thread",
     "BM_Counter_Add/threads:1", "BM_Atomic_FetchAdd/threads:1", 1.5),
    ("`tls::Counter::Add` vs `fetch_add(relaxed)` on one shared atomic, 2 threads adding "
     "at once: time per add on each thread (≤ 0.1× is total throughput ≥ 10×)",
     "BM_Counter_Add/threads:2", "BM_Atomic_FetchAdd/threads:2", 0.1),
    *[(f"`tls::Counter::Add` vs a sharded counter on `boost::thread_specific_ptr` "
       f"(shards in a mutex-protected list), {n} thread{'s adding at once' if n > 1 else ''}",
       f"BM_Counter_Add/threads:{n}", f"BM_BoostCounter_Add/threads:{n}", None)
      for n in (1, 2)],
    *[(f"`tls::Counter::Read` with {n:,} parked thread{'s' * (n > 1)} that each added once: "
       "a sum of the counter's own shards (no thread visited) vs the boost sharded counter's read "
       "(mutex + list)",
       f"BM_Counter_Read/threads:{n}", f"BM_BoostCounter_Read/threads:{n}", None)
      for n in (1, 64, 1000)],
    *[(f"`tls::Counter::Read` with {n:,} parked thread{'s' * (n > 1)} vs Rust's `thread_local` "
       "crate, `ThreadLocal::iter()` summing an `AtomicI64` per thread (benchmarks/rust_peer)",
       f"BM_Counter_Read/threads:{n}", f"BM_RustThreadLocal_IterSum/threads:{n}", 1.0)
      for n in (1, 64, 1000)],
    *[(f"`Slot::ForEachThread` summing one value per parked thread, {n:,} threads, vs Rust's "
       "`ThreadLocal::iter()` (each value held while visited; Rust's owner never replaces it)",
       f"BM_Slot_ForEachThreadSum/threads:{n}", f"BM_RustThreadLocal_IterSum/threads:{n}", 2.0)
      for n in (64, 1000)],
    *[(f"`Slot::ForEachThread` summing one value per parked thread, {n:,} thread{'s' * (n > 1)}: "
       "a walk of every thread (each value held while visited) vs the boost sharded counter's read "
       "(mutex + list)",
       f"BM_Slot_ForEachThreadSum/threads:{n}", f"BM_BoostCounter_Read/threads:{n}", None)
      for n in (1, 64, 1000)],
    ("`Slot::ForEachThread` with 1 parked thread after 1,000 threads that held values ended: "
     "ended threads' stubs are skipped on a flag in the registry's table, not read, vs the boost "
     "sharded counter's read (which unlinks ended threads' shards)",
     "BM_Slot_ForEachThreadSumAfterEnded/ended:1000", "BM_BoostCounter_ReadAfterEnded/ended:1000",
     None),
    *[("pool round trip (wall), `boost::asio::thread_pool`: `post(Wrap(f))` and wait, "
       f"{n} values, vs `post(f)`", f"BM_Pool_RoundTripWrap/values:{n}",
       "BM_Pool_RoundTripBare", target) for n, target in ((0, None), (4, 1.05), (16, None))],
    ("pool throughput (wall), 256 tasks per wait: `post(Wrap(f))`, 4 values, vs `post(f)`",
     "BM_Pool_BatchWrap/values:4", "BM_Pool_BatchBare", None),
    # The key table against its floor (benchmarks/table_bench.cc), 1,000,000 keys.
    ("random-key `tls::Find` at 1,000,000 keys, independent lookups, vs independent random "
     "8-byte loads over a buffer of the table's size (floor)",
     "BM_Tls_FindIndependentAtN/keys:1000000", "BM_Floor_IndependentLoadsAtN/keys:1000000", 3.0),
    ("random-key `tls::Find` at 1,000,000 keys, each lookup's next key chosen by its result, "
     "vs a dependent pointer chase over a buffer of the table's size (floor)",
     "BM_Tls_FindDependentAtN/keys:1000000", "BM_Floor_DependentChaseAtN/keys:1000000", 1.1),
    ("random-key `tls::Find` at 1,000,000 keys + reading the value found, which names the next "
     "key (a cycle through all keys), vs the dependent pointer chase (floor)",
     "BM_Tls_FindValueChainAtN/keys:1000000", "BM_Floor_DependentChaseAtN/keys:1000000", None),
    ("key material alone at 1,000,000 keys: the independent lookups' precomputed keys read "
     "without looking them up, vs with (`tls::Find`)",
     "BM_Keys_IndependentOnlyAtN/keys:1000000", "BM_Tls_FindIndependentAtN/keys:1000000", None),
    ("key material alone at 1,000,000 keys: the value chain walked without lookups, vs with",
     "BM_Keys_ValueChainOnlyAtN/keys:1000000", "BM_Tls_FindValueChainAtN/keys:1000000", None),
]

# Rows of an absolute cost: (measure, tls benchmark, baseline benchmark, target
# in ns over the baseline or None).
DELTA_ROWS = [
    *[(f"task through `Wrap`, {n} values captured: capture + run on the calling thread, "
       "over a bare call", f"BM_Task_WrapAndCall/values:{n}", "BM_Task_BareCall", target)
      for n, target in ((0, None), (4, 150), (16, None))],
    ("task through `Wrap`, 4 values that changed since the last capture (a `Set` "
     "before each): over `Set` + a bare call", "BM_Task_SetWrapAndCall/values:4",
     "BM_Task_SetAndBareCall", None),
]

# Rows from binaries that cannot share a process, run alternately (--runs):
# (measure, benchmark, benchmark to divide by, target ratio or None). The churn
# binaries are one source built on the engine with and without the registry of
# stubs (benchmarks/churn_bench.cc); times are wall times.
RUN_ROWS = [
    ("thread churn (wall), 64 threads started at once then joined, each 4 values + "
     "1 `AtExit` + 1 `Counter::Add`: with the registry of stubs vs without (two builds, "
     "alternating runs)", "BM_Churn_Tls_WithRegistry", "BM_Churn_Tls_WithoutRegistry", 1.10),
    ("thread churn (wall), 64 threads, 4 values + 1 `AtExit` + 1 `Counter::Add`, with the "
     "registry, vs bare threads", "BM_Churn_Tls_WithRegistry", "BM_Churn_Bare_WithRegistry",
     None),
    ("thread churn control: the same bare threads in the build with the registry vs in the "
     "build without (≈ 1.00× when the alternation is fair)", "BM_Churn_Bare_WithRegistry",
     "BM_Churn_Bare_WithoutRegistry", None),
]

# Python rows: (measure, tls key, peer key, target ratio)
PYTHON_ROWS = [
    ("Python `tls.get(k)` hit vs `tl.d[k]` (dict through `threading.local`)",
     "tls.get", "threading.local dict lookup", 1.0),
    ("Python `tls.get(k)` hit vs `threading.local` attribute get",
     "tls.get", "threading.local attr get", None),
    ("Python `tls.set(k, v)` vs `threading.local` attribute set",
     "tls.set", "threading.local attr set", 1.0),
    ("Python `tls.id()` vs `threading.get_ident()`",
     "tls.id", "threading.get_ident", 1.0),
    ("Python `tls.get(k)` hit vs `ContextVar.get()`",
     "tls.get", "ContextVar.get", None),
    ("Python thread start+join with one `set` + one `at_exit` vs bare `threading.Thread`",
     "thread with tls", "thread bare", 1.15),
    ("Python `tls.ThreadPoolExecutor` submit+result (8 values, contextvars too) vs "
     "`submit(copy_context().run, f)`", "tls.ThreadPoolExecutor submit+result",
     "ThreadPoolExecutor submit(copy_context().run)+result", 1.0),
    ("Python `tls.ThreadPoolExecutor` submit+result vs a plain `ThreadPoolExecutor`",
     "tls.ThreadPoolExecutor submit+result", "ThreadPoolExecutor submit+result", 1.10),
    ("Python task cost without the pool: `tls.wrap(f)` + call (8 values, contextvars) vs "
     "`copy_context()` + `.run(f)`", "tls.wrap(f)()", "copy_context().run(f)", 4.0),
    ("Python task cost without the pool: `snapshot.run(f)` (8 values) vs `copy_context().run(f)`",
     "snapshot.run(f)", "copy_context().run(f)", 2.0),
    ("Python task cost without the pool: `snapshot.run(f)` (8 values) vs `f()`",
     "snapshot.run(f)", "f()", None),
]

# Python floor rows: (measure, tls key, floor key, target ratio).
# python_bench.py times each pair in alternating rounds (CPU time) and gives,
# under "mine / peer", the median of the per-round ratios with its quartiles
# and each side's median ns.
PYTHON_FLOOR_ROWS = [
    ("Python `tls.get('k')` hit vs the floor: `floor.get('k')`, the same dict lookup in a "
     "minimal C extension with the dict in a C `thread_local` (paired rounds; quartiles)",
     "tls.get('k')", "floor.get('k')", 1.05),
    ("Python `tls.set('k', 1)` over an existing key vs the floor: `floor.set('k', 1)` "
     "(paired rounds; quartiles)", "tls.set('k', 1)", "floor.set('k', 1)", 1.05),
    ("Python `tls.get('k')` vs `floor.get_kw('k')`: the floor's get with `tls.get`'s "
     "signature (`default=` by keyword: METH_FASTCALL with METH_KEYWORDS, not METH_O)",
     "tls.get('k')", "floor.get_kw('k')", None),
]

# tls.local vs threading.local, paired as the floor rows (python_bench.py
# LOCAL_PAIRS): (measure, tls statement, threading.local statement, target).
PYTHON_LOCAL_ROWS = [
    ("Python `tls.local` attribute get vs `threading.local` (paired rounds; quartiles)",
     "tl_.x", "stdl_.x", 1.0),
    ("Python `tls.local` attribute set vs `threading.local`", "tl_.x = v", "stdl_.x = v", 1.0),
    ("Python `tls.local` subclass (with `__init__`) attribute get vs the same on "
     "`threading.local`", "tl_sub.x", "stdl_sub.x", 1.0),
    ("Python `tls.local` subclass attribute set vs `threading.local`'s",
     "tl_sub.x = v", "stdl_sub.x = v", 1.0),
    ("Python `tls.task_local` (attributes are tls values, carried into tasks) attribute get "
     "vs `threading.local`", "ttl.x", "stdl_.x", None),
    ("Python `tls.task_local` attribute set vs `threading.local`", "ttl.x = v", "stdl_.x = v",
     None),
    ("Python one `tls.local()` made and dropped vs `threading.local()`",
     "TlsLocal()", "StdLocal()", 1.5),
    ("Python 10,000 `tls.local()` made, then dropped, vs as many `threading.local()`",
     "make_locals(TlsLocal)", "make_locals(StdLocal)", 1.5),
]

# Reads across the language line (python_bench.py CROSS_PAIRS; docs/python-cpp.md):
# the C++ rows per read, from loops inside an extension (benchmarks/cross_ext).
PYTHON_CROSS_ROWS = [
    ("C++ `tls::Get<std::string>` in a user's extension of a `str` Python stored with "
     "`tls.cpp.set`, vs of a `std::string` C++ stored", "tls_cross.get_loop(0, 1000)",
     "tls_cross.get_loop(1, 1000)", None),
    ("C++ `tls::Get<std::string>` in an extension on the wheel's shared engine vs in one with "
     "its own static engine", "tls_cross.get_loop(1, 1000)",
     "tls_cross_static.get_loop(1, 1000)", 1.05),
    ("Python `tls.cpp.get` of a string C++ stored vs `tls.get` of a `str` Python stored",
     "tls.cpp.get('cpp')", "tls.get('p')", None),
]

# Free-threaded CPython 3.13t rows, from `python_bench.py
# --free-threaded` on the cp313t wheel (--python-ft). Scaling: (measure, tls
# statement, control statement, target); tls and peer are each side's median
# ratio of 2 threads' wall time to 1 thread's (same ops per thread), the ratio
# the median of the per-round quotients tls/control.
PYTHON_FT_SCALING_ROWS = [
    ("Python 3.13t (free-threaded) scaling, wall time of 2 threads each doing N `tls.get('k')` "
     "at once over 1 thread doing N (tls), vs the same on a plain dict of each thread's own, "
     "`d['k']` (peer); ratio: tls's over the peer's (paired rounds; quartiles)",
     "tls.get('k')", "d['k']", 1.2),
    ("Python 3.13t scaling, 2 threads vs 1: `tls.set('k', 1)` vs `d['k'] = 1` on a plain "
     "per-thread dict (paired rounds; quartiles)", "tls.set('k', 1)", "d['k'] = 1", 1.2),
    ("Python 3.13t scaling, check of the method: a dict both threads write, `shared['k'] = 1` "
     "(one lock, one cache line), vs `d['k'] = 1` per thread: well above 1× wherever the "
     "2 threads really run in parallel", "shared['k'] = 1", "d['k'] = 1", None),
]
# A scaling row gives no verdict when the control itself took more than this
# (2 threads' wall over 1 thread's; 1.0 on two free cores): the machine did
# not run the threads in parallel, so no loss of scaling could show.
FT_CONTROL_SCALES = 1.5
# Single-thread on 3.13t: (measure, tls key, peer key, target), paired rounds
# in thread CPU time as the floor rows.
# The first two spell the calls as the default python3's rows above do (`get`
# bound to a name, as `from tls import get` gives); the last two through the
# module attribute, which 3.13t (no bytecode specialisation) looks up in full.
PYTHON_FT_ROWS = [
    ("Python 3.13t `tls.get(k)` hit vs `threading.local` attribute get, one thread "
     "(paired rounds; quartiles)", "3.13t get(k)", "tl.x", 1.0),
    ("Python 3.13t `tls.set(k, v)` vs `threading.local` attribute set, one thread "
     "(paired rounds; quartiles)", "3.13t set_(k, v)", "tl.x = v", 1.0),
    ("Python 3.13t `tls.get('k')` through the module attribute vs `tl.x` (3.13t does not "
     "specialise bytecode: the attribute lookup `tls.get` alone is ~50 ns)",
     "3.13t tls.get('k')", "tl.x", None),
    ("Python 3.13t `tls.set('k', 1)` through the module attribute vs `tl.x = 1`",
     "3.13t tls.set('k', 1)", "tl.x = 1", None),
]
# 3.13t's tls.local rows: the default python3's PYTHON_LOCAL_ROWS, run there.
PYTHON_FT_ROWS += [("Python 3.13t " + m.removeprefix("Python "), "3.13t " + mine, peer, t)
                   for m, mine, peer, t in PYTHON_LOCAL_ROWS]


SCALE = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def name_and_time(b):
    """A benchmark's name (without /real_time) and its ns/op: wall time if it
    was measured so, else CPU time."""
    name = b.get("run_name", b["name"])
    real = name.endswith("/real_time")
    t = (b["real_time"] if real else b["cpu_time"]) * SCALE[b.get("time_unit", "ns")]
    return name.removesuffix("/real_time"), real, t


def load_benchmarks(paths):
    """name -> ns/op over the files: the median when repetitions were aggregated."""
    data = {"benchmarks": []}
    for path in paths:
        with open(path) as f:
            one = json.load(f)
        data["benchmarks"] += one["benchmarks"]
        data.setdefault("context", one.get("context", {}))
    single, median, cv = {}, {}, {}
    for b in data["benchmarks"]:
        name, real, t = name_and_time(b)
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                median[name] = t
            elif b.get("aggregate_name") == "cv":
                cv[name] = b["real_time"] if real else b["cpu_time"]  # a fraction
        else:
            single.setdefault(name, t)
    context = dict(data.get("context", {}))
    # Google Benchmark records repetitions per benchmark, not in the context.
    context["repetitions"] = max((b.get("repetitions", 1) for b in data["benchmarks"]), default=1)
    context["cv"] = cv
    return {**single, **median}, context


def load_runs(paths):
    """name -> ns/op, the median over runs of one repetition each (files of
    binaries run alternately), and name -> coefficient of variation."""
    times = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name, _, t = name_and_time(b)
            times.setdefault(name, []).append(t)
    median = {k: statistics.median(v) for k, v in times.items()}
    cv = {k: statistics.stdev(v) / statistics.mean(v) if len(v) > 1 else None
          for k, v in times.items()}
    return median, cv


def load_extra(path):
    """name -> value; a name given more than once (table_bench probes, run once per
    hash secret) -> the median of its values."""
    values = {}
    if path:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    values.setdefault(parts[0], []).append(float(parts[1]))
    return {name: statistics.median(v) for name, v in values.items()}


def fmt_ns(t):
    if t is None:
        return "n/a"
    if t >= 1000:
        return f"{t / 1000:,.1f} µs"
    return f"{t:.2f} ns" if t < 10 else f"{t:.1f} ns"


def met(ok):
    return "yes" if ok else "**no**"


# Above this coefficient of variation (between repetitions) a ratio is noise:
# the row says so instead of met or not.
NOISY_CV = 0.10


def noisy(*cvs):
    worst = max((c for c in cvs if c is not None), default=None)
    return worst if worst is not None and worst > NOISY_CV else None


def ratio_row(measure, a, b, target, cvs):
    """One row of a ratio a/b against `target`, or "noise" if the cvs say so."""
    r = a / b
    worst = noisy(*cvs)
    verdict = f"noise (cv {worst:.0%})" if worst is not None else (
        met(r <= target) if target else "")
    return (measure, fmt_ns(a), fmt_ns(b), f"{r:.2f}×", f"≤ {target:g}×" if target else "—",
            verdict)


def not_run(measure, a, b, target_text):
    """The row of a measure one of whose sides did not run."""
    return (measure, fmt_ns(a), fmt_ns(b), "n/a", target_text, "not run")


def paired_ratio_row(measure, a, b, paired, target):
    """One row of a median per-round ratio (`paired`: median, q1, q3) against
    `target` (or None); "noise" when the quartiles are more than NOISY_CV apart."""
    r, q1, q3 = paired["median"], paired["q1"], paired["q3"]
    spread = (q3 - q1) / r
    if spread > NOISY_CV:
        verdict = f"noise (quartiles {spread:.0%} apart)"
    else:
        verdict = met(r <= target) if target else ""
    return (measure, fmt_ns(a), fmt_ns(b), f"{r:.2f}× ({q1:.2f}–{q3:.2f})",
            f"≤ {target:g}×" if target else "—", verdict)


def ft_rows(path):
    """The free-threaded rows from python_bench.py --free-threaded's JSON at
    `path` ("not run" rows without one)."""
    specs = [(m, mine, peer, t, True) for m, mine, peer, t in PYTHON_FT_SCALING_ROWS]
    specs += [(m, mine, peer, t, False) for m, mine, peer, t in PYTHON_FT_ROWS]
    def target_text(t):
        return f"≤ {t:g}×" if t else "—"

    if path is None:
        return [not_run(m, None, None, target_text(t)) for m, _, _, t, _ in specs]
    with open(path) as f:
        py = json.load(f)
    gil = py.get("free_threaded", {}).get("gil_enabled", True)
    rows = []
    for measure, mine, peer, target, scaling in specs:
        paired = py.get(f"scaling {mine} / {peer}" if scaling else f"{mine} / {peer}")
        if paired is None:
            rows.append(not_run(measure, None, None, target_text(target)))
            continue
        if scaling:
            row = paired_ratio_row(measure, 1, 1, paired, target)
            row = (measure, f"{paired['mine_ratio']:.2f}× ({fmt_ns(paired['mine_1t_ns'])}/op "
                   "alone)", f"{paired['theirs_ratio']:.2f}× ({fmt_ns(paired['theirs_1t_ns'])}"
                   "/op alone)", *row[3:])
            if target and paired["theirs_ratio"] > FT_CONTROL_SCALES:
                row = (*row[:5], f"not shown: the control took {paired['theirs_ratio']:.2f}× "
                       "on 2 threads (no parallelism)")
        else:
            row = paired_ratio_row(measure, paired["mine_ns"], paired["theirs_ns"], paired,
                                   target)
        if gil:  # the GIL serialises the threads: no verdict on a scaling it prevents
            row = (*row[:5], "GIL was on")
        rows.append(row)
    return rows


def ratio_rows(specs, times, cvs):
    """Table rows for (measure, mine, peer, target) specs: "not run" where a side is missing."""
    rows = []
    for measure, mine, peer, target in specs:
        a, b = times.get(mine), times.get(peer)
        if a is None or b is None:
            rows.append(not_run(measure, a, b, f"≤ {target}×" if target else "—"))
            continue
        rows.append(ratio_row(measure, a, b, target, (cvs.get(mine), cvs.get(peer))))
    return rows


def table_rows(extra):
    """Rows of the key table's own figures (benchmarks/table_bench.cc modes)."""
    rows = []
    for kind, keys, target in [("string", "`key0`…`key{N-1}`", 1.2),
                               ("int", "integers 0…N-1", None)]:
        hit = extra.get(f"probes_hit_worst.{kind}")
        if hit is None:
            rows.append(not_run(f"probes per lookup, keys {keys} (table_bench probes)", None,
                                None, f"≤ {target}" if target else "—"))
            continue
        n = extra[f"probes_hit_worst_n.{kind}"]
        miss, miss_n = extra[f"probes_miss_worst.{kind}"], extra[f"probes_miss_worst_n.{kind}"]
        rows.append((f"probes per lookup (slots examined, 1 = at home), keys {keys} inserted "
                     "in order: worst mean over N = 8…1,048,576 of hits (tls), of misses (peer); "
                     "median of 7 processes (hash secrets)",
                     f"{hit:.2f} at N = {n:,.0f}", f"{miss:.2f} at N = {miss_n:,.0f}", "—",
                     f"≤ {target} (hits)" if target else "—", met(hit <= target) if target else ""))
        # Per N, the median over the processes (secrets) of the hit mean, over
        # what a uniform hash averages there; then the worst N. (The worst of
        # each process alone is mostly the spread of a random hash at small N.)
        ratios = {}
        for name, hit_n in extra.items():
            if name.startswith(f"probes_hit.{kind}."):
                at = name.rsplit(".", 1)[1]
                ratios[int(at)] = hit_n / extra[f"probes_hit_uniform.{kind}.{at}"]
        if ratios:
            vs_n = max(ratios, key=ratios.get)
            vs = ratios[vs_n]
            rows.append((f"probes per hit, keys {keys}: worst ratio over N to what a uniformly "
                         "random hash averages at the same load (the hash's own clustering), "
                         "of each N's median over 7 processes (hash secrets)",
                         f"{vs:.2f}× at N = {vs_n:,.0f}", "1.00×", f"{vs:.2f}×",
                         "≤ 1.2×" if target else "—", met(vs <= 1.2) if target else ""))
    crafted, random = extra.get("flood.crafted_ns_per_key"), extra.get("flood.random_ns_per_key")
    measure = ("hash flooding: `tls::Set` + `tls::Find` of 50,000 keys crafted to share one hash "
               "under the old public seeds (tls) vs 50,000 random 16-byte keys (peer), per key "
               "(table_bench flood)")
    rows.append(not_run(measure, crafted, random, "≤ 2×") if crafted is None or random is None else
                (measure, f"{crafted:.1f} ns", f"{random:.1f} ns", f"{crafted / random:.2f}×",
                 "≤ 2×", met(crafted <= 2 * random)))
    first, last = extra.get("reset.first_ns"), extra.get("reset.last_ns")
    measure = ("`Counter::Add` + `tls::Reset`: on a Counter made after 100,000 others (tls) vs "
               "one made first (peer); Reset visits only the used range of a thread's slot "
               "array and keeps the array (reset_bench)")
    rows.append(not_run(measure, last, first, "≤ 2×") if first is None or last is None else
                (measure, fmt_ns(last), fmt_ns(first), f"{last / first:.2f}×", "≤ 2×",
                 met(last <= 2 * first)))
    for key, label in [("table_bytes_per_key.1000000", "the table's heap block (`block_bytes`)"),
                       ("store_bytes_per_key.1000000", "a thread's store through the API "
                        "(`GetStats().bytes` / values)")]:
        v = extra.get(key)
        measure = f"memory per key at 1,000,000 string keys: {label}, values not counted"
        rows.append(not_run(measure, None, None, "≤ 100 B") if v is None else
                    (measure, f"{v:.0f} B", "—", "—", "≤ 100 B", met(v <= 100)))
    for prefix, cache in [("lines_per_lookup_1m", "D1"), ("ll_lines_per_lookup_1m", "LL")]:
        find, load = extra.get(f"{prefix}.find"), extra.get(f"{prefix}.load")
        measure = (f"cache lines per random-key `tls::Find` at 1,000,000 keys (cachegrind {cache} "
                   "read misses per lookup), vs one random 8-byte load over a buffer of the "
                   "table's size (floor)")
        target = 1.5 if cache == "D1" else None
        if find is None or load is None:
            rows.append(not_run(measure, None, None, f"≤ {target}" if target else "—"))
            continue
        rows.append((measure, f"{find:.2f}", f"{load:.2f}", f"{find / load:.2f}×",
                     f"≤ {target} lines" if target else "—", met(find <= target) if target else ""))
    return rows


def cxx_rows(args):
    """The C++ rows, and the Google Benchmark context (repetitions)."""
    times, context = load_benchmarks(args.benchmark_json)
    extra = load_extra(args.extra)
    rows = []

    rows += ratio_rows(RATIO_ROWS, times, context["cv"])

    for measure, mine, base, target in DELTA_ROWS:
        a, b = times.get(mine), times.get(base)
        if a is None or b is None:
            rows.append(not_run(measure, a, b, f"≤ +{target} ns" if target else "—"))
            continue
        d = a - b
        rows.append((measure, fmt_ns(a), fmt_ns(b), f"+{d:.0f} ns",
                     f"≤ +{target} ns" if target else "—", met(d <= target) if target else ""))

    run_times, run_cv = load_runs(args.runs)
    rows += ratio_rows(RUN_ROWS, run_times, run_cv)

    ins = {k.split(".", 1)[1]: v for k, v in extra.items()
           if k.startswith("instructions_per_thread.")}
    if "bare" in ins and "stub" in ins:
        d = ins["stub"] - ins["bare"]
        rows.append(("instructions per thread create+join (callgrind): 4 values + "
                     "1 `AtExit` vs bare", f"{ins['stub']:,.0f}", f"{ins['bare']:,.0f}",
                     f"+{d:,.0f}", "≤ +2,000", met(d <= 2000)))
        if "stub_without_registry" in ins:
            nr = ins["stub_without_registry"]
            rows.append(("instructions per thread create+join: 4 values + 1 `AtExit`, with the "
                         "registry of stubs vs without (two builds)", f"{ins['stub']:,.0f}",
                         f"{nr:,.0f}", f"{ins['stub'] - nr:+,.0f}", "—", ""))
        if "boost" in ins:
            rows.append(("instructions per thread create+join: boost, 4 values + "
                         "1 `at_thread_exit` vs bare", f"{ins['boost']:,.0f}",
                         f"{ins['bare']:,.0f}", f"+{ins['boost'] - ins['bare']:,.0f}", "—", ""))
    else:
        rows.append(("instructions per thread create+join (callgrind)", "n/a", "n/a",
                     "n/a", "≤ +2,000", "not run (no valgrind)"))

    rss = {k.split(".", 1)[1]: v for k, v in extra.items()
           if k.startswith("rss_kib_per_thread.")}
    if "bare" in rss:
        for mode, label, target in [
                ("value", "one `tls` value (`MakeData(int)`)", 1.0),
                ("pthread", "one `new int` under a pthread key", None),
                ("boost", "one `new int` in a `boost::thread_specific_ptr`", None)]:
            if mode not in rss:
                continue
            d = rss[mode] - rss["bare"]
            rows.append((f"RSS per live thread, 10,000 threads, 64 KiB stacks: {label} "
                         "vs bare", f"{rss[mode]:.2f} KiB", f"{rss['bare']:.2f} KiB",
                         f"{d:+.2f} KiB", f"≤ +{target:.1f} KiB" if target else "—",
                         met(d <= target) if target else ""))
        if "value" in rss and "value_without_registry" in rss:
            d = rss["value"] - rss["value_without_registry"]
            rows.append(("RSS per live thread, 10,000 threads, 64 KiB stacks: one `tls` value, "
                         "with the registry of stubs vs without (two builds)",
                         f"{rss['value']:.2f} KiB", f"{rss['value_without_registry']:.2f} KiB",
                         f"{d:+.2f} KiB", "—", ""))

    rows += table_rows(extra)
    return rows, context


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("benchmark_json", nargs="*",
                    help="Google Benchmark JSON of binaries run in turn (tls_bench, table_bench); "
                    "none: only the Python rows (run_benchmarks.sh --python-only)")
    ap.add_argument("--extra",
                    help="key value lines: RSS, callgrind, cachegrind and key table figures")
    ap.add_argument("--runs", nargs="+", default=[],
                    help="Google Benchmark JSON of alternating runs (one repetition each)")
    ap.add_argument("--python", help="python_bench.py JSON output")
    ap.add_argument("--python-ft", help="python_bench.py --free-threaded JSON output (3.13t); "
                    "without it, those rows say not run")
    args = ap.parse_args()

    rows, context = cxx_rows(args) if args.benchmark_json else ([], {})

    if args.python:
        with open(args.python) as f:
            py = json.load(f)
        for measure, mine, peer, target in PYTHON_ROWS:
            a, b = py.get(mine), py.get(peer)
            if a is None or b is None:
                continue
            rows.append(ratio_row(measure, a, b, target,
                                  (py.get(mine + " cv"), py.get(peer + " cv"))))
        for measure, mine, peer, target in (PYTHON_FLOOR_ROWS + PYTHON_LOCAL_ROWS +
                                            PYTHON_CROSS_ROWS):
            paired = py.get(f"{mine} / {peer}")
            if paired is None:
                rows.append(not_run(measure, None, None, f"≤ {target}×" if target else "—"))
                continue
            rows.append(paired_ratio_row(measure, paired["mine_ns"], paired["theirs_ns"], paired,
                                         target))
    rows += ft_rows(args.python_ft)

    print("| measure | tls | peer | ratio | target | met? |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    reps = context.get("repetitions", 1)
    runs = len(args.runs) // 2
    churn = (f"; churn over {runs} alternating run{'s' * (runs > 1)} of each build"
             if args.runs else "")
    ft = "; 3.13t scaling in wall time" if args.python_ft else ""
    if args.benchmark_json:
        print(f"\nTimes are medians ({f'of {reps} repetitions' if reps > 1 else 'one run'}); "
              f"micro-benchmarks in CPU time, thread create+join and churn in wall time{churn}"
              f"{ft}.", file=sys.stdout)
    else:
        print(f"\nPython rows only (--python-only); times are medians{ft}.", file=sys.stdout)


if __name__ == "__main__":
    main()
