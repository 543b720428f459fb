"""tls.local: what it adds over threading.local, one test per rule.

CPython's own tests of the interface run in cpython_local_test.py.
"""

import _thread
import gc
import threading
import unittest
import weakref

import tls
from support import Closer, run_in_native_thread, run_in_thread


class Value:
    """A plain attribute value, to watch with a weak reference."""


class LocalTest(unittest.TestCase):

    def test_attributes_with_close_are_closed_once_at_thread_end_after_at_exit_handlers(self):
        log = []
        data = tls.local()

        def body():
            data.conn = Closer(log, "conn")
            data.same = data.conn  # one object under two names: closed once
            data.plain = 1
            tls.at_exit(lambda: log.append(("handler sees", data.conn.name)))

        run_in_thread(body)  # returns after join()
        self.assertEqual(log, [("handler sees", "conn"), ("conn", "close")])

    def test_attributes_are_closed_at_the_end_of_every_kind_of_thread(self):
        data = tls.local()
        for kind in ("threading", "_thread", "native"):
            with self.subTest(kind=kind):
                log = []

                def body():
                    data.conn = Closer(log, kind)

                if kind == "threading":
                    run_in_thread(body)
                elif kind == "native":
                    run_in_native_thread(body)
                else:
                    done = threading.Event()

                    def start():
                        body()
                        done.set()

                    _thread.start_new_thread(start, ())
                    done.wait()
                    for _ in range(200):  # the thread's end follows its function
                        if log:
                            break
                        threading.Event().wait(0.01)
                self.assertEqual(log, [(kind, "close")])

    def test_pool_workers_values_are_a_per_worker_cache_closed_at_shutdown(self):
        log = []
        data = tls.local()

        def init():
            data.conn = Closer(log, "worker")

        with tls.ThreadPoolExecutor(max_workers=1, initializer=init) as pool:
            seen = [pool.submit(lambda: data.conn.name).result() for _ in range(3)]
            self.assertEqual(seen, ["worker"] * 3)  # every task sees the worker's value
            self.assertEqual(log, [])  # not closed at a task's end
        self.assertEqual(log, [("worker", "close")])

    def test_tasks_see_the_threads_attributes(self):
        data = tls.local()
        data.x = "thread's"
        snapshot = tls.capture()
        self.assertEqual(snapshot.run(lambda: data.x), "thread's")
        self.assertEqual(tls.wrap(lambda: data.x)(), "thread's")

    def test_reset_closes_and_clears_them(self):
        def body():
            log = []
            data = tls.local()
            data.conn = Closer(log, "conn")
            tls.reset()
            return log, hasattr(data, "conn")

        log, still_there = run_in_thread(body)
        self.assertEqual(log, [("conn", "close")])
        self.assertFalse(still_there)

    def test_subclass_init_runs_again_in_a_thread_emptied_by_reset(self):
        class Counted(tls.local):
            def __init__(self, start):
                self.n = start

        def body():
            c = Counted(5)
            c.n += 1
            tls.reset()
            return c.n

        self.assertEqual(run_in_thread(body), 5)

    def test_when_the_local_dies_every_live_threads_attributes_are_released_at_once(self):
        data = tls.local()
        stored, finish = threading.Event(), threading.Event()
        refs = []
        log = []

        def worker():
            v = Value()
            refs.append(weakref.ref(v))
            data.v = v
            data.conn = Closer(log, "conn")
            del v
            stored.set()
            finish.wait()

        t = threading.Thread(target=worker)
        t.start()
        stored.wait()
        self.assertIsNotNone(refs[0]())
        del data
        gc.collect()
        self.assertIsNone(refs[0](), "the live thread still held its attribute")
        self.assertEqual(log, [], "released, not closed")
        finish.set()
        t.join()
        self.assertEqual(log, [], "and not closed later at the thread's end either")

    def test_cycles_through_other_threads_attributes_are_collected(self):
        class Holder:
            pass

        data = tls.local()
        ref = []

        def body():
            h = Holder()
            h.local = data
            data.h = h  # this thread's attribute refers back to the local
            ref.append(weakref.ref(h))

        stored, finish = threading.Event(), threading.Event()

        def worker():
            body()
            stored.set()
            finish.wait()

        t = threading.Thread(target=worker)
        t.start()
        stored.wait()
        del data
        gc.collect()
        self.assertIsNone(ref[0]())
        finish.set()
        t.join()

    def test_attributes_are_per_thread(self):
        data = tls.local()
        data.x = "main"
        self.assertFalse(run_in_thread(lambda: hasattr(data, "x")))
        self.assertEqual(data.x, "main")

    def test_slots_are_shared_by_every_thread(self):
        class Slotted(tls.local):
            __slots__ = ("shared",)

        s = Slotted()
        s.shared = "everyone's"
        self.assertEqual(run_in_thread(lambda: s.shared), "everyone's")


if __name__ == "__main__":
    unittest.main()
