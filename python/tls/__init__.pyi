"""Type stubs for the `tls` package (checked against the module by tests/python/stubs_test.py)."""

from concurrent import futures
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, TypeVar, final

from typing_extensions import ParamSpec
# PEP 800 (typing_extensions 4.15): tls.local has a C instance layout, so a
# class cannot derive from both it and another such base. Older type checkers
# (Debian bookworm's mypy 1.0.1) do not know the name; to them it is Any.
from typing_extensions import disjoint_base  # type: ignore[attr-defined]

# Private: not part of the runtime module.
_T = TypeVar("_T")
_P = ParamSpec("_P")

# `set` and `id` are public but left out of __all__ (they would shadow the
# builtins under `from tls import *`): use `import tls`.
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

def set(key: Hashable, value: Any, /) -> None: ...
def get(key: Hashable, /, default: Any = None) -> Any: ...
def delete(key: Hashable, /) -> bool: ...
def id() -> int: ...
def reset() -> None: ...
def unload() -> None: ...
def at_exit(fn: Callable[[], object], /) -> None: ...

class Data(Generic[_T]):
    def __init__(self, value: _T) -> None: ...
    @property
    def value(self) -> _T: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> bool: ...

def make_data(value: _T) -> Data[_T]: ...

# threading.local's interface; a thread's attributes with close() are closed
# at its end and at its reset; released on every thread when the object dies.
@disjoint_base
class local: ...

# threading.local's interface over tls values: tasks carry it from their
# submitter as they carry tls.set's values, and close what they set in it.
@disjoint_base
class task_local: ...

@final
class Snapshot:  # Snapshot() takes no arguments (object's __init__)
    # A generator, coroutine or async generator that fn returns: closed, TypeError.
    def run(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T: ...

def capture(*keys: Hashable) -> Snapshot: ...
# wrap and submit: a generator, coroutine or async generator function
# (its body would run outside the task) raises TypeError.
def wrap(fn: Callable[_P, _T], /) -> Callable[_P, _T]: ...

class ThreadPoolExecutor(futures.ThreadPoolExecutor):
    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> futures.Future[_T]: ...

@final
@dataclass(frozen=True)
class ThreadReport:
    id: int
    ident: int
    name: str | None
    task: bool
    python_keys: tuple[str, ...]
    python_values: int
    cpp_keys: tuple[str, ...]
    slot_values: int
    handlers: int
    bytes: int
    locals: tuple[str, ...]

@final
@dataclass(frozen=True)
class Stats:
    threads: int
    tasks: int
    python_threads: int
    python_values: int
    cpp_values: int
    slot_values: int
    handlers: int
    bytes: int
    kept_stubs: int

def threads() -> list[ThreadReport]: ...
def stats() -> Stats: ...

from tls import cpp as cpp

# Building C++ against the package's engine (tls/_cpp.py, python -m tls).
def get_include() -> str: ...
def get_library() -> str: ...
def get_cmake_dir() -> str: ...
def get_pkgconfig_dir() -> str: ...
