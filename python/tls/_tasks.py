"""wrap and ThreadPoolExecutor: work handed to other threads carries the
submitter's tls values and contextvars, and runs as a task (Snapshot.run)."""

# Modules only, not names: names imported here would count as this module's
# public API (stubtest checks them). The types are in tls/__init__.pyi (ParamSpec
# needs 3.10), so mypy does not check these bodies.
import concurrent.futures
import contextvars
import functools

import tls  # being imported (it imports this module): use its names at call time


def wrap(fn, /):
    """wrap captures the calling thread's tls values and its contextvars now,
    and returns a callable that runs ``fn`` as a task in them, on whatever
    thread calls it, as often as it is called.

    Each call is a task of its own (``Snapshot.run``) in its own copy of the
    captured context (as ``contextvars.copy_context().run``), so calls may
    overlap on any threads, and what one call sets (tls or ContextVar) is not
    seen by the next. Keeps ``fn``'s name and docstring (functools.wraps).

    Example::

        tls.set("request", "r-42")
        threading.Thread(target=tls.wrap(handle)).start()   # handle sees "r-42"
    """
    if not callable(fn):
        raise TypeError(f"wrap() argument must be callable, not {type(fn).__name__}")
    context = contextvars.copy_context()
    snapshot = tls.capture()

    @functools.wraps(fn)
    def run_as_task(*args, **kwargs):
        return context.copy().run(snapshot.run, fn, *args, **kwargs)

    return run_as_task


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """ThreadPoolExecutor is concurrent.futures.ThreadPoolExecutor whose
    submit (and so map, and ``loop.run_in_executor``) runs each call as a task
    in the submitter's tls values and contextvars, captured at submit.

    A task sees the submitter's values, never the worker thread's nor an
    earlier task's; its at_exit handlers run and the values it set are closed
    when it returns, before its future is done.
    """

    def submit(self, fn, /, *args, **kwargs):
        """submit schedules fn(*args, **kwargs) as a task in the calling
        thread's tls values and contextvars, taken now; returns its Future."""
        return super().submit(contextvars.copy_context().run, tls.capture().run, fn, *args,
                              **kwargs)
