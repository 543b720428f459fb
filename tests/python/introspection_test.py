"""tls.threads() and tls.stats(): every live thread and open task, keys and
counts only, consistent with the C++ view (tls::ListThreads / GetStats)."""

import dataclasses
import gc
import random
import sys
import threading
import time
import unittest
import weakref

import tls
from support import HOOKS, needs_hooks, run_in_native_thread, run_python


def entry(report_list, id_):
    """The entry with this id, or None."""
    found = [t for t in report_list if t.id == id_]
    assert len(found) <= 1, found
    return found[0] if found else None


class Parked:
    """Threads that each run setup() then wait until released; what setup()
    returned, and each thread's id/ident, are read while they wait."""

    def __init__(self, count, setup, name="parked"):
        self.release = threading.Event()
        self.ready = threading.Barrier(count + 1)
        self.results = [None] * count
        self.threads = [threading.Thread(target=self._run, args=(i, setup), name=f"{name}-{i}")
                        for i in range(count)]

    def _run(self, i, setup):
        self.results[i] = (tls.id(), threading.get_ident(), setup(i))
        self.ready.wait()
        self.release.wait()

    def __enter__(self):
        for t in self.threads:
            t.start()
        self.ready.wait(timeout=30)
        return self

    def __exit__(self, *exc):
        self.release.set()
        for t in self.threads:
            t.join(timeout=30)
        return False


class ListingTest(unittest.TestCase):
    def test_lists_every_live_thread_with_id_ident_name_and_key_reprs_in_insertion_order(self):
        def setup(i):
            tls.set("zeta", 1)
            tls.set(i, 2)
            tls.set(("tuple", i), 3)
            tls.set("alpha", 4)

        with Parked(3, setup) as parked:
            listing = tls.threads()
            for i, (id_, ident, _) in enumerate(parked.results):
                with self.subTest(thread=i):
                    t = entry(listing, id_)
                    self.assertIsNotNone(t)
                    self.assertEqual(t.ident, ident)
                    self.assertEqual(t.name, f"parked-{i}")
                    self.assertFalse(t.task)
                    self.assertEqual(t.python_keys, ("'zeta'", repr(i), repr(("tuple", i)), "'alpha'"))
                    self.assertEqual(t.python_values, 4)
        main = entry(tls.threads(), tls.id())
        self.assertEqual(main.ident, threading.get_ident())
        self.assertEqual(main.name, threading.main_thread().name)

    def test_report_and_stats_are_frozen_dataclasses(self):
        tls.set("k", 1)
        t = entry(tls.threads(), tls.id())
        self.assertIsInstance(t, tls.ThreadReport)
        self.assertIsInstance(tls.stats(), tls.Stats)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            t.python_keys = ()
        self.assertEqual(set(dataclasses.asdict(tls.stats())),
                         {"threads", "tasks", "python_threads", "python_values", "cpp_values",
                          "slot_values", "handlers", "bytes", "kept_stubs"})
        tls.delete("k")

    def test_values_are_never_exposed(self):
        secret = "s3cret-value-" + str(random.random())

        class Marker:
            def __repr__(self):
                return secret

        def setup(i):
            tls.set("password", secret)
            tls.set("marker", Marker())

        with Parked(1, setup) as parked:
            id_ = parked.results[0][0]
            report = entry(tls.threads(), id_)
            self.assertEqual(report.python_keys, ("'password'", "'marker'"))
            self.assertNotIn(secret, repr(report))
            self.assertNotIn(secret, repr(dataclasses.asdict(report)))
            self.assertNotIn(secret, repr(tls.stats()))
            for value in dataclasses.asdict(report).values():
                self.assertIsInstance(value, (int, str, tuple, type(None)))

    def test_ended_threads_disappear(self):
        with Parked(2, lambda i: tls.set("k", i)) as parked:
            ids = [r[0] for r in parked.results]
            listed = {t.id for t in tls.threads()}
            self.assertTrue(set(ids) <= listed)
        listed = {t.id for t in tls.threads()}
        self.assertFalse(set(ids) & listed)

    def test_threads_without_python_values_are_listed_with_no_keys(self):
        def setup(i):
            if i == 0:
                tls.id()  # state, but no Python store
            elif i == 1:
                tls.at_exit(lambda: None)  # a handler only
            else:
                tls.set("gone", 1)  # a store, emptied
                tls.delete("gone")

        with Parked(3, setup) as parked:
            listing = tls.threads()
            for i, (id_, _, _) in enumerate(parked.results):
                with self.subTest(thread=i):
                    t = entry(listing, id_)
                    self.assertIsNotNone(t)
                    self.assertEqual((t.python_keys, t.python_values), ((), 0))
            self.assertEqual(entry(listing, parked.results[1][0]).handlers, 1)

    def test_listing_keeps_no_reference_to_a_threads_store(self):
        # unload() drops the thread's store without clearing it: its key and
        # value die with it only if no listing kept a reference.
        class Obj:
            pass

        refs = []
        stored, listed, unloaded = threading.Event(), threading.Event(), threading.Event()

        def worker():
            key, value = Obj(), Obj()
            refs.extend([weakref.ref(key), weakref.ref(value)])
            tls.set(key, value)
            del key, value
            stored.set()
            listed.wait()
            tls.unload()
            unloaded.set()

        t = threading.Thread(target=worker)
        t.start()
        stored.wait()
        ids = [r.id for r in tls.threads() if r.python_values == 1 and r.id != tls.id()]
        self.assertEqual(len(ids), 1)
        self.assertGreaterEqual(tls.stats().python_threads, 1)
        listed.set()
        unloaded.wait()
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None])
        t.join()

    def test_key_whose_repr_raises_is_still_listed(self):
        class BadRepr:
            def __repr__(self):
                raise ValueError("no repr")

        key = BadRepr()
        tls.set(key, 1)
        try:
            keys = entry(tls.threads(), tls.id()).python_keys
            self.assertIn(object.__repr__(key), keys)
        finally:
            tls.delete(key)

    def test_name_is_none_for_a_thread_threading_does_not_know(self):
        seen = {}

        def fn():
            tls.set("k", 1)
            seen["ident"] = threading.get_ident()  # does not make a _DummyThread
            seen["report"] = entry(tls.threads(), tls.id())

        run_in_native_thread(fn)
        self.assertEqual(seen["report"].ident, seen["ident"])
        self.assertIsNone(seen["report"].name)
        self.assertEqual(seen["report"].python_keys, ("'k'",))


