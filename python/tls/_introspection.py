"""threads() and stats(): what every live thread and open task holds, keys
and counts only, read from any thread (the C++ side is tls::ListThreads and
tls::GetStats, core/threads.h; bindings/introspection.h says how another
thread's Python store is read safely)."""

# Modules only, not names: names imported here would count as this module's
# public API (stubtest checks them).
import dataclasses
import threading
import typing

# The extension has no stub (its public names are in tls/__init__.pyi), so
# mypy, which stubtest runs over this file, cannot see it.
from tls import _tls  # type: ignore[attr-defined]


@typing.final
@dataclasses.dataclass(frozen=True)
class ThreadReport:
    """ThreadReport is one live thread (or open task) as ``tls.threads()``
    saw it: who it is, its keys and counts, never its values.

    Fields:
      id:          what ``tls.id()`` returns on that thread (in that task)
      ident:       the thread running it: ``threading.get_ident()`` there
                   (a task's is the thread's it runs on)
      name:        that thread's ``threading.Thread.name``, or None when
                   ``threading`` does not know the thread (a native thread,
                   or one already leaving ``threading``)
      task:        whether this is a task's view (``Snapshot.run``, ``wrap``,
                   ``ThreadPoolExecutor``, C++ ``tls::TaskScope``), not a
                   thread's own
      python_keys: ``repr()`` of each Python key it holds, in insertion order
      python_values: how many Python values it holds (``len(python_keys)``)
      cpp_keys:    its C++ keys (``tls::Set``), as C++ ``Key::ToString``
                   writes them (``'"user"'``, ``'42'``), in no set order
      slot_values: its C++ ``tls::Slot`` values (its Python store is one)
      handlers:    ``at_exit`` handlers waiting, Python and C++
      bytes:       approximate heap bytes the engine keeps for it (not
                   counting the values themselves)
      locals:      the attributes that ``tls.local`` objects hold on that
                   thread, each as ``'TypeName.attr'`` (the local's type's
                   ``__qualname__``), locals in the order they were made;
                   empty for a task (a local's attributes are its thread's)
    """

    id: int
    ident: int
    name: typing.Optional[str]
    task: bool
    python_keys: typing.Tuple[str, ...]
    python_values: int
    cpp_keys: typing.Tuple[str, ...]
    slot_values: int
    handlers: int
    bytes: int
    locals: typing.Tuple[str, ...]


@typing.final
@dataclasses.dataclass(frozen=True)
class Stats:
    """Stats is the process-wide totals ``tls.stats()`` returns.

    Fields:
      threads:        live threads that hold tls state (a thread that never
                      used tls is not counted)
      tasks:          open tasks with state of their own
      python_threads: threads and tasks whose Python store holds a value
      python_values:  Python values, over all threads and tasks
      cpp_values:     C++ keyed values (``tls::Set``); a task counts its own,
                      not what its snapshot gave it
      slot_values:    C++ ``tls::Slot`` values (each Python store is one)
      handlers:       ``at_exit`` handlers waiting, Python and C++
      bytes:          approximate heap bytes of the engine's per-thread state,
                      what it keeps for reuse included (not the values)
      kept_stubs:     emptied per-thread states kept for the next thread or
                      task (no values)
    """

    threads: int
    tasks: int
    python_threads: int
    python_values: int
    cpp_values: int
    slot_values: int
    handlers: int
    bytes: int
    kept_stubs: int


def _thread_names():
    """{ident: name} of the threads `threading` knows (none if it cannot tell,
    as late in interpreter shutdown)."""
    try:
        return {t.ident: t.name for t in threading.enumerate()}
    except Exception:  # a debugging aid must not fail for a name
        return {}


def _key_repr(key):
    try:
        return repr(key)
    except Exception:  # a key whose __repr__ raises is still listed
        return object.__repr__(key)


def _local_names(locals_):
    """'TypeName.attr' for each (type, [names]) of a thread's tls.local dicts."""
    return tuple(f"{t.__qualname__}.{n if isinstance(n, str) else _key_repr(n)}"
                 for t, names in locals_ for n in names)


def threads():
    """threads lists every live thread and open task that holds tls state,
    newest first, as a list of ``tls.ThreadReport``: id, native ident, thread
    name, whether it is a task, its Python keys (``repr()``, insertion order),
    the names of its ``tls.local`` attributes, and counts. Never the values.

    The same threads, with the same ids, as C++ ``tls::ListThreads()``: a
    thread with only C++ state, or none in Python, is listed with no Python
    keys. Safe from any thread, while others start, store and end, and from an
    ``at_exit`` handler or a ``close()``. A snapshot: a thread that stores or
    ends during the call may be seen before or after. Costs two walks over all
    threads (a system call each), a ``repr()`` per key and a look at every
    live ``tls.local``'s dicts.

    Example::

        for t in tls.threads():
            print(t.id, t.name, "task" if t.task else "", t.python_keys)
    """
    raw = _tls._threads()
    names = _thread_names()
    return [
        ThreadReport(
            id=id_,
            ident=ident,
            name=names.get(ident),
            task=task,
            python_keys=tuple(_key_repr(k) for k in keys),
            python_values=len(keys),
            cpp_keys=cpp_keys,
            slot_values=slot_values,
            handlers=handlers,
            bytes=size,
            locals=_local_names(locals_),
        )
        for id_, ident, task, keys, cpp_keys, slot_values, handlers, size, locals_ in raw
    ]


def stats():
    """stats returns the process-wide totals as a ``tls.Stats``: threads and
    tasks holding tls state, Python values and the threads holding them, and
    C++ ``tls::GetStats()``'s figures.

    Over the same threads ``threads()`` lists (at rest, ``stats().python_values ==
    sum(t.python_values for t in tls.threads())``, and so on); a snapshot, like it.
    ``dataclasses.asdict(tls.stats())`` gives a dict.
    """
    return Stats(**_tls._stats())
