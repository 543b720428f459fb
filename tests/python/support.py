"""Helpers shared by the tls Python tests."""

import os
import subprocess
import sys
import textwrap
import threading


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


def run_python(code, timeout=120):
    """Runs `code` in a fresh interpreter that imports the same `tls` as this
    test; returns the CompletedProcess (text output)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
