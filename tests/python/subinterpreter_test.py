"""Subinterpreters: `import tls` in one raises a clear ImportError (the store
and its exit hooks belong to the whole process, and run in the main
interpreter), whether or not the main interpreter loaded tls first, from the
main thread or another; and a subinterpreter that merely existed does not make
the binding misjudge who holds the GIL. Each case runs in a child process."""

import re
import sysconfig
import unittest

from support import run_python

# Runs `code` in a new subinterpreter (legacy, which loads single-phase
# extensions like tls._tls, unless isolated=True), then destroys it.
SUBINTERPRETER = """
import sys

def in_subinterpreter(code, isolated=False):
    if sys.version_info >= (3, 13):
        import _interpreters as interpreters
        iid = interpreters.create(interpreters.new_config("isolated" if isolated else "legacy"))
        interpreters.run_string(iid, code)
    else:
        import _xxsubinterpreters as interpreters
        iid = interpreters.create(isolated=isolated) if sys.version_info >= (3, 12) else interpreters.create()
        interpreters.run_string(iid, code)
    interpreters.destroy(iid)

TRY_IMPORT = '''
try:
    import tls
    tls.set("k", 1)
    print("imported", flush=True)
except ImportError as e:
    print("ImportError:", e, flush=True)
'''
"""

REFUSED = ("ImportError: tls cannot be used from a subinterpreter: its per-thread values and "
           "exit handlers belong to the whole process and run in the main interpreter")


# Free-threaded CPython (3.13t) refuses a single-phase extension in any
# subinterpreter itself, before tls's own check runs: the same ImportError,
# in CPython's words.
REFUSED_BY_CPYTHON = re.compile(r"ImportError: module (tls\.)?_tls does not support loading in subinterpreters")
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


class SubinterpreterTest(unittest.TestCase):
    def run_child(self, code):
        proc = run_python(SUBINTERPRETER + code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        if FREE_THREADED:
            lines = [REFUSED if REFUSED_BY_CPYTHON.fullmatch(line) else line for line in lines]
        return lines

    def test_import_in_a_subinterpreter_raises_import_error(self):
        self.assertEqual(self.run_child("in_subinterpreter(TRY_IMPORT)"), [REFUSED])

    def test_import_after_the_main_interpreter_loaded_tls_raises_import_error(self):
        out = self.run_child("""
import tls
tls.set("k", "main")
tls.at_exit(lambda: print("main handler", tls.get("k"), flush=True))
in_subinterpreter(TRY_IMPORT)
in_subinterpreter(TRY_IMPORT)
print("main still has", tls.get("k"), flush=True)
""")
        self.assertEqual(out, [REFUSED, REFUSED, "main still has main", "main handler main"])

    def test_main_interpreter_can_import_after_a_subinterpreter_was_refused(self):
        out = self.run_child("""
in_subinterpreter(TRY_IMPORT)
import tls
tls.set("k", 2)
print("main", tls.get("k"), flush=True)
""")
        self.assertEqual(out, [REFUSED, "main 2"])

    def test_isolated_subinterpreter_is_refused_too(self):
        out = self.run_child("""
if sys.version_info >= (3, 12):
    in_subinterpreter(TRY_IMPORT, isolated=True)
else:
    print("ImportError: isolated", flush=True)   # no isolated subinterpreters before 3.12
""")
        self.assertEqual(len(out), 1)
        self.assertTrue(out[0].startswith("ImportError:"), out)

    def test_import_from_a_subinterpreter_on_threads_never_crashes(self):
        out = self.run_child("""
import threading, tls
tls.set("k", 1)
def worker():
    in_subinterpreter(TRY_IMPORT)
for _ in range(20):
    t = threading.Thread(target=worker)
    t.start(); t.join()
print("main", tls.get("k"), flush=True)
""")
        self.assertEqual(out, [REFUSED] * 20 + ["main 1"])

    def test_thread_end_after_a_subinterpreter_existed_runs_python_safely(self):
        # Once a subinterpreter has existed, PyGILState_Check() says "yes" on
        # every thread (3.11 and older). A value stored by a ContextVar value's
        # __del__ while the thread state is cleared is closed by the native
        # hook, which must take the GIL for real.
        out = self.run_child(STORE_DURING_THREAD_STATE_CLEAR + """
closed = threading.Semaphore(0)
for _ in range(3):
    start_worker()
    closed.acquire()    # its close, at the native thread's end
print("done", flush=True)
""")
        self.assertEqual(out, ["closed True"] * 3 + ["done"])

    def test_native_thread_end_racing_interpreter_exit_never_crashes(self):
        # The same closes, still pending when the interpreter exits: each runs
        # before finalization or is left alone, never aborts the process.
        # Each worker has started before the exit begins: a thread whose start
        # races finalization crashes CPython 3.10 without tls (in
        # _PyThreadState_Init, ~2% of runs of 20 _thread threads and exit).
        proc = run_python(SUBINTERPRETER + STORE_DURING_THREAD_STATE_CLEAR + """
closed = threading.Semaphore(0)
for _ in range(20):
    start_worker()
for _ in range(20):
    started.acquire()
""")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        self.assertLessEqual(len(proc.stdout.splitlines()), 20)


STORE_DURING_THREAD_STATE_CLEAR = """
import _thread, contextvars, threading, tls
in_subinterpreter("pass")
var = contextvars.ContextVar("var")

class Closer:
    def __init__(self, owner):
        self.owner = owner
    def close(self):
        # One write per line: print() may interleave with another thread's.
        sys.stdout.write(f"closed {threading.get_ident() == self.owner}\\n")
        sys.stdout.flush()
        closed.release()

class StoreOnDel:
    def __del__(self):
        tls.set("late", Closer(threading.get_ident()))

started = threading.Semaphore(0)

def worker():
    var.set(StoreOnDel())   # freed with the thread's context
    started.release()

def start_worker():
    # A _thread thread runs in its thread state's own context, freed when that
    # state is cleared. (threading.Thread runs in the Thread's context from
    # 3.14, freed with the Thread object, on whichever thread drops it last.)
    _thread.start_new_thread(worker, ())
"""

if __name__ == "__main__":
    unittest.main()
