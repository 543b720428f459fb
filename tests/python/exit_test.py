"""Interpreter exit: the main thread's handlers and closes run at exit, before
finalization and in order; live daemon threads holding values and handlers do
not crash or hang it, and the exit code is kept. Each case runs in a child."""

import unittest

from support import SLOW_FINALIZATION, run_python


class MainThreadExitTest(unittest.TestCase):
    def test_main_thread_handlers_then_closes_run_at_interpreter_exit(self):
        proc = run_python("""
            import atexit, sys, tls

            class V:
                def close(self):
                    print("close", tls.get("v") is None, flush=True)

            tls.set("v", V())
            tls.at_exit(lambda: print("handler-1", type(tls.get("v")).__name__, flush=True))
            tls.at_exit(lambda: print("handler-2", sys.is_finalizing(), flush=True))
            atexit.register(lambda: print("user-atexit", flush=True))  # registered later: runs first
            print("main-done", flush=True)
            sys.exit(3)
        """)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        self.assertEqual(
            proc.stdout.split("\n"),
            ["main-done", "user-atexit", "handler-2 False", "handler-1 V", "close True", ""],
        )
        self.assertEqual(proc.stderr, "")

    def test_atexit_clear_keeps_the_main_thread_exit_registered(self):
        # atexit._clear() drops the callbacks registered so far; tls's exit is
        # registered again at once (the oldest again: it still runs last).
        proc = run_python("""
            import atexit, tls

            class V:
                def close(self):
                    print("close", flush=True)

            atexit.register(lambda: print("cleared: never runs", flush=True))
            atexit._clear()
            atexit.register(lambda: print("user-atexit", flush=True))
            tls.set("v", V())
            tls.at_exit(lambda: print("handler", flush=True))
        """)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "user-atexit\nhandler\nclose\n")
        self.assertEqual(proc.stderr, "")

    def test_main_thread_handler_error_goes_to_unraisablehook_exit_code_kept(self):
        proc = run_python("""
            import sys, tls
            sys.unraisablehook = lambda u: print("unraisable", u.exc_type.__name__, flush=True)
            tls.at_exit(lambda: print("older", flush=True))
            tls.at_exit(lambda: 1 / 0)
            sys.exit(5)
        """)
        self.assertEqual(proc.returncode, 5, proc.stderr)
        self.assertEqual(proc.stdout, "unraisable ZeroDivisionError\nolder\n")

    def test_value_set_after_main_exit_ran_is_left_alone_at_finalization(self):
        # A __del__ during finalization stores a value: nothing may call into
        # Python for it once finalization has begun (no crash, no output).
        proc = run_python("""
            import tls

            class V:
                def close(self):
                    print("closed during finalization", flush=True)

            class Late:
                def __del__(self):
                    tls.set("late", V())
                    tls.at_exit(lambda: print("handler during finalization", flush=True))

            keep = Late()   # module global: freed during finalization
            tls.set("x", 1)
        """)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("during finalization", proc.stdout)


class DaemonThreadsAtExitTest(unittest.TestCase):
    def test_daemon_threads_with_values_and_handlers_exit_cleanly(self):
        proc = run_python("""
            import sys, threading, time, tls

            class V:
                def close(self):
                    print("daemon value closed", flush=True)

            ready = threading.Barrier(9)

            def daemon(i):
                tls.set("v", V())
                tls.at_exit(lambda: print("daemon handler ran", flush=True))
                ready.wait()
                while True:          # busy in Python when the interpreter exits
                    tls.set("n", tls.get("n", 0) + 1)
                    time.sleep(0.001)

            for i in range(8):
                threading.Thread(target=daemon, args=(i,), daemon=True).start()
            ready.wait()
            tls.at_exit(lambda: print("main handler", flush=True))
            sys.exit(7)
        """)
        self.assertEqual(proc.returncode, 7, proc.stderr)
        self.assertEqual(proc.stdout, "main handler\n")
        self.assertEqual(proc.stderr, "")

    def test_daemon_threads_blocked_in_native_code_exit_cleanly(self):
        proc = run_python("""
            import os, threading, tls

            r, w = os.pipe()
            ready = threading.Barrier(5)

            def daemon():
                tls.set("v", tls.make_data(object()))
                tls.at_exit(lambda: print("daemon handler ran", flush=True))
                ready.wait()
                os.read(r, 1)        # blocked without the GIL at exit

            for _ in range(4):
                threading.Thread(target=daemon, daemon=True).start()
            ready.wait()
            raise SystemExit(9)
        """)
        self.assertEqual(proc.returncode, 9, proc.stderr)
        self.assertEqual(proc.stdout, "")

    def test_daemon_threads_woken_during_finalization_exit_cleanly(self):
        # The daemons wake while the interpreter is finalizing: CPython ends
        # each one (pthread_exit) when it asks for the GIL, which runs the
        # engine's native exit hook. Their handlers and closes must then be
        # skipped, never call into Python.
        proc = run_python("""
            import threading, time, tls

            class V:
                def close(self):
                    print("daemon value closed", flush=True)

            wake = threading.Lock()
            wake.acquire()
            ready = threading.Barrier(5)

            def daemon():
                tls.set("v", V())
                tls.at_exit(lambda: print("daemon handler ran", flush=True))
                ready.wait()
                wake.acquire()       # blocks without the GIL
                wake.release()       # wake the next daemon

            for _ in range(4):
                threading.Thread(target=daemon, daemon=True).start()
            ready.wait()

            class WakeDaemonsAtFinalization:
                def __del__(self, wake=wake, sleep=time.sleep):
                    wake.release()
                    sleep(0.2)       # lets the daemons ask for the GIL now

            keep = WakeDaemonsAtFinalization()   # freed during finalization
            raise SystemExit(6)
        """)
        self.assertEqual(proc.returncode, 6, proc.stderr)
        self.assertEqual(proc.stdout, "")


