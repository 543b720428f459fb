#include "bindings/py_state.h"

#include <new>
#include <unordered_set>

#include "bindings/python_access.h"
#include "bindings/thread_end.h"

namespace tls::bindings {

tls::Slot<PyState> g_py_state;

PyState::PyState() : dict_(PyDict_New()) {
  if (dict_ == nullptr) throw std::bad_alloc();
}

PyState::~PyState() {
  PythonAccess py;
  if (!py) return;  // finalizing or gone: leak rather than touch Python
  SavedError saved;
  Py_DECREF(dict_);
}

void PyState::Close() noexcept {
  PythonAccess py;
  if (!py) return;
  SavedError saved;
  // Snapshot the values: a close() may store into (or clear) the dict.
  PyObject* values = PyDict_Values(dict_);
  if (values == nullptr) {
    PyErr_WriteUnraisable(dict_);
    return;
  }
  std::unordered_set<PyObject*> closed;  // `values` keeps each one alive
  for (Py_ssize_t i = 0, n = PyList_GET_SIZE(values); i < n; ++i) {
    PyObject* value = PyList_GET_ITEM(values, i);
    if (!closed.insert(value).second) continue;  // same object under two keys
    PyObject* close = PyObject_GetAttrString(value, "close");
    if (close == nullptr) {
      if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();  // not a closer
      } else {
        PyErr_WriteUnraisable(value);
      }
      continue;
    }
    PyObject* result = PyObject_CallNoArgs(close);
    if (result == nullptr) {
      PyErr_WriteUnraisable(close);
    } else {
      Py_DECREF(result);
    }
    Py_DECREF(close);
  }
  PyDict_Clear(dict_);
  Py_DECREF(values);
}

PyState* NewPyState() noexcept {
  if (EnsureThreadEndHook() < 0) return nullptr;
  try {
    return &g_py_state.Emplace();
  } catch (const std::bad_alloc&) {
    if (!PyErr_Occurred()) PyErr_NoMemory();
  } catch (...) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "tls: cannot create thread state");
  }
  return nullptr;
}

}  // namespace tls::bindings
