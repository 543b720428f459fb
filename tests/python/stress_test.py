"""Stress from Python threads: the shape of tests/reliability/stress_test.cc
(stress_churn.h), with exceptions in callbacks.

Many short-lived threads (64 at once) do random set/get/delete/reset/unload/
at_exit/id. The values' close() and the handlers call tls themselves (set,
at_exit, get, id, sometimes reset; a handler may also delete or unload), and
some of them raise. Each thread keeps a shadow of what it stored. Its callbacks
run on the same thread and update the shadow too, so after the thread has
ended (join) we know exactly:

  - which values had to be closed, once each: those still stored at a reset or
    at thread end. Values that were deleted, replaced or unloaded are never
    closed, and no value is closed twice;
  - which handlers had to run, once each: every handler not dropped by unload;
  - which exceptions had to reach sys.unraisablehook, once each (the test
    installs a counting hook, then restores the old one);
  - that IDs are stable until unload, fresh after it, and unique across all
    threads and unloads;
  - that nothing is leaked: after the threads end and gc runs, the weakrefs to
    every stored value and handler are dead.

Nesting is bounded so the count stays exact without modelling exit rounds, as
in stress_churn.h. Callbacks of what the body registers (level 1) may add
children (level 2) under fresh keys. Level-1 handlers run in the first exit
round, before exit closes anything, so they may also delete, reset and unload.
Level-1 closes may reset: whatever the shadow still holds at that point is
either being closed by the running reset or exit round, or closed by this
reset. Level-2 callbacks only read and count.

Variants: threading.Thread (with all 64 alive and holding values at once),
ThreadPoolExecutor workers (values live across tasks, end at shutdown),
_thread.start_new_thread and native threads calling into Python.

Every worker has its own seeded random.Random. A failure message names the
worker's seed. TLS_PY_STRESS_SEED=<int> changes the base seed, and
TLS_PY_STRESS_REPLAY=<seed> runs that one worker alone, deterministic apart
from thread interleaving (test_replay_one_seed):
  bazel test //tests/python:stress_test --test_env=TLS_PY_STRESS_REPLAY=0x...
TLS_PY_STRESS_LIFETIMES=<n> scales the threading.Thread variant.
"""

import _thread
import collections
import concurrent.futures
import gc
import itertools
import os
import random
import sys
import threading
import time
import traceback
import unittest
import weakref

import tls
from support import HOOKS, run_in_native_thread

# 2 and 2.0 are one key, like dict keys; the shadow is a dict too, so it agrees.
MAIN_KEYS = (0, 1, 2, 3, 2.0, "a", "b", ("t", 1), None, frozenset({"f"}))
MISSING = object()
WAIT = 120  # seconds; a barrier or a thread end that takes longer is a failure
BASE_SEED = int(os.environ.get("TLS_PY_STRESS_SEED", "0x5eed0000"), 0)
# Operations per body run, by variant (the seed tag in bits 32 and up of a seed).
OPS = {1: 40, 2: 16, 3: 30, 4: 30}


class StressError(Exception):
    """Raised on purpose by a callback; its message names the callback."""


class Tok:
    """One value or handler, and what happened to it."""

    __slots__ = ("shadow", "name", "kind", "level", "seed", "raises", "expect",
                 "closes", "outer_closes", "runs", "keys", "ref")

    def __init__(self, shadow, kind, level, rng):
        self.shadow = shadow
        self.name = f"{shadow.origin:#x}/{len(shadow.toks)}"  # origin seed / index
        self.kind = kind      # "handler", "value", "data" (Data around a value), "plain" (no close)
        self.level = level
        self.seed = rng.getrandbits(64)  # drives its callback
        self.raises = kind not in ("plain",) and rng.random() < 0.15
        self.expect = 1       # closes (value) or runs (handler) owed; 0 once dropped
        self.closes = 0       # the value's close() calls
        self.outer_closes = 0  # "data": the Data's close() calls (it hides repeats)
        self.runs = 0
        self.keys = set()     # keys it is stored under, as the shadow believes
        self.ref = None       # weakref to the stored object
        shadow.toks.append(self)


class Value:
    __slots__ = ("tok", "__weakref__")

    def __init__(self, tok):
        self.tok = tok

    def close(self):
        tok = self.tok
        tok.closes += 1
        callback(tok)


class CountedData(tls.Data):
    """tls.Data that counts its own close() calls: Data closes its value at
    most once, so without this a repeated close by tls would not show."""

    __slots__ = ("tok",)

    def close(self):
        self.tok.outer_closes += 1
        return super().close()


