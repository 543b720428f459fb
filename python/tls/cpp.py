"""tls.cpp: the engine's own store, the one C++ code reads.

``tls.set``/``tls.get`` keep Python objects in Python's store (a dict per
thread). ``tls.cpp.set``/``get``/``delete`` reach the engine's keyed store
instead, where C++ ``tls::Set``/``tls::Get`` work: a C++ extension that links
the wheel's engine (``python -m tls --cmake-dir``) reads what Python set here,
and Python reads what C++ set, on the same thread or task::

    tls.cpp.set("request_id", "r-17")       # C++: *tls::Get<std::string>("request_id")
    tls.cpp.get("rows")                     # what C++ stored: tls::MakeData(int64_t{3})

Keys are str or int (C++ keys are); values are str (std::string), bytes
(std::vector<std::byte>), bool, int (int64_t), float (double) or None
(std::nullptr_t), and any other object is held as a tls::python::Object
(the wheel's tls/python.h), which C++ reads with the GIL and which comes back
here as itself. Tasks carry them (``tls.capture()``, ``tls.wrap``,
``tls.ThreadPoolExecutor``), ``tls.reset()`` and thread end release them, and
``tls.threads()`` lists their keys as ``cpp_keys``. See docs/python-cpp.md.
"""

from tls._tls import _cpp

delete = _cpp.delete
get = _cpp.get
set = _cpp.set  # noqa: A001 (tls.cpp.set, as tls.set: a namespace, not a star import)

__all__ = ["delete", "get", "set"]
