from typing import Union

__all__ = ["delete", "get", "set"]

_Key = Union[str, int]
_Value = Union[str, bytes, bool, int, float, None]

def set(key: _Key, value: _Value, /) -> None: ...
def get(key: _Key, default: object = None, /) -> object: ...
def delete(key: _Key, /) -> bool: ...
