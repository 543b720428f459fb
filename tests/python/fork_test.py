"""os.fork() with other threads alive: the child keeps only the forking
thread's values, can use tls (new threads included); the parent is unaffected.
A multiprocessing child (fork, forkserver, spawn) runs its tls exit exactly
when it runs its atexit callbacks."""

import json
import os
import sys
import threading
import unittest

import tls
from support import Closer, run_in_thread, run_python, run_python_script


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

    def test_fork_child_that_clears_atexit_then_runs_it_runs_tls_exit_with_it(self):
        # What 3.13's multiprocessing does in a fork or forkserver child, here
        # on every version: atexit._clear() (the parent's callbacks go), the
        # work, then atexit._run_exitfuncs() and os._exit. tls's exit is
        # registered again by the clear, so it runs with the child's callbacks.
        proc = run_python("""
            import atexit, os, tls

            class V:
                def close(self):
                    print("close", flush=True)

            pid = os.fork()
            if pid == 0:
                try:
                    atexit._clear()
                    atexit.register(lambda: print("atexit", flush=True))
                    tls.set("v", V())
                    tls.at_exit(lambda: print("handler", tls.get("v") is not None, flush=True))
                finally:
                    atexit._run_exitfuncs()
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(status), flush=True)
        """)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "atexit\nhandler True\nclose\nchild exit 0\n")
        self.assertEqual(proc.stderr, "")


# A multiprocessing child runs tls's exit (its main thread's handlers, then its
# closes) exactly when it runs its atexit callbacks, whatever the start method.
# Whether it runs them is CPython's: a spawn child always does (it ends with
# sys.exit); a fork or forkserver child only from 3.13 on (before, it ends with
# os._exit after the target returns; from 3.13, atexit._clear() then
# atexit._run_exitfuncs() first).
ATEXIT_RUNS_IN_CHILD = {
    "fork": sys.version_info >= (3, 13),
    "forkserver": sys.version_info >= (3, 13),
    "spawn": True,
}

# argv: start method, "preload" (the forkserver imports tls, so its children
# inherit it from the server) or "-". The parent's main thread holds a value
# and a handler when it starts the child: only a fork child inherits them.
# Prints the child's exit code and what the child logged, one line each.
MULTIPROCESSING_PROGRAM = """
import atexit, json, multiprocessing, os, sys, tempfile, tls

def note(path, what):
    with open(path, "a") as f:
        f.write(what + "\\n")

class Closer:
    def __init__(self, path, what):
        self.path, self.what = path, what

    def close(self):
        note(self.path, self.what)

def child(path):
    tls.set("v", Closer(path, "close"))
    tls.at_exit(lambda: note(path, "handler " + type(tls.get("v")).__name__))
    atexit.register(note, path, "atexit")   # registered after tls: runs first

if __name__ == "__main__":
    method, preload = sys.argv[1], sys.argv[2] == "preload"
    ctx = multiprocessing.get_context(method)
    if preload:
        ctx.set_forkserver_preload(["tls"])
    fd, path = tempfile.mkstemp()
    os.close(fd)
    tls.set("inherited", Closer(path, "inherited close"))
    tls.at_exit(lambda: note(path, "inherited handler"))
    p = ctx.Process(target=child, args=(path,))
    p.start()
    p.join()
    tls.unload()   # the parent's own: not run, not closed
    with open(path) as f:
        print(json.dumps({"exitcode": p.exitcode, "log": f.read().splitlines()}))
    os.unlink(path)
"""


class MultiprocessingExitTest(unittest.TestCase):
    def child_log(self, method, preload=False):
        args = (method, "preload" if preload else "-")
        proc = run_python_script(MULTIPROCESSING_PROGRAM, args=args)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        result = json.loads(proc.stdout)
        self.assertEqual(result["exitcode"], 0, proc.stdout)
        return result["log"]

    def assert_tls_exit_runs_with_atexit(self, method, log):
        if not ATEXIT_RUNS_IN_CHILD[method]:
            self.assertEqual(log, [], "no atexit callback ran: neither may tls's exit")
            return
        # handlers newest first with the values readable, then the closes, once each
        expected = ["atexit", "handler Closer"]
        if method == "fork":  # the forking thread's store is the child's main thread's
            expected += ["inherited handler", "inherited close", "close"]
        else:
            expected += ["close"]
        self.assertEqual(log, expected)

    def test_multiprocessing_fork_child_runs_tls_exit_with_its_atexit(self):
        self.assert_tls_exit_runs_with_atexit("fork", self.child_log("fork"))

    def test_multiprocessing_forkserver_child_runs_tls_exit_with_its_atexit(self):
        self.assert_tls_exit_runs_with_atexit("forkserver", self.child_log("forkserver"))

    def test_multiprocessing_forkserver_child_of_a_tls_server_runs_tls_exit_with_its_atexit(self):
        log = self.child_log("forkserver", preload=True)
        self.assert_tls_exit_runs_with_atexit("forkserver", log)

    def test_multiprocessing_spawn_child_runs_tls_exit_with_its_atexit(self):
        self.assert_tls_exit_runs_with_atexit("spawn", self.child_log("spawn"))


if __name__ == "__main__":
    unittest.main()
