"""Many threads in tls at the same instant: the test written for free-threaded
CPython (3.13t, no GIL), run on every interpreter.

Eight threads start together and, for a fixed number of rounds each, store
values whose close() calls tls, delete some, reset, register at_exit handlers
that call tls, run tasks on one shared tls.ThreadPoolExecutor (each task stores
values and handlers of its own, closed and run at its end), run one shared
Snapshot from all of them at once, and list every thread with tls.threads().

Every close and handler carries a serial number. Each thread keeps a shadow of
what it stored, so when all have ended we know exactly which closes and
handlers were owed: a value still stored at a reset, at its task's end or at
its thread's end is closed once; a deleted one never; every handler runs once.
The test checks the closed and run serials against the owed ones, exactly:
nothing missing, nothing twice, nothing extra. Each close and handler runs on
its owner's thread (its tls.id()), with one exception the rules give: a value
that a submitted task's snapshot still holds when its thread ends is closed
where that snapshot is released (docs/python.md, "a captured value closes
once"), here a pool worker dropping its work item. So a close elsewhere is
wrong only before the owner's exit began, which an at_exit handler registered
first (run last of its handlers, before its closes) marks. A hang fails the test through
faulthandler (the stacks of every thread, then exit), never blocks the run.

On 3.13t the suite runs with PYTHON_GIL=0 (tools/test_wheels.py), and
test_import_leaves_the_gil_off checks the module keeps it off by itself.
"""

import collections
import faulthandler
import random
import sys
import sysconfig
import threading
import unittest

import tls
from support import run_python

THREADS = 8
ROUNDS = 150
HANG_TIMEOUT = 240  # seconds: far above a normal run (~1 s), below the test's size

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


