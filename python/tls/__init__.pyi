"""Type stubs for the `tls` package (checked against the module by tests/python/stubs_test.py)."""

from concurrent import futures
from typing import Any, Callable, Generic, Hashable, TypeVar, final

from typing_extensions import ParamSpec

# Private: not part of the runtime module.
_T = TypeVar("_T")
_P = ParamSpec("_P")

__all__ = [
    "Data",
    "Snapshot",
    "ThreadPoolExecutor",
    "at_exit",
    "capture",
    "delete",
    "get",
    "id",
    "make_data",
    "reset",
    "set",
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

@final
class Snapshot:  # Snapshot() takes no arguments (object's __init__)
    def run(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T: ...

def capture(*keys: Hashable) -> Snapshot: ...
def wrap(fn: Callable[_P, _T], /) -> Callable[_P, _T]: ...

class ThreadPoolExecutor(futures.ThreadPoolExecutor):
    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> futures.Future[_T]: ...
