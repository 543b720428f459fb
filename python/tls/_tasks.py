"""wrap and ThreadPoolExecutor: work handed to other threads carries the
submitter's tls values and contextvars, and runs as a task (Snapshot.run)."""

# Modules only, not names: names imported here would count as this module's
# public API (stubtest checks them). The types are in tls/__init__.pyi (ParamSpec
# needs 3.10), so mypy does not check these bodies.
import concurrent.futures
import contextvars
import functools
import inspect

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


def _refuse_deferred_body(fn, api, example):
    """Raises TypeError if calling fn only makes a generator, a coroutine or an
    async generator, as inspect tells (through functools.partial and bound
    methods, nested in any order): its body would run later, wherever it is
    iterated or awaited, outside the task. ``example`` is the call written the
    right way, with {} for the callable. Snapshot.run refuses such a result
    too, also from callables inspect cannot tell. Callers skip it for a plain
    function (``_tls._plainly_runs_its_body``): inspect need not look."""
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


# wrap(fn): in C (bindings/wrapped.h), which asks _refuse_deferred_body about
# any callable that is not a plain function.
_tls._set_refusal(_refuse_deferred_body)
wrap = _tls.wrap


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
        if not _tls._plainly_runs_its_body(fn):
            _refuse_deferred_body(fn, "submit", "pool.submit({})")
        return super().submit(contextvars.copy_context().run, tls.capture().run, fn, *args,
                              **kwargs)
