"""Thread ends: every kind of thread gets its handlers run and values closed on
itself, while its Python state is valid (it runs Python code there)."""

import _thread
import concurrent.futures
import contextvars
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


if __name__ == "__main__":
    unittest.main()
