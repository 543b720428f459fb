// File: bindings/local.h
//
// `tls.local`: threading.local's interface, each object's per-thread
// attribute dicts held by the engine in a tls::ThreadSlot of its own. So the
// engine's rules apply to them unchanged:
//   - a thread's attributes are closed (close() on each value that has one,
//     once per round) at the thread's end, after its at_exit handlers, for
//     every kind of thread, and at that thread's tls.reset();
//   - thread-scoped: a task on a pool thread sees the worker's attributes (a
//     per-worker cache), never hidden, never captured;
//   - when the local object dies, every thread's attributes are released at
//     once, on the thread where it died (not closed: as threading.local drops
//     them), not when those threads end (core/slot.h, ~Slot).
//
// As in CPython's _thread._local: subclasses re-run __init__ with the
// constructor's arguments the first time each thread touches the object
// (also after a reset emptied it there); the base class refuses arguments;
// `__dict__` is the calling thread's dict, read-only; __slots__ are shared by
// every thread; attribute lookup is the generic one over that dict. The
// garbage collector sees every thread's dict through the object
// (tp_traverse), so cycles through a local's attributes are collected.
//
// Example (Python):
//   cache = tls.local()
//   def worker():
//       cache.conn = connect()   # this thread's; closed when the thread ends
#ifndef TLS_BINDINGS_LOCAL_H_
#define TLS_BINDINGS_LOCAL_H_

#include <Python.h>
#include <pthread.h>

#include <vector>

namespace tls::bindings {

// One thread's attributes of one tls.local, as TakeLocalDicts found them.
struct LocalDictRef {
  pthread_t thread;  // the thread whose attributes they are (its pthread_self())
  PyObject* type;    // a strong reference to the local's type
  PyObject* dict;    // a strong reference to that thread's attribute dict
};

// Appends to `out`, for every live tls.local in the order they were made,
// each thread's attribute dict (for tls.threads()). Reads only what the
// objects' own lists hold under their locks, runs no Python code and walks
// no thread. The caller holds the GIL (free-threaded: is attached) and
// releases the references. false with a Python error set on failure (then
// `out` holds no new reference).
bool TakeLocalDicts(std::vector<LocalDictRef>& out);

// Adds the `local` type to `module`. 0, or -1 with a Python error set.
int RegisterLocal(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_LOCAL_H_
