"""wrap and ThreadPoolExecutor: work handed to other threads carries the
submitter's tls values and contextvars, and runs as a task (Snapshot.run)."""

# Modules only, not names: names imported here would count as this module's
# public API (stubtest checks them). The types are in tls/__init__.pyi (ParamSpec
# needs 3.10), so mypy does not check these bodies.
import concurrent.futures
import contextvars
import functools
import inspect
import types

import tls  # being imported (it imports this module): use its names at call time
from tls import _tls  # type: ignore[attr-defined]

# What calling fn makes if fn's body does not run in the call, and what to do
# instead; {} is where the call that does it goes (see _refuse_deferred_body).
_DEFERRED_BODIES = [
    (inspect.isasyncgenfunction, "an async generator",
     "iterate it in a coroutine run inside the task, e.g. {}",
     "lambda: asyncio.run(consume(agen()))"),
    (inspect.iscoroutinefunction, "a coroutine",
     "run the event loop inside the task, e.g. {}; or, within one event loop, keep "
     "per-request state in contextvars (each asyncio task has its own copy)",
     "lambda: asyncio.run(main())"),
    (inspect.isgeneratorfunction, "a generator",
     "consume it inside the task, e.g. {}",
     "lambda: list(gen())"),
]


# The code flags that make calling a function return a generator, a
# coroutine or an async generator instead of running its body.
_DEFERRED_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _plainly_runs_its_body(fn):
    """Whether fn is a plain Python function (or a bound method of one) that
    inspect would call neither a generator, a coroutine nor an async generator
    function: the common case, told from the code flags alone (inspect's three
    checks cost ~20,000 instructions a submit). False means "ask inspect"."""
    inner = fn.__func__ if type(fn) is types.MethodType else fn
    # inspect.markcoroutinefunction (3.12+) marks a function in its __dict__.
    return (type(inner) is types.FunctionType
            and not inner.__code__.co_flags & _DEFERRED_FLAGS
            and "_is_coroutine_marker" not in inner.__dict__)


def _refuse_deferred_body(fn, api, example):
    """Raises TypeError if calling fn only makes a generator, a coroutine or an
    async generator, as inspect tells (through functools.partial and bound
    methods, nested in any order): its body would run later, wherever it is
    iterated or awaited, outside the task. ``example`` is the call written the
    right way, with {} for the callable. Snapshot.run refuses such a result
    too, also from callables inspect cannot tell."""
    if _plainly_runs_its_body(fn):
        return
    inner = fn
    while True:  # inspect unwraps a method, then a partial: not a partial of a method
        if isinstance(inner, functools.partial):
            inner = inner.func
        elif inspect.ismethod(inner):
            inner = inner.__func__
        else:
            break
    for is_kind, made, instead, right in _DEFERRED_BODIES:
        if is_kind(inner):
            name = getattr(inner, "__qualname__", type(inner).__qualname__)
            raise TypeError(
                f"{api}() cannot run {name} as a task: it is {made} function, so calling "
                f"it only makes {made} object, whose body would run later, where it is "
                f"iterated or awaited: outside the task, in that thread's values; "
                f"instead, {instead.format(example.format(right))}")


def wrap(fn, /):
    """wrap captures the calling thread's tls values and its contextvars now,
    and returns a callable that runs ``fn`` as a task in them, on whatever
    thread calls it, as often as it is called.

    Each call is a task of its own (``Snapshot.run``) in its own copy of the
    captured context (as ``contextvars.copy_context().run``), so calls may
    overlap on any threads, and what one call sets (tls or ContextVar) is not
    seen by the next. Reads as ``fn`` does (name, docstring, ``__wrapped__``,
    as functools.wraps gives) and binds as a method when a class holds it.

    A generator function, ``async def`` function or async generator function
    (also through functools.partial or a bound method) raises TypeError: a
    call would only make the generator or coroutine, and its body would run
    later, outside the task. Consume it inside instead:
    ``tls.wrap(lambda: list(gen()))``, ``tls.wrap(lambda: asyncio.run(main()))``.

    Example::

        tls.set("request", "r-42")
        threading.Thread(target=tls.wrap(handle)).start()   # handle sees "r-42"
    """
    if not callable(fn):
        raise TypeError(f"wrap() argument must be callable, not {type(fn).__name__}")
    _refuse_deferred_body(fn, "wrap", "tls.wrap({})")
    # context.copy().run(snapshot.run, fn, ...) per call, in C (bindings/wrapped.h).
    return _tls._wrapped(fn)


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """ThreadPoolExecutor is concurrent.futures.ThreadPoolExecutor whose
    submit (and so map, and ``loop.run_in_executor``) runs each call as a task
    in the submitter's tls values and contextvars, captured at submit.

    A task sees the submitter's values, never the worker thread's nor an
    earlier task's; its at_exit handlers run and the values it set are closed
    when it returns, before its future is done. A generator, coroutine or
    async generator function is refused (TypeError), as by ``wrap``.
    """

    def submit(self, fn, /, *args, **kwargs):
        """submit schedules fn(*args, **kwargs) as a task in the calling
        thread's tls values and contextvars, taken now; returns its Future.

        A generator function, ``async def`` function or async generator
        function raises TypeError here (see ``wrap``): submit
        ``lambda: list(gen())`` or ``lambda: asyncio.run(main())`` instead."""
        _refuse_deferred_body(fn, "submit", "pool.submit({})")
        return super().submit(contextvars.copy_context().run, tls.capture().run, fn, *args,
                              **kwargs)
