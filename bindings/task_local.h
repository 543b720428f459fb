// File: bindings/task_local.h
//
// `tls.task_local`: threading.local's interface over keyed values, so that
// tasks carry it as they carry tls.set's values. Each attribute is a value in
// the calling thread's (in a task: the task's) Python store, under a key of
// its own that the object makes for that name (an AttrKey: identity-hashed,
// reprs as `<task_local Type.name>`). So every rule of keyed values holds for
// it unchanged (docs/python.md, "Tasks on thread pools"):
//   - per thread outside tasks; closed (close() once per object) at the
//     thread's end, after its at_exit handlers, and at tls.reset();
//   - a task (Snapshot.run, tls.wrap, tls.ThreadPoolExecutor) sees the
//     attributes captured where it was submitted, at capture, never the pool
//     thread's; what it sets is its own, closed at its end; what it was given
//     is never closed by it; the thread's are back unchanged after it;
//   - listed by tls.threads() among the keys; capture(*keys) leaves them out
//     (their keys are private), capture() takes them.
// Unlike tls.local, the object's death releases only the calling thread's
// (or task's) attributes at once; other threads' go at their end or reset,
// as values under a key nobody else can name. And, as for any tls value, an
// attribute that refers back to the object (a bound method stored by
// __init__) keeps it alive until that thread's reset or end: the collector
// cannot see the store. Make task_locals once (module level); tls.local,
// whose dicts the object reports to the collector, suits per-object use.
//
// A subclass's __init__ runs, with the constructor's arguments, on first use
// in each thread and in each task whose snapshot did not carry this object's
// attributes (a marker key per object records that it ran). `__dict__` is a
// new dict of the calling view's attributes: a copy, read-only in effect.
// __slots__ and other data descriptors of the class come first, shared by
// every thread, as in CPython's local.
//
// Example (Python):
//   request = tls.task_local()
//   request.user = "ada"                         # this thread's
//   pool.submit(lambda: request.user)            # "ada", on a pool thread
#ifndef TLS_BINDINGS_TASK_LOCAL_H_
#define TLS_BINDINGS_TASK_LOCAL_H_

#include <Python.h>

namespace tls::bindings {

// Adds the `task_local` type to `module`. 0, or -1 with a Python error set.
int RegisterTaskLocal(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_TASK_LOCAL_H_
