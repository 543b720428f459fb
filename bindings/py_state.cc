#include "bindings/py_state.h"

#include <new>

#include "bindings/dict_cache.h"
#include "bindings/python_access.h"
#include "bindings/snapshot_holds.h"
#include "bindings/tasks.h"
#include "bindings/thread_end.h"
#include "tls/embedder.h"

namespace tls::bindings {

ImmortalPyStateSlot g_py_state_storage;

namespace {

// "close", interned at import (InitPyState): a function-local static would be
// initialised under a C++ guard that other threads block on while the first
// runs Python code, which can deadlock a free-threaded build's stop-the-world.
PyObject* g_close_name = nullptr;

// Looks up value.close: 1 with a new reference in *close, 0 if there is none
// (no AttributeError is raised and cleared: a task ends with this lookup on
// each value it set, and most values are not closers), -1 on another error.
int LookUpClose(PyObject* value, PyObject** close) {
  PyObject* const name = g_close_name;
#if PY_VERSION_HEX >= 0x030D0000
  return PyObject_GetOptionalAttr(value, name, close);
#else
  return _PyObject_LookupAttr(value, name, close);
#endif
}

}  // namespace

int InitPyState() {
  g_close_name = PyUnicode_InternFromString("close");  // kept for good
  return g_close_name == nullptr ? -1 : 0;
}

PyState::~PyState() {
  PyObject* dict = dict_.load(std::memory_order_relaxed);
  ForgetCachedDict(dict);
  if (borrowed_) return;  // a snapshot's: it holds no reference to it
  // After Close (a reset, an end) the dict is empty: freed at once.
  ReleaseDictFromDestructor(dict);
}

void CloseValue(PyObject* value) {
  PyObject* close = nullptr;
  const int found = LookUpClose(value, &close);
  if (found < 0) PyErr_WriteUnraisable(value);
  if (found <= 0) return;  // not a closer, or its lookup failed
  PyObject* result = PyObject_CallNoArgs(close);
  if (result == nullptr) {
    PyErr_WriteUnraisable(close);
  } else {
    Py_DECREF(result);
  }
  Py_DECREF(close);
}

void PyState::Close() {
  ForgetCachedDict();  // the engine took this PyState out of the thread's slot
  // A task that never wrote: every value was given to it, none is its to close.
  if (borrowed_) return;
  PyObject* const dict = this->dict();  // its own: only this thread changes it
  // The engine's round: whether it is an end (else Reset: explicit, at once),
  // and each distinct object closed once.
  tls::embedder::CloseRound round;
  PythonCall py;
  if (!py) return;
  py.Run([&] {
    // Most stores hold only built-in values (str, int, ...), which nothing
    // closes: then there is nothing to copy or claim.
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    bool closers = false;
    while (!closers && PyDict_Next(dict, &pos, &key, &value)) closers = MayHaveClose(value);
    if (!closers) {
      PyDict_Clear(dict);
      return;
    }
    // Snapshot the values: a close() may store into (or clear) the dict.
    PyObject* values = PyDict_Values(dict);
    if (values == nullptr) {
      PyErr_WriteUnraisable(dict);
      return;
    }
    CapturedObjects captured;  // given to a task: not its to close
    for (Py_ssize_t i = 0, n = PyList_GET_SIZE(values); i < n; ++i) {
      PyObject* value = PyList_GET_ITEM(values, i);
      if (!MayHaveClose(value)) continue;  // a str, an int...: nothing to close or defer
      if (!round.Claim(value)) continue;   // same object under two keys
      if (captured.Contains(value)) continue;
      if (!round.at_end()) {
        ClosingNow(value);  // so no snapshot's release closes it again
      } else if (LeaveCloseToSnapshots(value, captured.StrandedHolds(value))) {
        continue;  // closed by the last live snapshot's release instead
      }
      CloseValue(value);
    }
    PyDict_Clear(dict);
    Py_DECREF(values);
  });
}

PyState* NewPyState() {
  if (EnsureThreadEndHook() < 0) return nullptr;
  // Allocating the dict may run the garbage collector, whose __del__ calls may
  // store values (making this thread's PyState): keep theirs.
  PyObject* dict = PyDict_New();
  if (dict == nullptr) return nullptr;
  if (PyState* made_meanwhile = PyStates().Get()) {
    Py_DECREF(dict);
    if (!made_meanwhile->borrowed()) CacheDict(made_meanwhile->dict());
    return made_meanwhile;
  }
  PyState* state = nullptr;
  try {
    state = &PyStates().Emplace(dict);  // runs no Python code
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_Format(PyExc_RuntimeError, "tls: cannot create thread state: %s", e.what());
  }
  Py_DECREF(dict);  // the PyState holds its own reference
  if (state != nullptr) CacheDict(state->dict());
  return state;
}

}  // namespace tls::bindings
