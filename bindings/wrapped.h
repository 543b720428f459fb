// File: bindings/wrapped.h
//
// What tls.wrap(fn) returns: a C callable holding fn, the contextvars Context
// and the Snapshot taken at wrap time. Each call runs fn as a task in the
// snapshot, in a fresh copy of that context (contextvars.Context.copy, then
// run), as `context.copy().run(snapshot.run, fn, *args)` would, without the
// Python frames. It reads as fn does: __name__, __qualname__, __doc__,
// __module__ and the entries of fn.__dict__ are fn's (what functools.wraps
// would copy, read when asked), __wrapped__ is fn (so inspect.signature gives
// fn's signature); it binds as a method when a class holds it, as a function
// does; attributes set on it are its own (its __dict__, vars() and a
// functools.wraps over it see them), __name__ and the like included.
//
// Example (Python; python/tls/_tasks.py):
//   run = _tls._wrapped(fn)   # fn checked (callable, not a generator...) first
//   run(1, x=2)               # fn(1, x=2) as a task in the captured values
#ifndef TLS_BINDINGS_WRAPPED_H_
#define TLS_BINDINGS_WRAPPED_H_

#include <Python.h>

namespace tls::bindings {

// Adds _wrapped(fn) (not API; tls.wrap calls it) to `module`. 0, or -1 with a
// Python error set.
int RegisterWrapped(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_WRAPPED_H_
