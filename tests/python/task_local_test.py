"""tls.task_local: threading.local's interface over tls values, so tasks carry
it from their submitter. One test per rule; tls.local (thread-scoped) is in
local_test.py."""

import gc
import threading
import unittest
import weakref

import tls
from support import Closer, run_in_thread


class Value:
    """A plain attribute value, to watch with a weak reference."""


class TaskLocalTest(unittest.TestCase):
    def setUp(self):
        tls.reset()  # the main thread's values are captured below: start with none

    def tearDown(self):
        tls.reset()

    def test_attributes_are_per_thread(self):
        ctx = tls.task_local()
        ctx.user = "main"
        self.assertFalse(run_in_thread(lambda: hasattr(ctx, "user")))
        self.assertEqual(run_in_thread(lambda: (setattr(ctx, "user", "t"), ctx.user)[1]), "t")
        self.assertEqual(ctx.user, "main")

    def test_a_task_sees_the_submitters_attributes_as_captured_never_the_pool_threads(self):
        ctx = tls.task_local()
        seen = []

        def init():
            ctx.user = "worker's own"  # the pool thread's: hidden from every task

        with tls.ThreadPoolExecutor(max_workers=1, initializer=init) as pool:
            ctx.user = "ada"
            self.assertEqual(pool.submit(lambda: ctx.user).result(), "ada")
            snapshot = tls.capture()
            ctx.user = "bob"  # after the capture: the snapshot keeps "ada"
            self.assertEqual(snapshot.run(lambda: ctx.user), "ada")
            self.assertEqual(tls.wrap(lambda: ctx.user)(), "bob")
            # capture(*keys) names keyed values: the attributes' keys are private.
            self.assertFalse(tls.capture("user").run(lambda: hasattr(ctx, "user")))
            del ctx.user
            seen.append(pool.submit(lambda: hasattr(ctx, "user")).result())
        self.assertEqual(seen, [False])

    def test_what_a_task_sets_is_its_own_closed_at_its_end_and_the_threads_are_back(self):
        log = []
        ctx = tls.task_local()
        ctx.conn = Closer(log, "submitter's")
        ctx.user = "ada"

        def task():
            ctx.user = "changed in the task"
            ctx.scratch = Closer(log, "task's")
            del ctx.conn  # the task's view only
            return ctx.user, hasattr(ctx, "conn")

        self.assertEqual(tls.capture().run(task), ("changed in the task", False))
        self.assertEqual(log, [("task's", "close")])  # the given value is never closed by the task
        self.assertEqual((ctx.user, ctx.conn.name, hasattr(ctx, "scratch")),
                         ("ada", "submitter's", False))

    def test_attributes_with_close_are_closed_once_at_thread_end_after_at_exit_handlers(self):
        log = []
        ctx = tls.task_local()

        def body():
            ctx.conn = Closer(log, "conn")
            ctx.same = ctx.conn  # one object under two names: closed once
            tls.at_exit(lambda: log.append(("handler sees", ctx.conn.name)))

        run_in_thread(body)
        self.assertEqual(log, [("handler sees", "conn"), ("conn", "close")])

    def test_a_thread_ending_while_a_snapshot_holds_its_attribute_leaves_the_close_to_it(self):
        log = []
        ctx = tls.task_local()

        def body():
            ctx.conn = Closer(log, "conn")
            return tls.capture()

        snapshot = run_in_thread(body)  # the thread ended; the snapshot still holds conn
        self.assertEqual(log, [])
        self.assertEqual(snapshot.run(lambda: ctx.conn.name), "conn")
        del snapshot
        gc.collect()
        self.assertEqual(log, [("conn", "close")])

    def test_reset_closes_and_clears_them(self):
        log = []
        ctx = tls.task_local()
        ctx.conn = Closer(log, "conn")
        tls.reset()
        self.assertEqual(log, [("conn", "close")])
        self.assertFalse(hasattr(ctx, "conn"))

    def test_subclass_init_runs_in_each_thread_and_in_each_task_that_starts_without_it(self):
        runs = []

        class Request(tls.task_local):
            def __init__(self, user):
                runs.append(threading.get_ident())
                self.user = user

        r = Request("default")
        r.user = "ada"
        self.assertEqual(len(runs), 1)
        self.assertEqual(tls.capture().run(lambda: r.user), "ada")  # carried: no new __init__
        self.assertEqual(len(runs), 1)
        self.assertEqual(tls.Snapshot().run(lambda: r.user), "default")  # an empty task
        self.assertEqual(run_in_thread(lambda: r.user), "default")  # a new thread
        self.assertEqual(len(runs), 3)
        with self.assertRaises(TypeError):
            tls.task_local("no arguments for the base class")

    def test_they_are_listed_by_threads_among_the_keys(self):
        class Request(tls.task_local):
            pass

        r = Request()
        r.user = "s3cret"
        report = [t for t in tls.threads() if t.id == tls.id()][0]
        self.assertIn("<task_local TaskLocalTest.test_they_are_listed_by_threads_among_the_keys."
                      "<locals>.Request.user>", report.python_keys)
        self.assertNotIn("s3cret", repr(report))

    def test_when_the_object_dies_the_calling_threads_attributes_go_at_once(self):
        ctx = tls.task_local()
        v = Value()
        ref = weakref.ref(v)
        ctx.v = v
        del v, ctx
        gc.collect()
        self.assertIsNone(ref())
        self.assertEqual([t.python_keys for t in tls.threads() if t.id == tls.id()], [()])

    def test_a_value_that_refers_back_to_the_object_keeps_it_until_the_threads_reset_or_end(self):
        # Its attributes are tls values of the thread: like any, they live to
        # the thread's reset or end, and what they refer to with them.
        class Handler(tls.task_local):
            def __init__(self):
                self.callback = self.handle  # a bound method: refers to the object

            def handle(self):
                return "handled"

        def body():
            h = Handler()
            ref = weakref.ref(h)
            del h
            gc.collect()
            kept = ref() is not None
            tls.reset()
            gc.collect()
            return kept, ref() is None

        self.assertEqual(run_in_thread(body), (True, True))

    def test_attribute_names_are_strs_and_its_keys_cannot_be_made_elsewhere(self):
        class Name(str):
            pass

        ctx = tls.task_local()
        setattr(ctx, Name("user"), "ada")  # a str subclass: stored under its str value
        self.assertEqual(ctx.user, "ada")
        with self.assertRaises(TypeError):
            setattr(ctx, 1, "x")
        # The store's key objects, as the raw listing behind threads() gives them.
        mine = [e for e in tls._tls._threads() if e[0] == tls.id()][0]
        keys = [k for k in mine[3] if type(k).__name__ == "_task_local_key"]
        self.assertEqual([repr(k) for k in keys], ["<task_local task_local.user>"])
        with self.assertRaises(TypeError):
            type(keys[0])()

    def test_dict_is_a_copy_of_the_callers_attributes_and_read_only(self):
        ctx = tls.task_local()
        ctx.a, ctx.b = 1, 2
        d = ctx.__dict__
        self.assertEqual(d, {"a": 1, "b": 2})
        d["a"] = 10
        self.assertEqual(ctx.a, 1)
        with self.assertRaises(AttributeError):
            ctx.__dict__ = {}

    def test_slots_and_methods_of_the_class_come_first_and_are_shared(self):
        class Slotted(tls.task_local):
            __slots__ = ("shared",)

            def greet(self):
                return "hi"

        s = Slotted()
        s.shared = "everyone's"
        self.assertEqual(run_in_thread(lambda: s.shared), "everyone's")
        self.assertEqual(s.greet(), "hi")
        with self.assertRaises(AttributeError):
            s.missing
        with self.assertRaises(AttributeError):
            del s.missing
        with self.assertRaises(TypeError):
            setattr(s, 1, "x")


if __name__ == "__main__":
    unittest.main()