# The main thread exits while a daemon thread is inside a tls callback that
# runs Python code: CPython ends the daemon with pthread_exit when it next asks
# for the GIL, a forced unwind through the engine, which must let it pass.
# `SLOW_FINALIZATION` (support.py) keeps finalization busy long enough for that.


class DaemonThreadInsideCallbackAtExitTest(unittest.TestCase):
    def assert_exits_with(self, code, body):
        proc = run_python(body + SLOW_FINALIZATION + f"sys.exit({code})\n")
        self.assertEqual(proc.returncode, code, proc.stderr)
        self.assertNotIn("terminate", proc.stderr)

    def test_daemon_in_a_close_run_by_reset_keeps_the_exit_code(self):
        self.assert_exits_with(4, """
import threading, time, tls
ready = threading.Event()
class V:
    def close(self):
        ready.set(); time.sleep(0.2)
def daemon():
    tls.set("v", V()); tls.reset()
threading.Thread(target=daemon, daemon=True).start(); ready.wait()
""")

    def test_daemon_in_a_del_run_by_unload_keeps_the_exit_code(self):
        self.assert_exits_with(5, """
import threading, time, tls
ready = threading.Event()
class V:
    def __del__(self):
        ready.set(); time.sleep(0.2)
def daemon():
    tls.set("v", V()); tls.unload()
threading.Thread(target=daemon, daemon=True).start(); ready.wait()
""")

    def test_daemon_in_a_del_of_a_value_dropped_by_reset_keeps_the_exit_code(self):
        self.assert_exits_with(6, """
import threading, time, tls
ready = threading.Event()
class V:
    def __del__(self):
        ready.set(); time.sleep(0.2)
def daemon():
    tls.set("v", V()); tls.reset()
threading.Thread(target=daemon, daemon=True).start(); ready.wait()
""")

    def test_daemon_in_its_own_exit_handler_keeps_the_exit_code(self):
        self.assert_exits_with(7, """
import threading, time, tls
ready = threading.Event()
def handler():
    ready.set(); time.sleep(0.2)
def daemon():
    tls.at_exit(handler)   # runs as the daemon's run() returns
threading.Thread(target=daemon, daemon=True).start(); ready.wait()
""")

    def test_daemon_in_a_close_at_its_own_exit_keeps_the_exit_code(self):
        self.assert_exits_with(8, """
import _thread, threading, time, tls
ready = threading.Event()
class V:
    def close(self):
        ready.set(); time.sleep(0.2)
def daemon():
    tls.set("v", V())      # closed as the thread ends (the sentinel path)
_thread.start_new_thread(daemon, ()); ready.wait()
""")

    def test_daemon_in_unraisablehook_reporting_a_handler_error_keeps_the_exit_code(self):
        self.assert_exits_with(9, """
import sys, threading, time, tls
ready = threading.Event()
def hook(unraisable):
    ready.set(); time.sleep(0.2)
sys.unraisablehook = hook
def daemon():
    tls.at_exit(lambda: 1 / 0)   # raises as the daemon's run() returns
threading.Thread(target=daemon, daemon=True).start(); ready.wait()
""")

    def test_random_daemon_work_at_exit_never_crashes(self):
        # 60 programs: daemon threads doing random tls work whose closes,
        # handlers and __del__ sleep, raise and call tls, while the main thread
        # exits at a random moment. Each must end with its own exit code.
        failures = []
        for seed in range(60):
            proc = run_python(RANDOM_DAEMONS.replace("SEED", str(seed)))
            if proc.returncode != 3 or "terminate" in proc.stderr or "Fatal" in proc.stderr:
                failures.append((seed, proc.returncode, proc.stderr[-500:]))
        self.assertEqual(failures, [])


RANDOM_DAEMONS = """
import random, sys, threading, time, types, tls
rng = random.Random(SEED)
sys.unraisablehook = lambda u: time.sleep(0.001)

def nap():
    time.sleep(rng.choice([0, 0, 0.0005, 0.002, 0.02]))

class V:
    def close(self):
        nap()
        if rng.random() < 0.2: raise ValueError("close")
        if rng.random() < 0.2: tls.set(rng.randrange(4), V())
    def __del__(self):
        nap()
        if rng.random() < 0.1: tls.reset()

def handler():
    nap()
    if rng.random() < 0.2: raise ValueError("handler")
    if rng.random() < 0.2: tls.set("h", V())

def daemon(seed):
    r = random.Random(seed)
    while True:
        op = r.randrange(8)
        k = r.randrange(4)
        if op < 3: tls.set(k, V())
        elif op == 3: tls.get(k)
        elif op == 4: tls.delete(k)
        elif op == 5: tls.reset()
        elif op == 6: tls.at_exit(handler)
        elif r.random() < 0.5: tls.unload()
        else: return  # the thread ends: its exit runs
        nap()

def spawner(seed):
    r = random.Random(seed)
    while True:
        t = threading.Thread(target=daemon, args=(r.random(),), daemon=True)
        t.start(); t.join()

for i in range(4):
    threading.Thread(target=spawner, args=(rng.random(),), daemon=True).start()
time.sleep(rng.random() * 0.05)
if rng.random() < 0.5:
    class Slow:
        def __del__(self, sleep=time.sleep): sleep(0.05)
    m = types.ModuleType("slow"); m.keep = Slow(); sys.modules["slow"] = m; del m
sys.exit(3)
"""


if __name__ == "__main__":
    unittest.main()