class TaskTest(unittest.TestCase):
    def setUp(self):
        tls.reset()  # the main thread's values are captured below: start with none

    def test_tasks_show_as_task_with_their_own_id(self):
        tls.set("outer", 1)
        thread_id = tls.id()
        seen = []

        def in_task(label):
            tls.set(label, 2)
            listing = tls.threads()
            seen.append((label, tls.id(), entry(listing, tls.id()), entry(listing, thread_id)))

        tls.capture().run(in_task, "via_run")
        tls.wrap(in_task)("via_wrap")
        with tls.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(in_task, "via_pool").result()
        self.assertEqual(len(seen), 3)
        for label, task_id, task, thread in seen:
            with self.subTest(label=label):
                self.assertNotEqual(task_id, thread_id)
                self.assertTrue(task.task)
                self.assertEqual(task.python_keys, ("'outer'", repr(label)))
                self.assertFalse(thread.task)  # the submitting thread, listed on its own
                self.assertIn("'outer'", thread.python_keys)
        _, _, run_task, _ = seen[0]
        self.assertEqual(run_task.ident, threading.get_ident())
        self.assertEqual(run_task.name, threading.current_thread().name)
        # Ended tasks are gone.
        self.assertFalse({s[1] for s in seen} & {t.id for t in tls.threads()})
        tls.delete("outer")


class Cache(tls.local):
    pass


