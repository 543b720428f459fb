"""os.fork() with other threads alive: the child keeps only the forking
thread's values, can use tls (new threads included); the parent is unaffected."""

import os
import threading
import unittest

import tls
from support import Closer, run_in_thread, run_python


def child_checks(other_id):
    """Runs in the child; returns 0 if every check holds, else a failure code."""
    if tls.get("mine") != "forker":
        return 10
    if tls.get("other") is not None:
        return 11
    seen = run_in_thread(lambda: (tls.set("k", 1), tls.get("k"), tls.get("mine"), tls.id()))
    if seen[1:3] != (1, None) or seen[3] in (other_id, tls.id()):
        return 12
    log = []
    tls.set("c", Closer(log, "c"))
    tls.reset()
    if log != [("c", "close")]:
        return 13
    return 0


def wait_child(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class ForkTest(unittest.TestCase):
    def setUp(self):
        self.release = threading.Event()
        self.ready = threading.Event()
        self.other_log = []
        self.other_id = []

        def other():
            tls.set("other", Closer(self.other_log, "other"))
            tls.at_exit(lambda: self.other_log.append("other handler"))
            self.other_id.append(tls.id())
            self.ready.set()
            self.release.wait()

        self.thread = threading.Thread(target=other)
        self.thread.start()
        self.ready.wait()

    def tearDown(self):
        self.release.set()
        self.thread.join()
        tls.unload()

    def test_fork_from_main_thread_child_keeps_only_its_values(self):
        tls.set("mine", "forker")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child_checks(self.other_id[0])
            finally:
                os._exit(code)
        self.assertEqual(wait_child(pid), 0)
        # parent unaffected: both threads keep their values; the other ends normally
        self.assertEqual(tls.get("mine"), "forker")
        self.release.set()
        self.thread.join()
        self.assertEqual(self.other_log, ["other handler", ("other", "close")])

    def test_fork_from_a_worker_thread_child_keeps_that_threads_values(self):
        def forker():
            tls.set("mine", "forker")
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = child_checks(self.other_id[0])
                finally:
                    os._exit(code)
            return wait_child(pid)

        tls.set("main-value", 1)
        self.assertEqual(run_in_thread(forker), 0)
        self.assertEqual(tls.get("main-value"), 1)



class ForkExitTest(unittest.TestCase):
    def test_child_interpreter_exit_runs_only_the_forking_threads_handlers(self):
        proc = run_python("""
            import os, sys, threading, tls

            parent = os.getpid()
            where = lambda: "child" if os.getpid() != parent else "parent"
            release, ready = threading.Event(), threading.Event()

            def other():
                tls.set("o", 1)
                tls.at_exit(lambda: print("other handler", where(), flush=True))
                ready.set()
                release.wait()

            t = threading.Thread(target=other)
            t.start()
            ready.wait()
            tls.at_exit(lambda: print("main handler", where(), flush=True))
            pid = os.fork()
            if pid == 0:
                sys.exit(4)  # a normal interpreter exit in the child
            _, status = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(status), flush=True)
            release.set()
            t.join()
        """)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(
            proc.stdout,
            "main handler child\nchild exit 4\nother handler parent\nmain handler parent\n",
        )


if __name__ == "__main__":
    unittest.main()
