// File: bindings/py_state.h
//
// Where Python values live: one dict per thread, held by the engine in a
// tls::Slot<PyState>. Because the dict is an ordinary engine value, the engine's
// rules apply to it unchanged: tls::Reset() closes it (with the C++ values),
// tls::Unload() drops it without closing, and thread exit closes it after the
// AtExit handlers ran. Slot values are task-local, so inside a task
// (tls::TaskScope, Snapshot.run) the thread's PyState is hidden and the task
// has its own, closed when the task ends. Only the calling thread touches its
// PyState.
#ifndef TLS_BINDINGS_PY_STATE_H_
#define TLS_BINDINGS_PY_STATE_H_

#include <Python.h>

#include <atomic>

#include "tls/slot.h"

namespace tls::bindings {

class PyState {
 public:
  // Holds a new reference to `dict` (an empty dict). Runs no Python code.
  explicit PyState(PyObject* dict) noexcept : dict_(dict), borrowed_(false) { Py_INCREF(dict); }
  // A task's store as it begins (Snapshot.run): the snapshot's dict itself,
  // borrowed (no reference: the snapshot outlives the task) and never
  // written; the first write makes it the task's own copy (Own). A task that
  // only reads so costs no copy, and its end nothing to close: every value in
  // it was given to the task, which closes none of them.
  struct Borrow {};
  PyState(PyObject* captured, Borrow) noexcept : dict_(captured), borrowed_(true) {}
  // Releases the dict without running Python code here (ReleaseFromDestructor);
  // leaks it if Python is finalizing or gone (python_access.h).
  ~PyState();
  PyState(const PyState&) = delete;
  PyState& operator=(const PyState&) = delete;

  // Called by the engine at Reset, thread exit and task end (the slot is
  // already detached from the thread, so close() sees a fresh, empty store).
  // Calls close() once on each distinct stored object that has one, in
  // insertion order, except objects a snapshot gave to a task still open on
  // this thread (bindings/tasks.h), and, at a thread's or task's end, objects
  // a live Snapshot holds: their close is left to its release
  // (bindings/snapshot_holds.h). Errors go to sys.unraisablehook. Then drops
  // every value. A forced unwind (CPython ending the thread) passes.
  void Close();

  // The key -> value dict (borrowed). Read by other threads' walks
  // (introspection), hence atomic: Own publishes a whole new dict.
  PyObject* dict() const noexcept { return dict_.load(std::memory_order_acquire); }

  // Whether dict() is a snapshot's, not to be written (see Borrow). Only the
  // owning thread asks.
  bool borrowed() const noexcept { return borrowed_; }

  // Takes `own` (a new reference: a copy of the borrowed dict) as this
  // store's dict, for its first write.
  void Own(PyObject* own) noexcept {
    borrowed_ = false;
    dict_.store(own, std::memory_order_release);
  }

 private:
  std::atomic<PyObject*> dict_;
  bool borrowed_;
};

// Calls value.close() if it has one (errors to sys.unraisablehook). Requires
// an attached thread state.
void CloseValue(PyObject* value);

// Called once at import, before any PyState exists: -1 with a Python error
// set on failure.
int InitPyState();

// The slot holding each thread's PyState. Never destroyed: destroying a Slot
// closes every thread's value on the destroying thread (core/slot.h), and at
// process exit, after Py_Finalize, no PyState may be touched. Daemon threads
// still holding one keep it to their own end.
union ImmortalPyStateSlot {
  ImmortalPyStateSlot() : slot() {}
  ~ImmortalPyStateSlot() {}  // leaves `slot` alone
  tls::Slot<PyState> slot;
};
extern ImmortalPyStateSlot g_py_state_storage;
inline tls::Slot<PyState>& PyStates() { return g_py_state_storage.slot; }

// The calling thread's PyState, created (with its thread-end hook armed) if
// missing. Returns nullptr with a Python error set on failure. Requires the GIL.
// Creating it may run Python code (the garbage collector): if that code made
// the thread's PyState meanwhile, that one is returned, never replaced.
PyState* NewPyState();

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_PY_STATE_H_