class Ledger:
    """The serials owed and the serials seen, from every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.next = 0
        self.owed_closes = collections.Counter()
        self.owed_handlers = collections.Counter()
        self.closed = collections.Counter()
        self.ran = collections.Counter()
        self.wrong_thread = []
        self.exiting = set()  # ids whose thread exit has begun

    def mark_exiting(self, owner):
        with self.lock:
            self.exiting.add(owner)

    def exit_began(self, owner):
        with self.lock:
            return owner in self.exiting

    def serial(self):
        with self.lock:
            self.next += 1
            return self.next

    def owe_closes(self, serials):
        with self.lock:
            self.owed_closes.update(serials)

    def owe_handler(self, serial):
        with self.lock:
            self.owed_handlers[serial] += 1

    def saw_close(self, serial):
        with self.lock:
            self.closed[serial] += 1

    def saw_handler(self, serial):
        with self.lock:
            self.ran[serial] += 1


class Closer:
    """A value whose close() calls tls (get, set, id) on the closing thread."""

    def __init__(self, ledger, owner):
        self.ledger = ledger
        self.serial = ledger.serial()
        self.owner = owner

    def close(self):
        if tls.id() != self.owner and not self.ledger.exit_began(self.owner):
            self.ledger.wrong_thread.append(("close", self.serial))
        tls.get(("closing", self.serial))
        tls.set(("closed", self.serial), self.serial)  # a plain int: nothing to close
        self.ledger.saw_close(self.serial)


def handler(ledger, owner):
    serial = ledger.serial()
    ledger.owe_handler(serial)

    def run():
        if tls.id() != owner:
            ledger.wrong_thread.append(("handler", serial))
        tls.get("k0")
        ledger.saw_handler(serial)

    return run


def task_body(ledger, rng_seed):
    """A pool task: its own values and handlers, owed at its end."""
    rng = random.Random(rng_seed)
    me = tls.id()
    serials = []
    for i in range(rng.randrange(1, 4)):
        value = Closer(ledger, me)
        tls.set(("task", i), value)
        serials.append(value.serial)
    ledger.owe_closes(serials)  # the task's end closes them
    tls.at_exit(handler(ledger, me))
    return len(serials)


def shared_snapshot_body(ledger):
    """Run from every thread at once in one Snapshot: sees the captured value,
    stores one of its own (closed at the task's end), never the captured one."""
    assert tls.get("captured") == "from main", tls.get("captured")
    value = Closer(ledger, tls.id())
    tls.set("mine", value)
    ledger.owe_closes([value.serial])


def worker(ledger, pool, snapshot, seed, start, errors):
    rng = random.Random(seed)
    try:
        start.wait()
        me = tls.id()
        tls.at_exit(lambda: ledger.mark_exiting(me))  # first in, so last out
        stored = {}  # key -> serial: the shadow of this thread's Closers
        for round_ in range(ROUNDS):
            op = rng.random()
            if op < 0.40:
                key = f"k{rng.randrange(12)}"
                if key in stored:
                    tls.delete(key)  # deleted: never closed
                    del stored[key]
                value = Closer(ledger, me)
                tls.set(key, value)
                stored[key] = value.serial
            elif op < 0.50:
                ledger.owe_closes(stored.values())
                stored.clear()
                tls.reset()  # closes what the shadow held; keeps id and handlers
                if tls.id() != me:
                    errors.append(f"seed {seed}: reset changed the id")
            elif op < 0.60:
                tls.at_exit(handler(ledger, me))
            elif op < 0.75:
                futures = [pool.submit(task_body, ledger, rng.random()) for _ in range(3)]
                for f in futures:
                    f.result(timeout=HANG_TIMEOUT)
                if tls.get("k0") is not None and "k0" not in stored:
                    errors.append(f"seed {seed}: a task's value leaked into the thread")
            elif op < 0.85:
                snapshot.run(shared_snapshot_body, ledger)
                if tls.get("mine") is not None:
                    errors.append(f"seed {seed}: a snapshot task's value leaked into the thread")
            else:
                ids = {t.id for t in tls.threads()}
                if me not in ids:
                    errors.append(f"seed {seed}: tls.threads() misses the calling thread")
            for key, serial in stored.items():
                got = tls.get(key)
                if got is None or got.serial != serial:
                    errors.append(f"seed {seed} round {round_}: {key} is {got!r}, not {serial}")
                    break
        ledger.owe_closes(stored.values())  # the thread's end closes them
    except BaseException as e:  # handed to the main thread
        errors.append(f"seed {seed}: {type(e).__name__}: {e}")


class FreeThreadingTest(unittest.TestCase):
    def setUp(self):
        faulthandler.dump_traceback_later(HANG_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)

    def test_many_threads_at_once_close_and_run_every_owed_callback_exactly_once(self):
        for attempt in range(3):  # three runs: different interleavings
            with self.subTest(attempt=attempt):
                self.run_threads(base_seed=0x5EED0000 + attempt * 0x100)

    def run_threads(self, base_seed):
        ledger = Ledger()
        errors = []
        start = threading.Barrier(THREADS)
        tls.set("captured", "from main")
        snapshot = tls.capture("captured")
        tls.delete("captured")
        with tls.ThreadPoolExecutor(max_workers=4) as pool:
            threads = [
                threading.Thread(target=worker,
                                 args=(ledger, pool, snapshot, base_seed + i, start, errors))
                for i in range(THREADS)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(HANG_TIMEOUT)
                self.assertFalse(t.is_alive(), "a worker hung")
        # Pool workers and (before 3.11) threading.Thread end their tls exit
        # after join() returned: wait for the counts, with a deadline.
        done = threading.Event()
        for _ in range(600):
            with ledger.lock:
                if ledger.closed == ledger.owed_closes and ledger.ran == ledger.owed_handlers:
                    done.set()
                    break
            done.wait(0.05)
        self.assertEqual(errors, [])
        self.assertEqual(ledger.wrong_thread, [], "a close or handler ran on another thread")
        with ledger.lock:
            missing = ledger.owed_closes - ledger.closed
            extra = ledger.closed - ledger.owed_closes
            self.assertEqual((dict(missing), dict(extra)), ({}, {}),
                             "closes owed but not run / run but not owed or twice")
            missing = ledger.owed_handlers - ledger.ran
            extra = ledger.ran - ledger.owed_handlers
            self.assertEqual((dict(missing), dict(extra)), ({}, {}),
                             "handlers owed but not run / run but not owed or twice")
            self.assertGreater(sum(ledger.owed_closes.values()), THREADS * 10)
            self.assertGreater(sum(ledger.owed_handlers.values()), THREADS)

    @unittest.skipUnless(FREE_THREADED, "a free-threaded (3.13t) interpreter only")
    def test_import_leaves_the_gil_off(self):
        # In a child without PYTHON_GIL in its environment: the module's own
        # declaration (Py_MOD_GIL_NOT_USED) keeps the GIL off, with no warning.
        proc = run_python("""
            import sys, warnings
            warnings.simplefilter("error")
            import tls
            tls.set("k", 1)
            print(sys._is_gil_enabled())
            """, env_drop=("PYTHON_GIL",))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "False")


if __name__ == "__main__":
    unittest.main()
