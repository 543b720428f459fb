"""Thread ends: every kind of thread gets its handlers run and values closed on
itself, while its Python state is valid (it runs Python code there)."""

import _thread
import concurrent.futures
import contextvars
import gc
import sys
import threading
import unittest

import tls
from support import HOOKS, Closer, cpp_id, run_in_native_thread


# Each thread state has its own context: a handler that still sees the value
# its thread set runs in that thread's own Python state, not in a fresh one
# made for a native exit hook (PyGILState_Ensure after the state is gone).
context_mark = contextvars.ContextVar("context_mark", default=None)


def track_exit(log):
    """Stores a closer and a handler that records the thread (and thread state)
    that runs it: ("handler", owner, runner, value readable, same state)."""
    me = threading.get_ident()
    context_mark.set(me)
    tls.set("v", Closer(log, me))
    tls.at_exit(lambda: log.append(
        ("handler", me, threading.get_ident(), tls.get("v").name, context_mark.get() == me)))
    return tls.id(), cpp_id()


class ThreadingThreadTest(unittest.TestCase):
    def test_exit_runs_on_the_ending_thread_with_values_then_closes(self):
        log = []
        t = threading.Thread(target=track_exit, args=(log,))
        t.start()
        t.join()
        me = t.ident
        self.assertEqual(log, [("handler", me, me, me, True), (me, "close")])

    def test_ids_are_unique_never_reused_and_agree_with_cpp(self):
        ids = []
        lock = threading.Lock()

        def body():
            pair = track_exit([])
            with lock:
                ids.append(pair)

        # Sequential threads: Python may reuse get_ident(), tls never reuses an id.
        for _ in range(50):
            t = threading.Thread(target=body)
            t.start()
            t.join()
        threads = [threading.Thread(target=body) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if HOOKS:  # C++ sees the same ID (needs the test build)
            self.assertTrue(all(py == cpp for py, cpp in ids))
        self.assertEqual(len({py for py, _ in ids}), 100)
        self.assertNotIn(tls.id(), {py for py, _ in ids})
        tls.unload()

    def test_values_are_per_thread(self):
        tls.set("k", "main")
        seen = []
        t = threading.Thread(target=lambda: seen.append(tls.get("k")))
        t.start()
        t.join()
        self.assertEqual(seen, [None])
        self.assertEqual(tls.get("k"), "main")
        tls.unload()


class ThreadPoolExecutorTest(unittest.TestCase):
    def test_worker_exit_runs_at_pool_shutdown(self):
        log = []
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        ids = {pool.submit(lambda: tls.set("n", tls.get("n", 0) + 1) or tls.id()).result() for _ in range(5)}
        for future in [pool.submit(track_exit, log) for _ in range(4)]:
            future.result()
        self.assertFalse(any(entry[0] == "handler" for entry in log))  # workers still alive
        pool.shutdown(wait=True)
        handlers = [entry for entry in log if entry[0] == "handler"]
        self.assertGreaterEqual(len(handlers), 1)
        for _, owner, runner, value, same_state in handlers:
            self.assertEqual(owner, runner)  # ran on its own worker
            self.assertEqual(value, owner)
            self.assertTrue(same_state)
        self.assertLessEqual(len(ids), 2)  # per worker, not per task


class StartNewThreadTest(unittest.TestCase):
    def test_low_level_thread_end_runs_exit(self):
        log = []
        # _thread has no join: a value closed last (values close in insertion
        # order, after the handlers) tells us the exit sequence has run.
        finished = _thread.allocate_lock()
        finished.acquire()

        class ReleaseOnClose:
            def close(self):
                finished.release()

        def target():
            track_exit(log)
            tls.set("last", ReleaseOnClose())

        _thread.start_new_thread(target, ())
        self.assertTrue(finished.acquire(timeout=60))
        owner = log[0][1]
        self.assertEqual(log, [("handler", owner, owner, owner, True), (owner, "close")])


class NativeThreadTest(unittest.TestCase):
    def test_native_thread_calling_python_ends_its_tls_when_it_leaves_python(self):
        log = []
        box = {}

        def body():
            box["py_id"] = tls.id()
            track_exit(log)

        seen_by_cpp = run_in_native_thread(body)
        if HOOKS:  # C++ saw the same ID (needs the test build)
            self.assertEqual(box["py_id"], seen_by_cpp)
        self.assertEqual(len(log), 2)
        owner = log[0][1]
        self.assertEqual(log, [("handler", owner, owner, owner, True), (owner, "close")])


AS_ITSELF = sys.version_info >= (3, 11)
AS_ITSELF_WHY = ("3.9/3.10 remove a Thread from threading's registry inline, before "
                 "anything can run: their exit runs from the thread-state clear")


def record_identity(log, local):
    """Stores a value and a handler that record what the thread looks like
    from inside its own exit: current_thread(), its threading.local data."""

    def seen(what):
        me = threading.current_thread()
        log.append((what, me.name, type(me).__name__, getattr(local, "tag", None)))

    class Seen:
        def close(self):
            seen("close")

    local.tag = threading.current_thread().name
    tls.set("v", Seen())
    tls.at_exit(lambda: seen("handler"))


@unittest.skipUnless(AS_ITSELF, AS_ITSELF_WHY)
class ExitRunsAsTheThreadItselfTest(unittest.TestCase):
    def test_handlers_and_closes_see_the_thread_as_current_thread(self):
        log, local = [], threading.local()
        t = threading.Thread(target=record_identity, args=(log, local), name="worker-7")
        t.start()
        t.join()
        self.assertEqual(log, [("handler", "worker-7", "Thread", "worker-7"),
                               ("close", "worker-7", "Thread", "worker-7")])

    def test_no_dummy_thread_is_left_in_enumerate(self):
        log, local = [], threading.local()
        for i in range(5):
            t = threading.Thread(target=record_identity, args=(log, local), name=f"w{i}")
            t.start()
            t.join()
        self.assertEqual([t for t in threading.enumerate()
                          if isinstance(t, threading._DummyThread)], [])

    def test_pool_worker_handlers_run_as_the_worker(self):
        log, local = [], threading.local()
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pool") as pool:
            pool.submit(record_identity, log, local).result()
        self.assertEqual(log, [("handler", "pool_0", "Thread", "pool_0"),
                               ("close", "pool_0", "Thread", "pool_0")])

    def test_join_returns_after_the_exit_ran_and_is_alive_during_it(self):
        log = []

        def target():
            me = threading.current_thread()
            tls.at_exit(lambda: log.append(("alive in handler", me.is_alive())))

        t = threading.Thread(target=target)
        t.start()
        t.join()
        self.assertEqual(log, [("alive in handler", True)])

    def test_reading_threading_local_in_a_handler_leaks_nothing(self):
        # Before, the exit ran after the thread-state dict was cleared: reading
        # a threading.local there made a new dict that was never freed.
        local = threading.local()

        def target():
            local.x = 1
            tls.at_exit(lambda: getattr(local, "x", None))

        def run(n):
            for _ in range(n):
                t = threading.Thread(target=target)
                t.start()
                t.join()
            gc.collect()

        run(50)  # warm up caches and free lists
        before = sys.getallocatedblocks()
        run(1000)
        self.assertLess(sys.getallocatedblocks() - before, 200)


class FallbackExitTest(unittest.TestCase):
    def test_value_set_after_the_exit_ran_is_still_closed_on_the_thread(self):
        # A __del__ run while the thread state is cleared stores a value after
        # the exit sequence ran: the thread-state hook closes it, on the thread.
        log = []

        class Late:
            def __del__(self):
                tls.set("late", Closer(log, "late"))

        def target():
            holder.late = Late()   # freed when the thread's state is cleared
            tls.at_exit(lambda: log.append("handler"))

        holder = threading.local()
        t = threading.Thread(target=target)
        t.start()
        t.join()
        self.assertEqual(log, ["handler", ("late", "close")])


if __name__ == "__main__":
    unittest.main()
