"""Thread-local storage that cleans up after itself, for Python threads.

Each thread gets a private key/value store, a unique ID that is never reused,
and at-exit handlers that run when the thread ends. This is go-tls's API on the
C++ engine in //core: a Python thread and the C++ code it calls agree on its ID,
and ``reset``/``unload``/thread end apply to both sides.

Example::

    import threading, tls

    def worker():
        tls.set("request", "r-17")
        tls.at_exit(lambda: print("bye", tls.get("request")))
        print(tls.id())        # unique for this thread, never reused

    t = threading.Thread(target=worker); t.start(); t.join()   # prints "bye r-17"

Thread end, in order: ``at_exit`` handlers run newest first with every value
still readable, then each stored value with a ``close()`` method is closed
once. It runs on the ending thread while its Python state is valid; for the
main thread, at interpreter exit before finalization.

Tasks on thread pools: ``capture()`` takes a snapshot of the thread's values,
``snapshot.run(fn)`` runs fn as a task in it on any thread (the thread's own
values hidden, the task's ``at_exit`` and closes at its end), ``wrap(fn)``
does both and carries contextvars too, and ``ThreadPoolExecutor`` does it for
every ``submit``::

    tls.set("request", "r-17")
    with tls.ThreadPoolExecutor() as pool:
        pool.submit(lambda: print(tls.get("request")))   # r-17, on a pool thread

Generators and coroutines are refused (TypeError): their body would run later,
outside the task. Consume them inside it: ``pool.submit(lambda: list(gen()))``.

Debugging: ``threads()`` lists every live thread and open task with its ID,
thread name and keys (never values); ``stats()`` gives the totals.
"""

from tls import _tls

# A subinterpreter gets ImportError (see bindings/module.cc for why), also when
# the main interpreter loaded the extension first.
_tls._require_main_interpreter()

from tls import cpp  # noqa: E402  (tls.cpp: the engine's store, shared with C++)
from tls._cpp import get_cmake_dir, get_include, get_library, get_pkgconfig_dir  # noqa: E402
from tls._data import Data, make_data  # noqa: E402
from tls._introspection import Stats, ThreadReport, stats, threads  # noqa: E402
from tls._tasks import ThreadPoolExecutor, wrap  # noqa: E402
from tls._tls import (  # noqa: E402
    Snapshot, at_exit, capture, delete, get, id, local, reset, set, task_local, unload)

# The supported form is `import tls` and `tls.set(...)`: `set` and `id` are
# left out of `from tls import *`, which would shadow the builtins.
__all__ = [
    "Data",
    "Snapshot",
    "Stats",
    "ThreadPoolExecutor",
    "ThreadReport",
    "at_exit",
    "capture",
    "delete",
    "get",
    "local",
    "make_data",
    "reset",
    "stats",
    "task_local",
    "threads",
    "unload",
    "wrap",
]

# Errors, reprs and help() name the extension's functions as they are called:
# "tls.reset() takes no arguments", not "tls._tls.reset() ...".
for _function in (at_exit, capture, delete, get, id, reset, set, unload, wrap):
    _function.__module__ = __name__
del _function
