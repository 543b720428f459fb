"""Helpers shared by the tls Python tests."""

import ctypes
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import unittest

# The test build of the extension (//python:tls, what `bazel test` uses) has
# hooks into the C++ side of the same engine: tls._tls._testing. The release
# wheels leave them out, so against an installed wheel (tools/test_wheels.py)
# the tests that need them skip, and the rest runs.
try:
    from tls._tls import _testing as HOOKS
except ImportError:
    HOOKS = None

NO_HOOKS = ("needs tls._tls._testing (C++-side hooks), which only the test build "
            "has: the release wheel leaves them out")
needs_hooks = unittest.skipUnless(HOOKS, NO_HOOKS)


def run_in_thread(fn, *args):
    """Runs fn(*args) on a new threading.Thread, waits for the thread to end
    (its tls exit included), and returns fn's result or re-raises its error."""
    box = {}

    def target():
        try:
            box["result"] = fn(*args)
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def cpp_id():
    """tls::ID() as C++ sees it on the calling thread, or None without the hooks."""
    return HOOKS.cpp_id() if HOOKS else None


def run_in_native_thread(fn):
    """Calls fn() on a new native thread that enters Python with
    PyGILState_Ensure and leaves with PyGILState_Release, as a C library calling
    back into Python does; returns once that thread has been joined. Returns the
    thread's tls::ID() as C++ saw it after fn returned (test hooks), or None:
    without the hooks a ctypes callback on a raw pthread enters and leaves
    Python the same way. An exception in fn goes to sys.unraisablehook."""
    if HOOKS:
        return HOOKS.run_in_native_thread(fn)
    libc = ctypes.CDLL(None)  # CDLL: the GIL is released during the calls
    start_routine = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)

    def body(_arg):
        fn()  # ctypes reports an exception to sys.unraisablehook
        return None

    callback = start_routine(body)
    thread = ctypes.c_ulong()
    err = libc.pthread_create(ctypes.byref(thread), None, callback, None)
    if err:
        raise OSError(err, os.strerror(err))
    libc.pthread_join(thread, None)
    return None


class Closer:
    """A value whose close() appends (name, "close") to a log."""

    def __init__(self, log, name):
        self.log = log
        self.name = name

    def close(self):
        self.log.append((self.name, "close"))


class Unraisables:
    """Context manager collecting what reaches sys.unraisablehook."""

    def __enter__(self):
        self.seen = []
        self._old = sys.unraisablehook
        sys.unraisablehook = lambda u: self.seen.append((u.exc_type, u.exc_value, u.object))
        return self

    def __exit__(self, *exc):
        sys.unraisablehook = self._old
        return False


def run_python(code, timeout=120, env_drop=()):
    """Runs `code` in a fresh interpreter that imports the same `tls` as this
    test, without the environment variables named in `env_drop`; returns the
    CompletedProcess (text output)."""
    return _run_child([sys.executable, "-c", textwrap.dedent(code)], timeout, env_drop)


def run_python_script(code, timeout=120, args=()):
    """As run_python, but from a script file: multiprocessing's spawn and
    forkserver children import the main module from its path (with `-c` they
    could not find the functions it defines). `args` go to sys.argv[1:]."""
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "main.py")
        with open(script, "w") as f:
            f.write(textwrap.dedent(code))
        return _run_child([sys.executable, script, *args], timeout)


def _run_child(argv, timeout, env_drop=()):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    for name in env_drop:
        env.pop(name, None)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


# Appended to a child program (run_python) before it exits: keeps finalization
# busy for 0.5 s, so a daemon thread that wakes meanwhile asks for the GIL
# while the interpreter finalizes, and CPython ends it with pthread_exit (a
# forced unwind through whatever tls frames it is in).
SLOW_FINALIZATION = """
import sys, time, types
class Slow:
    def __del__(self, sleep=time.sleep):
        sleep(0.5)
m = types.ModuleType("slow"); m.keep = Slow(); sys.modules["slow"] = m; del m
"""