class LocalsTest(unittest.TestCase):
    def test_local_attributes_are_listed_under_their_thread_by_name_never_values(self):
        secret = "s3cret-local-" + str(random.random())
        plain, cache = tls.local(), Cache()

        def setup(i):
            if i == 0:
                plain.conn = secret
                cache.user = secret
                cache.session = 1
            else:
                tls.set("k", 1)  # a thread that never touched a local

        with Parked(2, setup) as parked:
            listing = tls.threads()
            first, second = (entry(listing, r[0]) for r in parked.results)
            self.assertEqual(first.locals, ("local.conn", "Cache.user", "Cache.session"))
            self.assertEqual(second.locals, ())
            self.assertNotIn(secret, repr(listing))
            # The object's death releases every thread's attributes: gone at once.
            del cache
            gc.collect()
            self.assertEqual(entry(tls.threads(), parked.results[0][0]).locals, ("local.conn",))
            # A thread's emptied dict lists nothing.
            del plain
            gc.collect()
            self.assertEqual(entry(tls.threads(), parked.results[0][0]).locals, ())

    def test_local_attributes_seen_by_a_task_are_listed_under_the_thread_not_the_task(self):
        tls.reset()
        cache = tls.local()
        cache.conn = 1
        thread_id = tls.id()
        seen = []

        def in_task():
            tls.set("k", 1)  # the task's own state, so that it is listed
            cache.more = 2  # the thread's: a local is per thread by default
            listing = tls.threads()
            seen.append((entry(listing, tls.id()), entry(listing, thread_id)))

        tls.capture().run(in_task)
        (task, thread), = seen
        self.assertTrue(task.task)
        self.assertEqual(task.locals, ())
        self.assertEqual(thread.locals, ("local.conn", "local.more"))


class ConsistencyTest(unittest.TestCase):
    def test_ids_match_tls_id_on_each_thread(self):
        def setup(i):
            tls.set("k", i)
            return entry(tls.threads(), tls.id())  # seen from the thread itself

        with Parked(4, setup) as parked:
            listing = tls.threads()
            for id_, ident, own in parked.results:
                self.assertEqual((own.id, own.ident), (id_, ident))
                self.assertEqual(entry(listing, id_).ident, ident)
            ids = [t.id for t in listing]
            self.assertEqual(len(ids), len(set(ids)))

    @needs_hooks
    def test_same_threads_and_ids_as_cpp_list_threads(self):
        def setup(i):
            if i == 0:
                HOOKS.cpp_set_closer("cpp only")  # C++ values, no Python store
            else:
                tls.set("py", i)

        with Parked(3, setup) as parked:
            listing = tls.threads()
            cpp = HOOKS.cpp_threads()
            self.assertEqual([(t.id, t.task) for t in listing], [(i, task) for i, task, _ in cpp])
            self.assertEqual([tuple(sorted(t.cpp_keys)) for t in listing],
                             [tuple(sorted(keys)) for _, _, keys in cpp])
            cpp_only = entry(listing, parked.results[0][0])
            self.assertEqual((cpp_only.python_keys, cpp_only.cpp_keys), ((), ('"cpp only"',)))

    def test_stats_totals_are_consistent_with_the_listing(self):
        def setup(i):
            for k in range(i):
                tls.set(k, k)
            if i == 0:
                tls.id()
            tls.at_exit(lambda: None)

        with Parked(4, setup):
            listing = tls.threads()
            stats = tls.stats()
        self.assertEqual(stats.threads, sum(not t.task for t in listing))
        self.assertEqual(stats.tasks, sum(t.task for t in listing))
        self.assertEqual(stats.python_values, sum(t.python_values for t in listing))
        self.assertEqual(stats.python_threads, sum(t.python_values > 0 for t in listing))
        self.assertEqual(stats.cpp_values, sum(len(t.cpp_keys) for t in listing))
        self.assertEqual(stats.slot_values, sum(t.slot_values for t in listing))
        self.assertEqual(stats.handlers, sum(t.handlers for t in listing))
        self.assertGreaterEqual(stats.bytes, sum(t.bytes for t in listing))
        self.assertGreaterEqual(stats.python_values, 0 + 1 + 2 + 3)
        self.assertGreaterEqual(stats.python_threads, 3)

    @needs_hooks
    def test_stats_match_cpp_get_stats(self):
        with Parked(2, lambda i: tls.set("k", i)):
            stats = dataclasses.asdict(tls.stats())
            cpp = HOOKS.cpp_stats()
        cpp["cpp_values"] = cpp.pop("values")
        self.assertEqual({k: stats[k] for k in cpp}, cpp)


