"""Data: a value wrapped so that closing it happens at most once (go-tls MakeData)."""

# `import typing`, not `from typing import ...`: names imported into this module
# would count as its public API (stubtest checks them).
import typing

_T = typing.TypeVar("_T")


class Data(typing.Generic[_T]):
    """Data holds one value and closes it at most once.

    ``close()`` calls ``value.close()`` if the value has one, the first time it
    is called (from any thread); later calls do nothing and return False.

    Example::

        d = tls.make_data(open("log.txt", "a"))
        tls.set("log", d)
        tls.reset()            # closes the file once
        d.close()              # False: already closed
    """

    __slots__ = ("_value", "_pending", "__weakref__")

    def __init__(self, value: _T) -> None:
        self._value = value
        # One token: list.pop() is atomic, so exactly one close() can take it.
        self._pending = [True]

    @property
    def value(self) -> _T:
        """The wrapped value (still readable after close)."""
        return self._value

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return not self._pending

    def close(self) -> bool:
        """close closes the value once; returns whether this call closed it.

        An exception from ``value.close()`` propagates; the Data still counts
        as closed.
        """
        try:
            self._pending.pop()
        except IndexError:
            return False
        closer: typing.Any = getattr(self._value, "close", None)
        if closer is not None:
            closer()
        return True

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"tls.Data({self._value!r}, {state})"


def make_data(value: _T) -> Data[_T]:
    """make_data wraps `value` into a Data (go-tls MakeData).

    Storing the Data with ``tls.set`` closes the value at ``reset()`` or thread
    end, once, even if the same Data is stored under several keys or threads.
    """
    return Data(value)
