// File: bindings/python_access.h
//
// Exit-safe access to Python from code the engine may run anywhere: a value's
// close, an AtExit handler, a destructor. The engine runs these on the thread
// that owns them, but not always from Python: tls::Reset() called by C++ with
// the GIL released, the native thread-exit hook, the main thread's exit()
// after Py_Finalize. Taking the GIL there is unsafe once finalization has
// begun (PyGILState_Ensure kills or hangs the thread, CPython #124619,
// gh-87135), so the rule is:
//
//   - Python not initialized, or finalizing: do not touch Python at all; the
//     caller skips the call and leaks its references (the process is ending);
//   - the GIL is held by this thread: go ahead;
//   - otherwise (Python alive, GIL not held): take the GIL for the scope.
//
// Example:
//   PythonAccess py;
//   if (!py) return;          // leak: Python is gone or going
//   Py_DECREF(object_);
#ifndef TLS_BINDINGS_PYTHON_ACCESS_H_
#define TLS_BINDINGS_PYTHON_ACCESS_H_

#include <Python.h>

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
inline PyThreadState* CurrentThreadState() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#else
  return _PyThreadState_UncheckedGet();
#endif
}

class PythonAccess {
 public:
  PythonAccess() noexcept {
    if (!Py_IsInitialized() || PythonFinalizing()) return;
    usable_ = true;
    if (PyGILState_Check()) return;
    gil_ = PyGILState_Ensure();
    acquired_ = true;
  }
  ~PythonAccess() {
    if (acquired_) PyGILState_Release(gil_);
  }
  PythonAccess(const PythonAccess&) = delete;
  PythonAccess& operator=(const PythonAccess&) = delete;

  // Whether Python may be called in this scope.
  explicit operator bool() const noexcept { return usable_; }

 private:
  bool usable_ = false;
  bool acquired_ = false;
  PyGILState_STATE gil_{};
};

// Saves the pending Python exception (if any) and restores it at scope end,
// so user code run from a deallocator or a handler cannot clobber it.
class SavedError {
 public:
  SavedError() noexcept { PyErr_Fetch(&type_, &value_, &traceback_); }
  ~SavedError() { PyErr_Restore(type_, value_, traceback_); }
  SavedError(const SavedError&) = delete;
  SavedError& operator=(const SavedError&) = delete;

 private:
  PyObject* type_;
  PyObject* value_;
  PyObject* traceback_;
};

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_PYTHON_ACCESS_H_