class ConcurrencyTest(unittest.TestCase):
    def test_from_a_thread_while_others_set_delete_and_exit(self):
        # 8 threads start short-lived threads that set, delete, reset and end,
        # while this thread lists and counts in a loop.
        stop = time.monotonic() + 3.0
        errors = []

        def short_life(seed):
            rng = random.Random(seed)
            for _ in range(rng.randrange(1, 20)):
                op = rng.random()
                if op < 0.5:
                    tls.set(rng.randrange(10), object())
                elif op < 0.8:
                    tls.delete(rng.randrange(10))
                elif op < 0.9:
                    tls.at_exit(lambda: None)
                else:
                    tls.reset()
                if rng.random() < 0.05:
                    tls.threads()  # and from the churning threads too

        def churner(n):
            seed = n * 1_000_000
            try:
                while time.monotonic() < stop:
                    seed += 1
                    t = threading.Thread(target=short_life, args=(seed,))
                    t.start()
                    t.join()
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        churners = [threading.Thread(target=churner, args=(n,), daemon=True) for n in range(8)]
        for t in churners:
            t.start()
        calls = 0
        while any(t.is_alive() for t in churners):
            listing = tls.threads()
            stats = tls.stats()
            calls += 1
            ids = [t.id for t in listing]
            self.assertEqual(len(ids), len(set(ids)))
            for t in listing:
                self.assertIsInstance(t.id, int)
                self.assertIsInstance(t.ident, int)
                self.assertTrue(t.name is None or isinstance(t.name, str))
                self.assertIs(t.task, False)
                self.assertTrue(all(isinstance(k, str) for k in t.python_keys))
                self.assertEqual(t.python_values, len(t.python_keys))
            for value in dataclasses.asdict(stats).values():
                self.assertIsInstance(value, int)
                self.assertGreaterEqual(value, 0)
            self.assertLess(time.monotonic(), stop + 60, "churners never finished: deadlock?")
        self.assertEqual(errors, [])
        self.assertGreater(calls, 10)


class FromExitTest(unittest.TestCase):
    def test_callable_from_an_at_exit_handler_and_a_close(self):
        seen = {}

        class Closer:
            def close(self):
                seen["close"] = (tls.id(), tls.threads(), tls.stats())

        def worker():
            tls.set("conn", Closer())
            tls.set("user", "ada")
            tls.at_exit(lambda: seen.setdefault("handler", (tls.id(), tls.threads(), tls.stats())))

        t = threading.Thread(target=worker, name="exiting")
        t.start()
        t.join()
        handler_id, listing, stats = seen["handler"]
        own = entry(listing, handler_id)
        self.assertEqual(own.python_keys, ("'conn'", "'user'"))  # values still there in handlers
        if sys.version_info >= (3, 11):  # the exit runs as the thread itself (threading)
            self.assertEqual(own.name, "exiting")
        self.assertIsInstance(stats, tls.Stats)
        close_id, listing, stats = seen["close"]
        self.assertIsInstance(stats, tls.Stats)
        self.assertTrue(all(isinstance(t, tls.ThreadReport) for t in listing))

    def test_callable_from_the_main_threads_exit_with_a_daemon_thread_alive(self):
        run = run_python("""
            import threading, time, tls
            ready = threading.Event()
            def daemon():
                tls.set("daemon", 1)
                ready.set()
                while True:
                    time.sleep(0.01)
            threading.Thread(target=daemon, name="d", daemon=True).start()
            ready.wait()
            tls.set("main", 1)
            def handler():
                listing = tls.threads()
                print(sorted((t.name, t.python_keys) for t in listing))
                print(tls.stats().python_values)
            tls.at_exit(handler)
        """)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.splitlines(),
                         ["[('MainThread', (\"'main'\",)), ('d', (\"'daemon'\",))]", "2"])


if __name__ == "__main__":
    unittest.main()
