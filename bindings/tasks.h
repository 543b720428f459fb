// File: bindings/tasks.h
//
// Task-local storage from Python: tls.capture(), tls.Snapshot and
// Snapshot.run (the model is the engine's, core/task.h).
//
// A Python snapshot is the engine's tls::Snapshot (the thread's C++ values)
// plus a copy of the thread's Python dict (the values shared, not copied; a
// thread with no values captures nothing). Snapshot.run calls fn inside a
// tls::TaskScope. The engine swaps the thread's stub for the task's, so the
// thread's PyState (a Slot value) is hidden with everything else, and the task
// gets its own PyState, which borrows the captured dict until the task's
// first write makes it a copy (py_state.h, PyState::Borrow: a task that only
// reads copies nothing and has nothing to close). When the task ends, the
// engine runs its at_exit handlers and closes its values, PyState included:
// PyState::Close skips what CapturedObjects reports, the objects given to a
// task still open on this thread, as the engine skips its own captured values.
// A Snapshot counts its Python values in bindings/snapshot_holds.h while it
// lives, so that a thread's or task's end leaves the close of a value it holds
// to its release (tp_finalize or dealloc), as the engine does for C++ values.
#ifndef TLS_BINDINGS_TASKS_H_
#define TLS_BINDINGS_TASKS_H_

#include <Python.h>

#include <cstdint>

#include "tls/embedder.h"

namespace tls::bindings {

// The objects that the snapshots of the calling thread's open Python tasks
// (nested ones included) gave them: they belong to the thread that captured
// them, and a task never closes them. Gathered on the first Contains, so a
// thread with no open task pays one pointer read, and a few captured values
// cost no allocation. Requires the GIL; use it within one call (the snapshots
// hold the objects only while their tasks run).
class CapturedObjects {
 public:
  bool Contains(PyObject* value);

  // How many snapshot holds of `value` (bindings/snapshot_holds.h) belong to
  // snapshots that tasks of this thread ran when the thread's exit ended them
  // (exit() called inside Snapshot.run): never released, the thread ends
  // inside them, so they do not defer its close. 0 at once with no such task.
  uint64_t StrandedHolds(PyObject* value) const;

 private:
  bool gathered_ = false;
  tls::embedder::IdentitySet objects_;
};

// snapshot.run(*args, **kwargs): args[0] is fn, the keyword values follow
// the positional ones (vectorcall's layout). For bindings/wrapped.cc.
PyObject* RunInSnapshot(PyObject* snapshot, PyObject* const* args, Py_ssize_t nargs,
                        PyObject* kwnames);

// capture(): a new Snapshot of every value of the calling thread (or task).
PyObject* CaptureAll();

// Adds capture() and the Snapshot type to `module`.
// Returns 0, or -1 with a Python error set.
int RegisterTaskBindings(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_TASKS_H_