class Plain:
    __slots__ = ("tok", "__weakref__")

    def __init__(self, tok):
        self.tok = tok


class Handler:
    __slots__ = ("tok", "__weakref__")

    def __init__(self, tok):
        self.tok = tok

    def __call__(self):
        tok = self.tok
        tok.runs += 1
        s = tok.shadow
        if tok not in s.pending:
            s.fail(f"handler {tok.name} ran but was not pending (dropped, or ran before)")
        s.pending.discard(tok)
        callback(tok)


class Shadow:
    """What one thread stored, as it believes. Touched only by that thread
    (its body and its callbacks) until the thread has ended."""

    def __init__(self, run, origin):
        self.run = run
        self.origin = origin        # seed of the body run now (a pool task's seed)
        self.toks = []
        self.values = {}            # key -> Tok of the stored object
        self.pending = set()        # handler Toks registered, not run, not dropped
        self.epoch_id = None        # tls.id() since the last unload, once seen
        self.ids = []               # one per epoch
        self.raised = []            # names of the callbacks that raised
        self.next_child = 0
        self.stats = collections.Counter()
        self.failures = []

    def fail(self, what):
        self.failures.append(f"seed {self.origin:#x}: {what}")


def check_id(s):
    now = tls.id()
    if s.epoch_id is None:
        if s.ids and now <= s.ids[-1]:
            s.fail(f"ID after unload not fresh: {now} after {s.ids[-1]}")
        s.epoch_id = now
        s.ids.append(now)
    elif now != s.epoch_id:
        s.fail(f"ID changed without unload: {s.epoch_id} -> {now}")


def new_value(s, rng, level):
    """A new object to store, and its Tok."""
    r = rng.random()
    kind = "plain" if r < 0.15 else "data" if r < 0.35 else "value"
    tok = Tok(s, kind, level, rng)
    if kind == "plain":
        obj = Plain(tok)
    else:
        obj = inner = Value(tok)
        if kind == "data":
            obj = CountedData(inner)
            obj.tok = tok
            s.run.refs.append(weakref.ref(inner))
    tok.ref = weakref.ref(obj)
    s.run.refs.append(tok.ref)
    s.stats[kind] += 1
    return tok, obj


def map_key(s, key, tok):
    unmap_key(s, key)
    s.values[key] = tok
    tok.keys.add(key)


def unmap_key(s, key):
    old = s.values.pop(key, None)
    if old is not None:
        old.keys.discard(key)
        if not old.keys:
            old.expect = 0  # no longer stored: never to be closed
            s.stats["dropped"] += 1


def add_handler(s, rng, level):
    tok = Tok(s, "handler", level, rng)
    handler = Handler(tok)
    tok.ref = weakref.ref(handler)
    s.run.refs.append(tok.ref)
    s.pending.add(tok)
    tls.at_exit(handler)


def check_get(s, key, exact):
    """tls.get(key) against the shadow. Exact in the body and in level-1
    handlers. Elsewhere (a close runs while its round's values are detached,
    so the shadow may still list them) whatever is stored must at least be
    what the shadow says."""
    got = tls.get(key, MISSING)
    tok = s.values.get(key)
    want = MISSING if tok is None else tok.ref()
    if got is want or (not exact and got is MISSING):
        if exact and tok is not None and tok.closes:
            s.fail(f"get({key!r}) returned {tok.name}, which was already closed")
        return
    s.fail(f"get({key!r}) returned {got!r}, shadow has {want!r}")


def reset(s):
    s.values.clear()  # still owed: closed by this reset (or the one running)
    tls.reset()


def unload(s):
    for tok in s.values.values():
        tok.expect = 0
    for tok in s.pending:
        tok.expect = 0
    s.stats["dropped"] += len(set(s.values.values())) + len(s.pending)
    s.values.clear()
    s.pending.clear()
    s.epoch_id = None
    tls.unload()


def raise_now(tok):
    tok.shadow.raised.append(tok.name)
    raise StressError(tok.name)


