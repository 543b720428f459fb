// File: bindings/python_access.h
//
// Exit-safe access to Python from code the engine may run anywhere: a value's
// close, an AtExit handler, a destructor, the error handler. The engine runs
// these on the thread that owns them, but not always from Python: the native
// thread-exit hook, the main thread's exit() after Py_Finalize.
//
// Three hazards, and the rule for each:
//
//  1. Taking the GIL once finalization has begun kills or hangs the thread
//     (CPython #124619, gh-87135). So: Python not initialized, or finalizing:
//     do not touch Python; the caller skips the call and leaks its references
//     (the process is ending). Otherwise take the GIL if this thread does not
//     hold it.
//
//  2. "Does this thread hold the GIL?" is not PyGILState_Check(): once any
//     subinterpreter has existed, it answers 1 everywhere (3.11 and older).
//     HoldsGil() asks the thread state itself.
//
//  3. CPython ends a daemon thread that wakes up during finalization with
//     pthread_exit, from inside whatever Python code the thread was running:
//     a forced unwind (tls::embedder::ForcedUnwind, tls/embedder.h). It must pass through us: no
//     noexcept frame and no catch that swallows it. PythonCall::Run lets it
//     pass and marks the scope dead, so its destructor touches nothing of
//     Python (the thread no longer holds the GIL). Destructors are noexcept,
//     so a destructor never runs Python code: Python objects held by C++
//     objects are released through ReleaseLater and freed by DrainReleases,
//     which the binding calls when control is back in a plain Python call.
//
//  4. The thread-exit path of a thread whose Python state is already gone
//     (a value stored while CPython cleared the thread state) takes the GIL
//     from inside a C++ thread_local destructor, where a forced unwind cannot
//     pass. So such entries from outside Python are counted (OutsideEntry),
//     and the binding's atexit callback, which runs before finalization
//     begins, shuts the door and waits (GIL released) for those in flight:
//     none is left running Python when CPython starts ending threads.
//
// Example:
//   PythonCall py;
//   if (!py) return;          // leak: Python is gone or going
//   py.Run([&] { CallSomethingInPython(); });
#ifndef TLS_BINDINGS_PYTHON_ACCESS_H_
#define TLS_BINDINGS_PYTHON_ACCESS_H_

#include <Python.h>

#include <exception>
#include <new>

#include "tls/embedder.h"

namespace tls::bindings {

// True once interpreter finalization has begun (Python's atexit callbacks have
// already run by then).
inline bool PythonFinalizing() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

// The calling thread's current Python thread state, or nullptr; never fails.
// Before 3.12 this is the thread state holding the GIL, whichever thread's.
inline PyThreadState* CurrentThreadState() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#else
  return _PyThreadState_UncheckedGet();
#endif
}

// Whether the calling thread holds the GIL (through its own thread state).
// Compares pointers only: never reads a thread state that may be gone.
inline bool HoldsGil() noexcept {
  PyThreadState* current = CurrentThreadState();
#if PY_VERSION_HEX >= 0x030C0000
  return current != nullptr;  // a thread's own "current" is set only while it holds the GIL
#else
  return current != nullptr && current == PyGILState_GetThisThreadState();
#endif
}

// A scope in which Python may be called, if `*this` is true: the GIL is held
// (taken for the scope if needed) and the pending exception, if any, is saved
// and restored at scope end, so user code run from a deallocator or a handler
// cannot clobber it.
// Entering Python from a thread that holds no GIL (see 4.). Enter() returns
// false once the interpreter is shutting down; each true Enter() is paired
// with a Leave(). ShutDoorAndWait() is called once, from atexit, GIL held.
struct OutsideEntry {
  static bool Enter() noexcept;
  static void Leave() noexcept;
  static void ShutDoorAndWait() noexcept;
};

class PythonCall {
 public:
  PythonCall() noexcept {
    // Finalizing first: an atomic read in 3.13t, set for good once finalization
    // begins; Py_IsInitialized() reads a plain int that _Py_Finalize writes
    // (a data race TSan reported on a daemon thread woken at exit).
    if (PythonFinalizing() || !Py_IsInitialized()) return;
    if (!HoldsGil()) {
      if (!OutsideEntry::Enter()) return;
      gil_ = PyGILState_Ensure();
      acquired_ = true;
    }
    usable_ = true;
    PyErr_Fetch(&type_, &value_, &traceback_);
  }
  ~PythonCall() {
    if (!usable_ || ended_) return;  // ended: this thread no longer holds the GIL
    PyErr_Restore(type_, value_, traceback_);
    if (acquired_) {
      PyGILState_Release(gil_);
      OutsideEntry::Leave();
    }
  }
  PythonCall(const PythonCall&) = delete;
  PythonCall& operator=(const PythonCall&) = delete;

  // Whether Python may be called in this scope.
  explicit operator bool() const noexcept { return usable_; }
  // Whether this scope took the GIL (the caller was not running Python).
  bool acquired_gil() const noexcept { return acquired_; }

  // Runs f, which calls Python; lets a forced unwind out of it pass (see 3.).
  template <class F>
  TLS_EMBEDDER_CATCHES_FORCED_UNWIND void Run(F&& f) {
    try {
      f();
    } catch (const tls::embedder::ForcedUnwind&) {
      ended_ = true;
      throw;
    }
  }

 private:
  bool usable_ = false;
  bool acquired_ = false;
  bool ended_ = false;
  PyGILState_STATE gil_{};
  PyObject* type_ = nullptr;
  PyObject* value_ = nullptr;
  PyObject* traceback_ = nullptr;
};

// Releases `object` (a strong reference) later, from DrainReleases: for
// destructors, which must not run Python code (see 3.). Requires the GIL.
void ReleaseLater(PyObject* object) noexcept;

// Releases what ReleaseLater collected on this thread (their deallocators may
// run any Python code, tls included). Call it with the GIL held, from a plain
// call out of Python (never under a noexcept frame).
void DrainReleases();

// Releases `object` from a destructor: at once if this scope took the GIL (no
// Python code of this thread is on the stack: the native exit path), else
// through ReleaseLater.
void ReleaseFromDestructor(PyObject* object) noexcept;

// Releases `object` (a strong reference) from any thread, with or without
// the GIL or a thread state, without blocking on the GIL and without running
// Python code here: it is queued, and dropped by a pending call (the main
// thread, at its next bytecode boundary) or by the next DrainReleases on any
// thread, whichever comes first. Left unreleased once finalization has begun.
// For references that C++ code outside the binding drops
// (tls::python::Object, tls/python.h).
void ReleaseFromAnywhere(PyObject* object) noexcept;

// ReleaseFromDestructor for a dict of the binding's own: released at once also
// when it is empty (freeing it runs no Python code), so no DrainReleases is
// owed for it.
void ReleaseDictFromDestructor(PyObject* dict) noexcept;

// Runs f (an engine call made for Python code), turning a C++ exception into
// a Python one: nullptr with the error set, else None (a new reference). A
// forced unwind is no std::exception: it passes, as it must (above).
template <class F>
PyObject* CallEngine(F&& f) {
  try {
    f();
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());  // as pybind11 translated it
    return nullptr;
  }
  Py_RETURN_NONE;
}

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_PYTHON_ACCESS_H_
