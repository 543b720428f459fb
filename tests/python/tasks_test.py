"""Task-local storage: tls.capture() and Snapshot.run, tls.wrap,
tls.ThreadPoolExecutor. A task behaves like a thread of its own: it sees the
captured values and never the running thread's; what it sets, its at_exit
handlers and its ID are its own and end with it; the thread gets its values
back unchanged. One test per rule, named after it."""

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import gc
import inspect
import sys
import threading
import unittest
import warnings
import weakref

import tls
from support import (HOOKS, SLOW_FINALIZATION, Closer, Unraisables, needs_hooks, run_in_thread,
                     run_python)

request_var = contextvars.ContextVar("request_var", default="unset")


class TaskTestCase(unittest.TestCase):
    """Each test starts and ends with an empty store on the main thread."""

    def setUp(self):
        tls.unload()

    def tearDown(self):
        tls.unload()


class CaptureAndRunTest(TaskTestCase):
    def test_task_sees_captured_values(self):
        log = []
        a, b = object(), Closer(log, "b")
        tls.set("a", a)
        tls.set("b", b)
        snap = tls.capture()

        def seen():
            return tls.get("a"), tls.get("b")

        for where, (got_a, got_b) in [("this thread", snap.run(seen)),
                                      ("another thread", run_in_thread(snap.run, seen))]:
            with self.subTest(where):
                self.assertIs(got_a, a)   # the very objects: shared, not copied
                self.assertIs(got_b, b)
        self.assertEqual(log, [])

    def test_snapshot_is_taken_at_capture(self):
        first = object()
        tls.set("a", first)
        tls.set("b", "b")
        snap = tls.capture()
        tls.set("a", "replaced")
        tls.delete("b")
        tls.set("c", "added later")
        self.assertEqual(snap.run(lambda: (tls.get("a"), tls.get("b"), tls.get("c"))),
                         (first, "b", None))

    def test_task_changes_never_reach_the_snapshot_or_the_next_task(self):
        tls.set("a", "captured")
        snap = tls.capture()

        def change():
            tls.set("a", "task")
            tls.set("new", "task")
            tls.delete("a")

        snap.run(change)
        self.assertEqual(snap.run(lambda: (tls.get("a"), tls.get("new"))), ("captured", None))
        self.assertEqual((tls.get("a"), tls.get("new")), ("captured", None))

    def test_run_passes_arguments_and_returns_the_result(self):
        snap = tls.capture()
        self.assertEqual(snap.run(lambda *a, **k: (a, k), 1, 2, fn=3, key=4),
                         ((1, 2), {"fn": 3, "key": 4}))
        self.assertEqual(snap.run(divmod, 7, 2), (3, 1))
        with self.assertRaises(TypeError):
            snap.run()
        with self.assertRaisesRegex(TypeError, "must be callable, not int"):
            snap.run(3)

    def test_capture_with_keys_takes_only_those_keys(self):
        a = object()
        tls.set("a", a)
        tls.set(2, "two")
        tls.set("other", "not taken")
        snap = tls.capture("a", 2, "missing")
        self.assertEqual(snap.run(lambda: (tls.get("a"), tls.get(2), tls.get("other"),
                                           tls.get("missing", "left out"))),
                         (a, "two", None, "left out"))
        with self.assertRaises(TypeError):
            tls.capture([])        # unhashable, as for get()
        tls.unload()
        with self.assertRaises(TypeError):
            tls.capture({})        # also with no store

    def test_empty_thread_captures_nothing_and_an_idle_task_takes_no_id(self):
        # Creating a store takes the next ID (api_test); none is taken here.
        def capture_and_run_idle_tasks():
            snap = tls.capture()
            snap.run(lambda: None)
            tls.Snapshot().run(lambda: None)
            return snap.run(lambda: tls.get("a"))

        before = tls.id()
        self.assertIsNone(run_in_thread(capture_and_run_idle_tasks))
        tls.unload()
        self.assertEqual(tls.id(), before + 1)

    def test_empty_snapshot_hides_every_value(self):
        tls.set("a", 1)
        self.assertIsNone(tls.Snapshot().run(tls.get, "a"))
        with self.assertRaises(TypeError):
            tls.Snapshot(1)

    def test_thread_values_hidden_inside_and_restored_after(self):
        log = []
        tls.set("request", "submitter's")
        snap = tls.capture()

        def on_worker():
            mine = Closer(log, "worker's own")
            tls.set("mine", mine)
            tls.set("request", "worker's")
            thread_id = tls.id()

            def task():
                seen = (tls.get("mine"), tls.get("request"))
                tls.set("mine", "task's")       # the task's view only
                tls.delete("request")
                return seen

            seen = snap.run(task)
            back = (tls.get("mine") is mine, tls.get("request"), tls.id() == thread_id, list(log))
            return seen, back

        seen, back = run_in_thread(on_worker)
        self.assertEqual(seen, (None, "submitter's"))
        self.assertEqual(back, (True, "worker's", True, []))   # unchanged, not closed
        self.assertEqual(log, [("worker's own", "close")])     # at the worker's own end

    def test_task_set_values_closed_at_task_end_once(self):
        log = []

        def task():
            value = Closer(log, "twice stored")
            tls.set("x", value)
            tls.set("y", value)                       # one object, two keys
            tls.set("data", tls.make_data(Closer(log, "data")))
            tls.set("plain", 1)                       # no close(): left alone
            log.append("fn returns")

        tls.capture().run(task)
        log.append("run returned")
        self.assertEqual(log, ["fn returns", ("twice stored", "close"), ("data", "close"),
                               "run returned"])
        self.assertIsNone(tls.get("x"))
        tls.reset()
        self.assertEqual(len(log), 4)                 # nothing closed twice

    def test_captured_values_never_closed_by_task(self):
        log = []
        captured = Closer(log, "captured")
        tls.set("c", captured)
        snap = tls.capture()

        def restore_it():
            tls.set("again", tls.get("c"))   # the same object under a key of the task's
            tls.set("own", Closer(log, "own"))

        def reset_it():
            tls.reset()                      # closes the task's view: not what it was given

        snap.run(restore_it)
        snap.run(reset_it)
        run_in_thread(snap.run, restore_it)
        self.assertEqual(log, [("own", "close"), ("own", "close")])
        tls.reset()                          # its owner closes it
        self.assertEqual(log[-1], ("captured", "close"))
        self.assertEqual(len(log), 3)

    def test_at_exit_in_task_runs_at_task_end_newest_first_with_values_readable(self):
        log = []

        def task():
            tls.set("v", Closer(log, "v"))
            tls.at_exit(lambda: log.append(("older", type(tls.get("v")).__name__)))
            tls.at_exit(lambda: log.append(("newer", type(tls.get("v")).__name__)))
            log.append("fn returns")

        def on_worker():
            tls.at_exit(lambda: log.append("worker's own handler"))
            tls.capture().run(task)
            log.append("run returned")

        run_in_thread(on_worker)
        self.assertEqual(log, ["fn returns", ("newer", "Closer"), ("older", "Closer"),
                               ("v", "close"), "run returned", "worker's own handler"])

    def test_exception_in_task_still_restores_and_runs_task_exit(self):
        log = []
        mine = object()
        tls.set("mine", mine)
        thread_id = tls.id()

        def task():
            tls.set("mine", "task's")
            tls.set("v", Closer(log, "v"))
            tls.at_exit(lambda: log.append(("handler", tls.get("mine"))))
            raise ValueError("from the task")

        with self.assertRaisesRegex(ValueError, "from the task"):
            tls.Snapshot().run(task)
        self.assertEqual(log, [("handler", "task's"), ("v", "close")])
        self.assertIs(tls.get("mine"), mine)
        self.assertEqual(tls.id(), thread_id)

    def test_error_in_task_handler_goes_to_unraisablehook_and_fn_error_still_propagates(self):
        log = []

        def task():
            tls.at_exit(lambda: log.append("older ran"))
            tls.at_exit(lambda: 1 / 0)
            raise KeyError("fn")

        with Unraisables() as u, self.assertRaises(KeyError):
            tls.Snapshot().run(task)
        self.assertEqual([e[0] for e in u.seen], [ZeroDivisionError])
        self.assertEqual(log, ["older ran"])

    def test_nested_tasks(self):
        log = []
        seen = {}
        tls.set("k", Closer(log, "thread's, captured by outer"))
        outer_snap = tls.capture()
        thread_id = tls.id()

        def inner():
            seen["inner sees"] = (type(tls.get("k")).__name__, type(tls.get("o")).__name__)
            seen["inner id"] = tls.id()
            tls.set("k2", tls.get("k"))          # captured two levels up: never closed here
            tls.set("o2", tls.get("o"))          # captured from outer: not inner's to close
            tls.set("i", Closer(log, "inner's"))
            tls.at_exit(lambda: log.append("inner exit"))

        def outer():
            tls.set("o", Closer(log, "outer's"))
            seen["outer id"] = tls.id()
            tls.capture().run(inner)
            log.append("back in outer")
            seen["outer after"] = (tls.get("i"), tls.get("k2"), type(tls.get("o")).__name__,
                                   tls.id())
            tls.at_exit(lambda: log.append("outer exit"))

        outer_snap.run(outer)
        self.assertEqual(seen["inner sees"], ("Closer", "Closer"))
        self.assertEqual(seen["outer after"], (None, None, "Closer", seen["outer id"]))
        self.assertEqual(len({thread_id, seen["outer id"], seen["inner id"]}), 3)
        self.assertEqual(log, ["inner exit", ("inner's", "close"), "back in outer",
                               "outer exit", ("outer's", "close")])
        self.assertEqual(tls.id(), thread_id)
        tls.reset()
        self.assertEqual(log[-1], ("thread's, captured by outer", "close"))

    def test_id_inside_task_is_the_tasks_own(self):
        thread_id = tls.id()
        snap = tls.capture()
        ids = [snap.run(tls.id) for _ in range(3)] + [run_in_thread(snap.run, tls.id)]
        self.assertEqual(len(set(ids)), 4)             # a new one per task
        self.assertNotIn(thread_id, ids)
        self.assertTrue(all(i > thread_id for i in ids))   # never reused: each one newer
        self.assertEqual(tls.id(), thread_id)
        self.assertEqual(snap.run(lambda: tls.id() == tls.id()), True)   # stable inside
        if HOOKS:
            self.assertTrue(snap.run(lambda: tls.id() == HOOKS.cpp_id()))

    def test_no_change_a_task_makes_reaches_the_snapshot_whatever_its_first_change_is(self):
        # A task reads its snapshot's dict until its first change (copy on
        # write): each first change below leaves the snapshot whole.
        log = []
        closer = Closer(log, "given")
        tls.set("a", 1)
        tls.set("b", closer)
        snapshot = tls.capture()
        tls.delete("a")
        tls.delete("b")

        def whole():
            return tls.get("a"), tls.get("b")

        firsts = {
            "set": lambda: tls.set("a", 2),
            "set of a new key": lambda: tls.set("c", 3),
            "delete": lambda: tls.delete("a"),
            "delete of a missing key": lambda: tls.delete("missing"),
            "reset": tls.reset,
            "unload": tls.unload,
        }
        for name, first in firsts.items():
            with self.subTest(first=name):
                def task():
                    seen = whole()
                    listed = [t.python_keys for t in tls.threads() if t.id == tls.id()]
                    first()
                    inner = tls.capture().run(whole)  # a nested task sees the changed view
                    return seen, listed, inner

                seen, listed, inner = snapshot.run(task)
                self.assertEqual(seen, (1, closer))
                self.assertEqual(listed, [("'a'", "'b'")])  # a task that only read lists them
                expected = {"set": (2, closer), "set of a new key": (1, closer),
                            "delete": (None, closer), "delete of a missing key": (1, closer),
                            "reset": (None, None), "unload": (None, None)}[name]
                self.assertEqual(inner, expected)
                self.assertEqual(snapshot.run(whole), (1, closer))  # the snapshot is whole
        self.assertEqual(log, [])  # a task never closes what it was given, reset included

    def test_reset_and_unload_inside_task_act_on_task_view(self):
        log = []
        mine = Closer(log, "thread's")
        tls.set("mine", mine)
        tls.at_exit(lambda: log.append("thread's handler"))
        thread_id = tls.id()
        snap = tls.capture()

        def reset_task():
            tls.set("t", Closer(log, "task's"))
            tls.at_exit(lambda: log.append("task handler, kept by reset"))
            task_id = tls.id()
            tls.reset()
            log.append(("after reset", tls.get("mine"), tls.get("t"), tls.id() == task_id))

        def unload_task():
            tls.set("t", Closer(log, "unloaded"))
            tls.at_exit(lambda: log.append("dropped by unload"))
            task_id = tls.id()
            tls.unload()
            log.append(("after unload", tls.get("mine"), tls.id() != task_id))

        snap.run(reset_task)
        self.assertEqual(log, [("task's", "close"), ("after reset", None, None, True),
                               "task handler, kept by reset"])
        del log[:]
        snap.run(unload_task)
        self.assertEqual(log, [("after unload", None, True)])
        self.assertIs(tls.get("mine"), mine)          # the thread's: untouched
        self.assertEqual(tls.id(), thread_id)
        tls.reset()
        self.assertEqual(log[-1], ("thread's", "close"))
        self.assertNotIn("thread's handler", log)     # reset keeps handlers; not run

    def test_same_snapshot_run_by_many_threads_at_once(self):
        shared = object()
        tls.set("shared", shared)
        snap = tls.capture()
        inside = threading.Barrier(8)

        def task(i):
            tls.set("mine", i)
            inside.wait(timeout=30)                   # all 8 inside at once
            return tls.get("shared") is shared, tls.get("mine"), tls.id()

        results = [None] * 8

        def thread(i):
            results[i] = snap.run(task, i)

        threads = [threading.Thread(target=thread, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([r[:2] for r in results], [(True, i) for i in range(8)])
        self.assertEqual(len({r[2] for r in results}), 8)
        self.assertIsNone(snap.run(tls.get, "mine"))

    def test_task_releases_what_it_held(self):
        class Value:
            pass

        captured = Value()
        tls.set("c", captured)
        snap = tls.capture()
        refs_before = sys.getrefcount(captured)
        made = []

        def task():
            value = Value()
            made.append(weakref.ref(value))
            tls.set("v", value)
            tls.at_exit(lambda: value)

        for _ in range(100):
            snap.run(task)
        gc.collect()
        self.assertTrue(all(r() is None for r in made))
        self.assertEqual(sys.getrefcount(captured), refs_before)
        gone = weakref.ref(captured)
        del captured, snap
        tls.unload()
        gc.collect()
        self.assertIsNone(gone())

    @needs_hooks
    def test_cpp_values_captured_too_and_never_closed_by_task(self):
        HOOKS.cpp_set_closer("cpp")
        snap = tls.capture()
        closes = HOOKS.cpp_closes()
        self.assertTrue(snap.run(HOOKS.cpp_has, "cpp"))
        self.assertTrue(run_in_thread(snap.run, HOOKS.cpp_has, "cpp"))
        self.assertFalse(tls.capture("cpp").run(HOOKS.cpp_has, "cpp"))   # keys: Python only
        self.assertFalse(tls.Snapshot().run(HOOKS.cpp_has, "cpp"))       # the thread's: hidden
        self.assertEqual(HOOKS.cpp_closes(), closes)
        snap.run(HOOKS.cpp_set_closer, "task's")     # the task's own C++ value
        self.assertEqual(HOOKS.cpp_closes(), closes + 1)
        self.assertTrue(HOOKS.cpp_has("cpp"))
        tls.reset()
        self.assertEqual(HOOKS.cpp_closes(), closes + 2)


class CapturedCloseTest(TaskTestCase):
    """A captured value closes once, when its thread's store and every
    snapshot holding it have let go (core/task.h); Python values as C++ ones."""

    def tearDown(self):
        super().tearDown()
        gc.collect()
        if HOOKS is not None:
            self.assertEqual(HOOKS.snapshot_holds(), (0, 0))   # nothing counted is left

    def capture_on_a_thread_that_ends(self, log, *keys):
        """A thread stores a Closer under "conn", captures, and ends; returns
        (the snapshot, the Closer)."""
        def request():
            tls.set("conn", Closer(log, "conn"))
            tls.set("plain", object())
            return tls.capture(*keys), tls.get("conn")
        return run_in_thread(request)

    def test_thread_end_leaves_the_close_to_the_last_task_holding_the_value(self):
        log = []
        snap, conn = self.capture_on_a_thread_that_ends(log)
        self.assertEqual(log, [])                       # its thread ended: not closed
        other = tls.capture()                           # main's own: holds nothing of it
        self.assertIs(snap.run(tls.get, "conn"), conn)
        self.assertIs(run_in_thread(snap.run, tls.get, "conn"), conn)
        self.assertEqual(log, [])                       # tasks never close what they were given
        keyed, _ = self.capture_on_a_thread_that_ends(log, "conn")   # capture(*keys) too
        self.assertEqual(log, [])
        del keyed
        self.assertEqual(log, [("conn", "close")])      # the second thread's conn
        del snap
        self.assertEqual(log, [("conn", "close")] * 2)  # the last holder went: closed, once
        del other
        self.assertEqual(len(log), 2)

    def test_thread_end_closes_at_once_when_no_snapshot_holds_the_value(self):
        log = []

        def request():
            tls.set("conn", Closer(log, "conn"))
            tls.capture()                               # made and dropped at once
        run_in_thread(request)
        self.assertEqual(log, [("conn", "close")])

    def test_a_snapshot_released_before_the_thread_ends_owes_no_close(self):
        log = []

        def request():
            tls.set("conn", Closer(log, "conn"))
            snaps.append(tls.capture())
            snaps.pop()                                 # gone before the end
            log.append("ends")
        snaps = []
        run_in_thread(request)
        self.assertEqual(log, ["ends", ("conn", "close")])

    def test_reset_closes_captured_values_at_once_and_no_release_closes_them_again(self):
        log = []
        tls.set("conn", Closer(log, "mine"))
        snap = tls.capture()
        tls.reset()                                     # explicit: at once, snapshot or not
        self.assertEqual(log, [("mine", "close")])
        self.assertEqual(len(snap.run(lambda: [tls.get("conn")])), 1)
        del snap
        self.assertEqual(len(log), 1)
        # Left pending by one thread's end, then reset where another store holds it.
        snap, conn = self.capture_on_a_thread_that_ends(log)
        tls.set("same", conn)
        tls.reset()
        self.assertEqual(log[1:], [("conn", "close")])
        del snap
        self.assertEqual(len(log), 2)

    def test_a_value_in_two_snapshots_and_under_two_keys_closes_once_after_both(self):
        log = []

        def request():
            conn = Closer(log, "conn")
            tls.set("a", conn)
            tls.set("b", conn)
            return tls.capture(), tls.capture("b")
        first, second = run_in_thread(request)
        del first
        self.assertEqual(log, [])
        del second
        self.assertEqual(log, [("conn", "close")])

    def test_a_tasks_own_value_captured_inside_it_closes_when_the_inner_snapshot_goes(self):
        log = []
        inner = []

        def task():
            tls.set("part", Closer(log, "task's"))
            inner.append(tls.capture())
        tls.Snapshot().run(task)
        self.assertEqual(log, [])                       # the task ended; a snapshot holds it
        inner.clear()
        self.assertEqual(log, [("task's", "close")])

    def test_a_deferred_close_runs_on_the_thread_that_drops_the_last_snapshot(self):
        seen = []

        class Conn:
            def close(self):
                seen.append(threading.get_ident())

        def request():
            tls.set("conn", Conn())
            return tls.capture()
        snap = run_in_thread(request)
        dropper = threading.Thread(target=lambda: box.pop())
        box = [snap]
        del snap
        dropper.start()
        dropper.join()
        self.assertEqual(seen, [dropper.ident])

    def test_an_error_in_a_deferred_close_goes_to_unraisablehook_where_the_snapshot_goes(self):
        class Failing:
            def close(self):
                raise ValueError("deferred close failed")

        def request():
            tls.set("conn", Failing())
            tls.set("after", Closer(log, "after"))
            return tls.capture()
        log = []
        snap = run_in_thread(request)
        with Unraisables() as u:
            del snap
        self.assertEqual([(t, str(e)) for t, e, _ in u.seen],
                         [(ValueError, "deferred close failed")])
        self.assertEqual(log, [("after", "close")])     # the others still closed

    def test_many_values_in_many_snapshots_released_in_any_order_each_close_once(self):
        import random
        rng = random.Random(19)
        log = []

        def request(n):
            for i in range(n, n + 50):
                tls.set(i, Closer(log, i))
            return [tls.capture() for _ in range(3)] + [tls.capture(*range(n, n + 25))]
        snaps = []
        for n in range(0, 1000, 50):
            snaps += run_in_thread(request, n)
        self.assertEqual(log, [])
        rng.shuffle(snaps)
        while snaps:
            snaps.pop()
        self.assertEqual(sorted(name for name, _ in log), list(range(1000)))   # each once

    @needs_hooks
    def test_only_values_that_can_have_a_close_are_counted(self):
        tls.set("id", "r-42")
        tls.set("n", 7)
        tls.set("opts", {"a": 1})
        plain = tls.capture()
        self.assertEqual(HOOKS.snapshot_holds(), (0, 0))    # built-in types: no entry
        tls.set("conn", Closer([], "conn"))
        both = tls.capture()
        self.assertEqual(HOOKS.snapshot_holds(), (1, 0))
        del plain, both
        self.assertEqual(HOOKS.snapshot_holds(), (0, 0))

    def test_a_snapshot_in_a_collected_cycle_closes_what_it_held(self):
        log = []
        snap, _ = self.capture_on_a_thread_that_ends(log)
        cycle = [snap]
        cycle.append(cycle)
        del snap, cycle
        self.assertEqual(log, [])
        gc.collect()
        self.assertEqual(log, [("conn", "close")])

    def test_fire_and_forget_tasks_on_a_pool_that_outlive_their_submitters_close_each_value_once(self):
        requests, parts = 40, 3
        go = threading.Event()
        lock = threading.Lock()
        events = []                                     # (request, what)

        class Conn:
            def __init__(self, request):
                self.request, self.closed = request, False

            def close(self):
                with lock:
                    events.append((self.request, "closed", self.closed))
                self.closed = True

        def part():
            go.wait()
            conn = tls.get("conn")
            with lock:
                events.append((tls.get("request"), "part", conn.closed))

        with tls.ThreadPoolExecutor(max_workers=4) as pool:
            def request(n):
                tls.set("request", n)
                tls.set("conn", Conn(n))
                for _ in range(parts):
                    pool.submit(part)                   # not waited for
            threads = [threading.Thread(target=request, args=(n,)) for n in range(requests)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()                                # every submitter ended
            with lock:
                self.assertEqual(events, [])            # nothing closed under the parts
            go.set()
        for n in range(requests):
            mine = [e for e in events if e[0] == n]
            self.assertEqual(mine[:parts], [(n, "part", False)] * parts)
            self.assertEqual(mine[parts:], [(n, "closed", False)])   # once, after its parts


class WrapTest(TaskTestCase):
    def test_wrap_carries_tls_values_and_contextvars(self):
        token = request_var.set("submitter")
        try:
            tls.set("request", "r-42")
            wrapped = tls.wrap(lambda: (request_var.get(), tls.get("request")))
            request_var.set("changed later")
            tls.set("request", "changed later")
            self.assertEqual(run_in_thread(wrapped), ("submitter", "r-42"))
            self.assertEqual(wrapped(), ("submitter", "r-42"))
        finally:
            request_var.reset(token)

    def test_wrap_carries_contextvars(self):
        token = request_var.set("submitter")
        try:
            def task():
                seen = request_var.get()
                request_var.set("set by a call")
                return seen

            wrapped = tls.wrap(task)
            # Each call runs in its own copy of the captured context.
            self.assertEqual([run_in_thread(wrapped), wrapped(), wrapped()], ["submitter"] * 3)
            self.assertEqual(request_var.get(), "submitter")
        finally:
            request_var.reset(token)

    def test_wrapper_may_run_on_many_threads_at_once(self):
        tls.set("k", "v")
        inside = threading.Barrier(4)

        def task():
            inside.wait(timeout=30)
            return tls.get("k"), request_var.get()

        wrapped = tls.wrap(task)
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:   # a plain one
            futures = [pool.submit(wrapped) for _ in range(4)]
            self.assertEqual([f.result(timeout=60) for f in futures], [("v", "unset")] * 4)

    def test_wrap_keeps_function_metadata(self):
        def handle(request, *, verbose=False):
            """Handles a request."""
            return request, verbose

        handle.route = "/requests"  # functools.wraps carries a function's __dict__
        wrapped = tls.wrap(handle)
        self.assertEqual(wrapped.__name__, "handle")
        self.assertEqual(wrapped.__qualname__, handle.__qualname__)
        self.assertEqual(wrapped.__module__, handle.__module__)
        self.assertEqual(wrapped.__doc__, "Handles a request.")
        self.assertIs(wrapped.__wrapped__, handle)
        self.assertEqual(wrapped.route, "/requests")
        self.assertEqual(str(inspect.signature(wrapped)), "(request, *, verbose=False)")
        self.assertEqual(wrapped("r", verbose=True), ("r", True))
        wrapped.extra = 1  # its own attributes, as a function's
        self.assertEqual(wrapped.extra, 1)
        self.assertFalse(hasattr(handle, "extra"))
        self.assertEqual(vars(wrapped), {"extra": 1})
        wrapped.__name__ = "renamed"  # as on a function; fn keeps its own
        self.assertEqual((wrapped.__name__, handle.__name__), ("renamed", "handle"))

        @functools.wraps(wrapped)  # another decorator over it sees fn's metadata
        def outer(*args, **kwargs):
            return wrapped(*args, **kwargs)

        self.assertEqual((outer.__name__, outer.__doc__), ("renamed", "Handles a request."))
        self.assertEqual(outer("r"), ("r", False))
        with self.assertRaises(TypeError):
            type(wrapped)()
        with self.assertRaises(AttributeError):
            wrapped.missing

        class Handler:
            def __init__(self):
                self.name = "h"

            def who(self, greeting):
                return greeting, self.name, tls.get("request")

        Handler.wrapped_who = tls.wrap(Handler.who)  # held by a class, it binds as a function does
        tls.set("request", "r-7")
        try:
            self.assertEqual(Handler().wrapped_who("hi"), ("hi", "h", None))  # captured before the set
        finally:
            tls.delete("request")
        with self.assertRaisesRegex(TypeError, "must be callable, not int"):
            tls.wrap(1)


class ExecutorTest(TaskTestCase):
    def test_executor_no_leak_between_consecutive_tasks_on_one_thread(self):
        log = []

        def worker_init():
            tls.set("worker's own", Closer(log, "worker's own"))

        def first():
            tls.set("leak?", Closer(log, "first's"))
            tls.at_exit(lambda: log.append("first's handler"))
            return threading.get_ident(), tls.id(), tls.get("worker's own")

        def second():
            return threading.get_ident(), tls.id(), tls.get("leak?"), tls.get("worker's own")

        with tls.ThreadPoolExecutor(max_workers=1, initializer=worker_init) as pool:
            ident1, id1, worker_value = pool.submit(first).result()
            self.assertEqual(log, ["first's handler", ("first's", "close")])   # before result()
            ident2, id2, leaked, worker_value2 = pool.submit(second).result()
        self.assertEqual(ident1, ident2)               # the same pool thread
        self.assertNotEqual(id1, id2)
        self.assertIsNone(leaked)
        self.assertEqual((worker_value, worker_value2), (None, None))
        # The worker's own value: untouched by the tasks, closed at its thread's end.
        self.assertEqual(log, ["first's handler", ("first's", "close"), ("worker's own", "close")])

    def test_executor_10000_tasks_on_8_threads_see_submitter_values(self):
        request = object()
        tls.set("request", request)
        token = request_var.set("ctx-request")
        all_threads_busy = threading.Barrier(8)

        def task(i):
            if i < 8:
                all_threads_busy.wait(timeout=60)     # the first 8 hold 8 threads at once
            leaked = tls.get("scratch")
            tls.set("scratch", i)
            return (tls.get("request") is request, request_var.get(), leaked,
                    threading.get_ident(), tls.id())

        try:
            with tls.ThreadPoolExecutor(max_workers=8) as pool:
                futures = [pool.submit(task, i) for i in range(10_000)]
                results = [f.result(timeout=600) for f in futures]
        finally:
            request_var.reset(token)
        self.assertEqual({r[:3] for r in results}, {(True, "ctx-request", None)})
        self.assertEqual(len({r[3] for r in results}), 8)
        self.assertEqual(len({r[4] for r in results}), 10_000)   # each task its own ID

    def test_executor_map_propagates(self):
        tls.set("base", 100)
        with tls.ThreadPoolExecutor(max_workers=2) as pool:
            self.assertEqual(list(pool.map(lambda x: tls.get("base") + x, range(50))),
                             [100 + x for x in range(50)])

    def test_run_in_executor_with_asyncio(self):
        pool = tls.ThreadPoolExecutor(max_workers=3)
        loop_thread = threading.get_ident()

        def blocking():
            return (request_var.get(), tls.get("request"),
                    threading.get_ident() != loop_thread)

        async def handle(name, executor):
            request_var.set(name)        # this asyncio task's own context
            tls.set("request", name)     # the loop thread's; captured at submit, just below
            if executor == "to_thread":
                return await asyncio.to_thread(blocking)   # the default executor
            return await asyncio.get_running_loop().run_in_executor(executor, blocking)

        async def main():
            asyncio.get_running_loop().set_default_executor(tls.ThreadPoolExecutor(max_workers=2))
            return [await asyncio.gather(*(handle(f"{how}{i}", executor) for i in range(20)))
                    for how, executor in [("pool", pool), ("default", None),
                                          ("to_thread", "to_thread")]]

        try:
            results = asyncio.run(main())
        finally:
            pool.shutdown()
        self.assertEqual(results, [[(f"{how}{i}", f"{how}{i}", True) for i in range(20)]
                                   for how in ["pool", "default", "to_thread"]])


# Calling one of these only makes a generator, coroutine or async generator:
# the body, which logs, reads the caller's "request" and stores a value, would
# run later, wherever the object is iterated or awaited.
def generator_fn(log):
    log.append(("body ran", tls.get("request")))
    tls.set("leaked", Closer(log, "leaked"))
    yield tls.get("request")


async def coroutine_fn(log):
    log.append(("body ran", tls.get("request")))
    tls.set("leaked", Closer(log, "leaked"))
    return tls.get("request")


async def async_generator_fn(log):
    log.append(("body ran", tls.get("request")))
    tls.set("leaked", Closer(log, "leaked"))
    yield tls.get("request")


class Handlers:
    def generator(self, log):
        yield from generator_fn(log)

    async def coroutine(self, log):
        return await coroutine_fn(log)

    async def async_generator(self, log):
        async for item in async_generator_fn(log):
            yield item


# kind: (the function, the object's type name (its Handlers method too), what
# the message suggests instead)
DEFERRED = {
    "generator": (generator_fn, "generator", r"lambda: list\(gen\(\)\)"),
    "coroutine": (coroutine_fn, "coroutine", r"lambda: asyncio\.run\(main\(\)\)"),
    "async generator": (async_generator_fn, "async_generator",
                        r"lambda: asyncio\.run\(consume\(agen\(\)\)\)"),
}


def forms(kind, log):
    """(name, callable, args) for each way of handing over the kind's function:
    inspect sees through a partial and a bound method, in either order."""
    fn, type_name, _ = DEFERRED[kind]
    method = getattr(Handlers(), type_name)
    return [("function", fn, (log,)),
            ("partial", functools.partial(fn, log), ()),
            ("bound method", method, (log,)),
            ("partial of a bound method", functools.partial(method, log), ())]


def wrap_one(fn, args):
    return tls.wrap(fn)(*args)


def submit_one(fn, args):
    with tls.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


class DeferredBodyTest(TaskTestCase):
    """Generators and coroutines are refused (TypeError): their body would run
    outside the task, where they are iterated or awaited, in that thread's
    values. wrap and submit refuse the function up front; Snapshot.run refuses
    (and closes) a generator, coroutine or async generator that fn returned."""

    def assert_refused(self, pattern, call):
        """call(log) raises TypeError matching pattern; the body never ran, no
        RuntimeWarning ("never awaited") is left, the caller's store is as it was."""
        log = []
        conn = Closer(log, "caller's")
        tls.set("request", "caller's")
        tls.set("conn", conn)
        thread_id = tls.id()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with self.assertRaisesRegex(TypeError, pattern) as raised:
                call(log)
            del raised   # its traceback: the frames that held the object
            gc.collect()
        self.assertEqual([str(w.message) for w in caught], [])
        self.assertEqual(log, [])
        self.assertEqual((tls.get("request"), tls.get("conn"), tls.get("leaked"), tls.id()),
                         ("caller's", conn, None, thread_id))

    def assert_each_form_refused(self, pattern, kind, hand_over):
        """hand_over(fn, args) refuses the kind's function in each of its forms."""
        for i, (form, _, _) in enumerate(forms(kind, None)):
            with self.subTest(form=form):
                self.assert_refused(pattern, lambda log: hand_over(*forms(kind, log)[i][1:]))

    def assert_refused_up_front(self, api, kind, hand_over):
        made = "an async generator" if kind == "async generator" else f"a {kind}"
        pattern = (rf"^{api}\(\) cannot run \S+ as a task: it is {made} function, .*"
                   rf"outside the task.*{DEFERRED[kind][2]}")
        self.assert_each_form_refused(pattern, kind, hand_over)

    def assert_run_refuses(self, kind):
        _, type_name, instead = DEFERRED[kind]
        pattern = (rf"^run\(\): fn returned <{type_name} object .*outside the task.*"
                   rf"it was closed.*{instead}")
        self.assert_each_form_refused(pattern, kind,
                                      lambda fn, args: tls.capture().run(fn, *args))

    def test_wrap_refuses_a_generator_function(self):
        self.assert_refused_up_front("wrap", "generator", wrap_one)

    def test_wrap_refuses_a_coroutine_function(self):
        self.assert_refused_up_front("wrap", "coroutine", wrap_one)

    def test_wrap_refuses_an_async_generator_function(self):
        self.assert_refused_up_front("wrap", "async generator", wrap_one)

    def test_submit_refuses_a_generator_function(self):
        self.assert_refused_up_front("submit", "generator", submit_one)

    def test_submit_refuses_a_coroutine_function(self):
        self.assert_refused_up_front("submit", "coroutine", submit_one)

    def test_submit_refuses_an_async_generator_function(self):
        self.assert_refused_up_front("submit", "async generator", submit_one)

    def test_run_refuses_a_generator_function(self):
        self.assert_run_refuses("generator")

    def test_run_refuses_a_coroutine_function(self):
        self.assert_run_refuses("coroutine")

    def test_run_refuses_an_async_generator_function(self):
        self.assert_run_refuses("async generator")

    def test_run_refuses_a_generator_or_coroutine_returned_by_a_plain_function(self):
        # inspect cannot tell that these make one: wrap and submit take them,
        # and Snapshot.run, which they call, refuses the result behind them too.
        class AsyncCall:
            async def __call__(self, log):
                return await coroutine_fn(log)

        makers = [(type_name, lambda log, fn=fn: fn(log)) for fn, type_name, _ in DEFERRED.values()]
        makers.append(("coroutine", AsyncCall()))
        hand_overs = [("run", lambda fn, args: tls.capture().run(fn, *args)),
                      ("wrap", wrap_one), ("submit", submit_one)]
        for type_name, maker in makers:
            for api, hand_over in hand_overs:
                with self.subTest(made=type_name, by=type(maker).__name__, api=api):
                    self.assertIs(inspect.iscoroutinefunction(maker), False)
                    self.assert_refused(rf"^run\(\): fn returned <{type_name} object ",
                                        lambda log: hand_over(maker, (log,)))

    def test_run_closes_what_it_refuses_so_its_body_never_runs_later(self):
        for kind, (fn, _, _) in DEFERRED.items():
            with self.subTest(kind=kind):
                log, kept = [], []

                def keep():
                    kept.append(fn(log))     # fn keeps a reference: closed all the same
                    return kept[0]

                with self.assertRaises(TypeError):
                    tls.Snapshot().run(keep)
                made = kept.pop()
                if kind == "generator":
                    self.assertRaises(StopIteration, next, made)
                elif kind == "coroutine":
                    with self.assertRaisesRegex(RuntimeError, "cannot reuse already awaited"):
                        made.send(None)
                else:
                    self.assertRaises(StopAsyncIteration, made.__anext__().send, None)
                self.assertEqual(log, [])

    def test_run_closes_a_started_generator_in_the_task_which_then_ends_as_if_fn_raised(self):
        log = []
        tls.set("request", "caller's")

        def started():
            try:
                yield
            finally:      # runs at the close, inside the task
                log.append(("generator's finally", tls.get("request"), tls.get("task's").name))

        def fn():
            tls.set("task's", Closer(log, "task's"))
            tls.at_exit(lambda: log.append("task's handler"))
            gen = started()
            next(gen)
            return gen

        with self.assertRaisesRegex(TypeError, "^run\\(\\): fn returned <generator object "):
            tls.capture().run(fn)
        self.assertEqual(log, [("generator's finally", "caller's", "task's"), "task's handler",
                               ("task's", "close")])
        self.assertEqual((tls.get("request"), tls.get("task's")), ("caller's", None))

    def test_run_refusal_has_the_error_of_closing_as_its_context(self):
        def ignores_generator_exit():
            try:
                yield 1
            finally:
                yield 2

        async def awaits_while_closing():
            try:
                yield 1
            finally:
                await asyncio.sleep(0)

        def started_generator():
            gen = ignores_generator_exit()
            next(gen)
            return gen

        def started_async_generator():
            agen = awaits_while_closing()
            try:
                agen.asend(None).send(None)     # to its first yield, no event loop
            except StopIteration:
                pass
            return agen

        for fn, context in [(started_generator, "generator ignored GeneratorExit"),
                            (started_async_generator, "async generator awaited while closing")]:
            with self.subTest(fn=fn.__name__):
                with self.assertRaisesRegex(TypeError, "^run\\(\\): fn returned ") as raised:
                    tls.Snapshot().run(fn)
                self.assertIsInstance(raised.exception.__context__, RuntimeError)
                self.assertRegex(str(raised.exception.__context__), context)

    def test_generators_and_coroutines_consumed_inside_the_task_run_in_it(self):
        tls.set("request", "caller's")

        def gen():
            tls.set("mine", "task's")
            yield tls.get("request")
            yield tls.get("mine")

        async def main():
            tls.set("mine", "task's")
            await asyncio.sleep(0)
            return [tls.get("request"), tls.get("mine")]

        async def agen():
            tls.set("mine", "task's")
            await asyncio.sleep(0)
            yield tls.get("request")
            yield tls.get("mine")

        async def consume():
            return [item async for item in agen()]

        @contextlib.contextmanager
        def managed():      # not a generator function: calling it makes a context manager
            yield tls.get("request")

        def use_managed():
            with managed() as request:
                return [request, tls.get("mine")]

        expected = ["caller's", "task's"]
        self.assertEqual(tls.capture().run(lambda: list(gen())), expected)
        self.assertEqual(tls.wrap(lambda: asyncio.run(main()))(), expected)
        with tls.ThreadPoolExecutor(max_workers=1) as pool:
            self.assertEqual(pool.submit(lambda: asyncio.run(consume())).result(), expected)
            self.assertEqual(pool.submit(tls.wrap(use_managed)).result(), ["caller's", None])
        self.assertEqual((tls.get("request"), tls.get("mine")), ("caller's", None))


# A daemon thread is inside a task when the interpreter exits, woken during
# finalization (SLOW_FINALIZATION): CPython ends it with pthread_exit, a forced
# unwind through Snapshot.run and the task's end. Nothing may run Python then,
# and the process must keep its exit code.
DAEMON_IN_TASK = """
import threading, time, tls
ready = threading.Event()
class V:
    def __init__(self, name): self.name = name
    def close(self):
        if self.name == WHERE: ready.set(); time.sleep(0.2)
        print("closed", self.name, flush=True)
def handler():
    if WHERE == "handler": ready.set(); time.sleep(0.2)
    print("task handler ran", flush=True)
def task():
    tls.set("task's", V("task's"))
    tls.at_exit(handler)
    if WHERE == "fn":
        ready.set()
        while True: time.sleep(0.01)
def daemon():
    tls.set("thread's", V("thread's"))
    tls.capture().run(task)
    while True: time.sleep(0.01)
threading.Thread(target=daemon, daemon=True).start(); ready.wait()
"""


class TaskAtExitTest(unittest.TestCase):
    def test_exit_called_inside_a_task_ends_the_task_then_the_thread_closes_all_its_values(self):
        # C exit() inside a task (GIL held: PyDLL): the engine ends the open
        # task first, then runs the thread's exit, which must close the
        # thread's own values although the task had been given them.
        proc = run_python("""
            import ctypes, tls
            class V:
                def __init__(self, name): self.name = name
                def close(self): print("closed", self.name, flush=True)
            tls.set("thread's", V("thread's"))
            tls.at_exit(lambda: print("thread handler", flush=True))
            def task():
                tls.set("task's", V("task's"))
                tls.at_exit(lambda: print("task handler", flush=True))
                ctypes.PyDLL(None).exit(3)
            tls.capture().run(task)
        """)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        self.assertEqual(proc.stdout.splitlines(),
                         ["task handler", "closed task's", "thread handler", "closed thread's"])

    def test_daemon_thread_inside_a_task_at_interpreter_exit_keeps_the_exit_code(self):
        for code, where in [(5, "fn"), (6, "handler"), (7, "task's")]:
            with self.subTest(inside=where):
                body = DAEMON_IN_TASK.replace("WHERE", repr(where))
                proc = run_python(body + SLOW_FINALIZATION + f"sys.exit({code})\n")
                self.assertEqual(proc.returncode, code, proc.stderr)
                self.assertNotIn("terminate", proc.stderr)
                self.assertNotIn("Fatal", proc.stderr)
                # Before exit: only what ran before the daemon was caught inside.
                expected = {"fn": "", "handler": "", "task's": "task handler ran\n"}[where]
                self.assertEqual(proc.stdout, expected)


if __name__ == "__main__":
    unittest.main()