def callback(tok):
    """What a close or a handler does."""
    s = tok.shadow
    rng = random.Random(tok.seed)
    check_get(s, rng.choice(MAIN_KEYS), exact=False)
    check_id(s)
    handler = tok.kind == "handler"
    exact = handler and tok.level == 1  # see check_get
    ops = rng.randrange(4) if tok.level == 1 else 0
    raise_at = rng.randrange(ops + 1) if tok.raises else -1
    for i in range(ops):
        if i == raise_at:
            raise_now(tok)
        op = rng.randrange(6 if handler else 4)
        if op == 0:  # a child value under a fresh key: closed once, later
            child, obj = new_value(s, rng, 2)
            key = ("child", s.next_child)
            s.next_child += 1
            map_key(s, key, child)
            tls.set(key, obj)
        elif op == 1:  # a child handler: runs once, in a later round
            add_handler(s, rng, 2)
        elif op == 2:
            key = ("child", s.next_child - 1) if rng.random() < 0.5 else rng.choice(MAIN_KEYS)
            check_get(s, key, exact)
        elif op == 3:
            if rng.random() < 0.3:
                s.stats["reset in handler" if handler else "reset in close"] += 1
                reset(s)
            else:
                check_id(s)
        elif op == 4:  # handlers only: delete drops without closing
            key = rng.choice(MAIN_KEYS)
            had = key in s.values
            unmap_key(s, key)
            if tls.delete(key) != had:
                s.fail(f"delete({key!r}) in a handler disagreed with the shadow ({had})")
        elif op == 5:  # handlers only: unload drops the rest, unclosed, unrun
            if rng.random() < 0.25:
                s.stats["unload in handler"] += 1
                unload(s)
            check_id(s)
    if raise_at == ops:
        raise_now(tok)


def expect_type_error(s, what, fn, *args):
    try:
        fn(*args)
    except TypeError:
        return
    s.fail(f"{what} did not raise TypeError")


def body(s, rng, ops, barrier=None):
    """The random operations of one thread (or one pool task)."""
    for i in range(ops):
        if barrier is not None and i == ops // 2:
            check_id(s)
            barrier.wait(WAIT)  # every lane's worker is alive and holds values
        key = rng.choice(MAIN_KEYS)
        op = rng.randrange(20)
        if op < 5:  # set (over an old value: the old one is dropped, not closed)
            tok, obj = new_value(s, rng, 1)
            map_key(s, key, tok)
            tls.set(key, obj)
        elif op == 5:  # the same object under a second key: one close
            if s.values and key not in s.values:
                tok = s.values[rng.choice(list(s.values))]
                obj = tok.ref()
                map_key(s, key, tok)
                tls.set(key, obj)
                s.stats["alias"] += 1
        elif op < 8:
            check_get(s, key, exact=True)
        elif op == 8:  # delete drops without closing
            had = key in s.values
            unmap_key(s, key)
            if tls.delete(key) != had:
                s.fail(f"delete({key!r}) disagreed with the shadow ({had})")
        elif op == 9:  # reset closes what is stored now, keeps handlers and ID
            reset(s)
            s.stats["reset"] += 1
            if s.epoch_id is not None:
                check_id(s)
        elif op == 10:
            if rng.random() < 0.3:
                unload(s)
                s.stats["unload"] += 1
                if tls.get(key, MISSING) is not MISSING:
                    s.fail("a value survived unload")
        elif op < 14:
            add_handler(s, rng, 1)
        elif op == 14:
            check_id(s)
            if HOOKS and HOOKS.cpp_id() != s.epoch_id:  # the test build's C++ view
                s.fail(f"C++ sees ID {HOOKS.cpp_id()}, Python {s.epoch_id}")
        elif op == 15:
            which = rng.randrange(4)
            if which == 0:
                expect_type_error(s, "set of an unhashable key", tls.set, [key], 1)
            elif which == 1:
                expect_type_error(s, "get of an unhashable key", tls.get, {key: 1})
            elif which == 2:
                expect_type_error(s, "delete of an unhashable key", tls.delete, [key])
            else:
                expect_type_error(s, "at_exit of a non-callable", tls.at_exit, key)
        elif op == 16:
            time.sleep(0)  # let another thread in here
        else:
            check_get(s, ("child", rng.randrange(s.next_child + 1)), exact=True)


def work(s, seed, ops, barrier=None):
    """A thread's (or task's) whole body; an error in it is a failure."""
    s.origin = seed
    try:
        body(s, random.Random(seed), ops, barrier)
    except BaseException:  # reported with the seed
        s.fail("body raised:\n" + traceback.format_exc())


class CountingHook:
    """sys.unraisablehook for the test: keeps only names, never the exception
    (its traceback would keep the values alive)."""

    def __init__(self):
        self.seen = []
        self.other = []

    def __call__(self, u):
        if u.exc_type is StressError:
            self.seen.append(str(u.exc_value))
        else:
            self.other.append(f"{u.exc_type.__name__}: {u.exc_value} ({u.err_msg})")


ALL_IDS = set()  # every epoch's ID of every run in this process


class Run:
    """One variant's run: the verdict on every finished thread, then totals."""

    def __init__(self, test, label, seed_tag):
        self.test = test
        self.label = label
        self.seed_tag = seed_tag
        self.next = itertools.count()
        self.refs = []  # weakrefs to every stored object and handler
        self.failures = []
        self.ids = []
        self.raised = []
        self.lifetimes = 0
        self.totals = collections.Counter()
        self.hook = CountingHook()
        self.lock = threading.Lock()  # verify() runs on every lane

    def seed(self, n):
        return BASE_SEED + (self.seed_tag << 32) + n

    def __enter__(self):
        self.start = time.monotonic()
        self.old_hook = sys.unraisablehook
        self.old_interval = sys.getswitchinterval()
        sys.unraisablehook = self.hook
        sys.setswitchinterval(1e-4)  # more thread switches inside the workload
        return self

    def __exit__(self, *exc):
        sys.unraisablehook = self.old_hook
        sys.setswitchinterval(self.old_interval)
        return False

    def verify(self, s):
        """Checks one thread's Toks against what it owed. Only once the thread
        has ended, exit sequence included. Lanes call it from many threads at
        once: the lock makes the totals exact (an unlocked `+= 1` loses counts
        under thread switches, e.g. 5992 lifetimes of 6000 on 3.9)."""
        with self.lock:
            self.lifetimes += 1
            for tok in s.toks:
                if tok.kind == "handler":
                    self.totals["handler runs"] += tok.runs
                    if tok.runs != tok.expect:
                        s.fail(f"handler {tok.name} (level {tok.level}) ran {tok.runs} times, "
                               f"owed {tok.expect}")
                elif tok.kind != "plain":
                    self.totals["closes"] += tok.closes
                    if tok.closes != tok.expect:
                        s.fail(f"{tok.kind} {tok.name} (level {tok.level}) closed {tok.closes} times, "
                               f"owed {tok.expect}")
                    if tok.kind == "data" and tok.outer_closes != tok.expect:
                        s.fail(f"Data {tok.name} (level {tok.level}) had close() called "
                               f"{tok.outer_closes} times, owed {tok.expect}")
            self.failures.extend(s.failures)
            self.ids.extend(s.ids)
            self.raised.extend(s.raised)
            self.totals.update(s.stats)

    def finish(self, min_lifetimes):
        """The checks over the whole run, after every thread has ended."""
        elapsed = time.monotonic() - self.start
        gc.collect()
        alive = [r() for r in self.refs if r() is not None]
        print(f"\n{self.label}: {self.lifetimes} thread lifetimes in {elapsed:.1f} s, base seed "
              f"{BASE_SEED:#x}; {self.totals['closes']} closes, {self.totals['handler runs']} handler "
              f"runs, {self.totals['dropped']} dropped, {len(self.raised)} raised, "
              f"{len(self.ids)} IDs; {dict(sorted(self.totals.items()))}", file=sys.stderr)
        t = self.test
        if self.failures:
            t.fail(f"{self.label}: {len(self.failures)} failures (base seed {BASE_SEED:#x}; replay one "
                   f"with TLS_PY_STRESS_REPLAY=<seed>); first ones:\n" + "\n".join(self.failures[:15]))
        t.assertGreaterEqual(self.lifetimes, min_lifetimes)
        # Exceptions: each raised one reached the hook exactly once, nothing else did.
        t.assertEqual(self.hook.other, [], "unexpected exceptions in callbacks")
        seen, raised = collections.Counter(self.hook.seen), collections.Counter(self.raised)
        t.assertEqual(dict(seen - raised), {}, "reached unraisablehook more often than raised "
                      "(names are seed/index)")
        t.assertEqual(dict(raised - seen), {}, "raised but never reached unraisablehook "
                      "(names are seed/index)")
        # IDs: unique across all threads and unloads (and earlier runs).
        ids = set(self.ids)
        reused = [i for i, n in collections.Counter(self.ids).items() if n > 1]
        t.assertEqual(reused, [], "IDs given to more than one thread or epoch")
        t.assertFalse(ids & ALL_IDS, "an ID of an earlier run was reused")
        ALL_IDS.update(ids)
        # No leak: every stored object and handler was released.
        names = [getattr(o, "tok", None) and o.tok.name for o in alive[:10]]
        t.assertEqual(len(alive), 0, f"{len(alive)} stored objects or handlers still alive after the "
                      f"threads ended, e.g. {names}")
        del alive
        # The workload really exercised what it claims.
        t.assertGreater(self.totals["closes"], self.lifetimes)
        t.assertGreater(self.totals["handler runs"], self.lifetimes)
        t.assertGreater(self.totals["dropped"], 0)
        t.assertGreater(len(self.raised), self.lifetimes // 4)
        t.assertGreater(len(self.ids), self.lifetimes // 2)


def lanes(run, count, lifetimes, start_one):
    """`count` lanes, each running threads one after the other until
    `lifetimes` threads have run; `start_one(s, seed, first)` runs one thread
    to its end (exit sequence included)."""
    def lane():
        first = True
        for n in iter(lambda: next(run.next), None):
            if n >= lifetimes:
                break
            seed = run.seed(n)
            s = Shadow(run, seed)
            start_one(s, seed, first)
            first = False
            run.verify(s)

    threads = [threading.Thread(target=lane, name=f"lane-{i}") for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def lifetimes_from_env(default):
    return int(os.environ.get("TLS_PY_STRESS_LIFETIMES", default))


class StressTest(unittest.TestCase):
    def test_threading_threads_exactly_once_under_churn(self):
        lifetimes = lifetimes_from_env(6000)
        count = min(64, lifetimes)
        barrier = threading.Barrier(count)

        def one(s, seed, first):
            t = threading.Thread(target=work, args=(s, seed, OPS[1], barrier if first else None))
            t.start()
            t.join()

        with Run(self, "threading.Thread", 1) as run:
            lanes(run, count, lifetimes, one)
        self.assertFalse(barrier.broken, "not all lanes' first workers were alive at once")
        run.finish(lifetimes)

    def test_thread_pool_workers_exactly_once_at_shutdown(self):
        pools, workers, tasks = 6, 32, 320
        with Run(self, "ThreadPoolExecutor", 2) as run:
            for p in range(pools):
                local = threading.local()
                shadows = []

                def task(seed):
                    s = getattr(local, "shadow", None)
                    if s is None:
                        s = local.shadow = Shadow(run, seed)
                        shadows.append(s)
                    work(s, seed, OPS[2])

                with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                    futures = [pool.submit(task, run.seed(p * tasks + n)) for n in range(tasks)]
                    for f in futures:
                        f.result()
                # shut down: every worker has ended, exit sequences included
                del local
                for s in shadows:
                    run.verify(s)
        run.finish(pools * 2)

    @unittest.skipUnless(hasattr(_thread, "_set_sentinel"), "no _thread._set_sentinel to wait on")
    def test_start_new_thread_exactly_once(self):
        lifetimes = 1000

        def one(s, seed, first):
            handed = []
            started = _thread.allocate_lock()
            started.acquire()

            def target():
                # Released when this thread state is deleted, after it was
                # cleared (which ran the thread's tls exit): a join.
                ended = _thread._set_sentinel()
                ended.acquire()
                handed.append(ended)
                started.release()
                work(s, seed, OPS[3])

            _thread.start_new_thread(target, ())
            if not (started.acquire(timeout=WAIT) and handed[0].acquire(timeout=WAIT)):
                s.fail("thread did not end in time")

        with Run(self, "_thread.start_new_thread", 3) as run:
            lanes(run, 32, lifetimes, one)
        run.finish(lifetimes)

    def test_native_threads_calling_python_exactly_once(self):
        lifetimes = 600

        def one(s, seed, first):
            # Returns after the native thread has left Python (its tls ended
            # at PyGILState_Release) and has been joined.
            run_in_native_thread(lambda: work(s, seed, OPS[4]))

        with Run(self, "native threads", 4) as run:
            lanes(run, 32, lifetimes, one)
        run.finish(lifetimes)

    @unittest.skipUnless(os.environ.get("TLS_PY_STRESS_REPLAY"), "set TLS_PY_STRESS_REPLAY=<seed>")
    def test_replay_one_seed(self):
        seed = int(os.environ["TLS_PY_STRESS_REPLAY"], 0)
        ops = OPS.get((seed - BASE_SEED) >> 32, OPS[1])
        with Run(self, f"replay {seed:#x}", 0) as run:
            s = Shadow(run, seed)
            t = threading.Thread(target=work, args=(s, seed, ops))
            t.start()
            t.join()
            run.verify(s)
        print(f"\nreplay {seed:#x}: {ops} operations, {len(s.toks)} values and handlers, "
              f"{len(s.raised)} raised, IDs {s.ids}", file=sys.stderr)
        for failure in run.failures:
            print(failure, file=sys.stderr)
        self.assertEqual(run.failures, [])
        self.assertEqual(sorted(run.hook.seen), sorted(run.raised))
        self.assertEqual(run.hook.other, [])


if __name__ == "__main__":
    unittest.main()
