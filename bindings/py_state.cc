#include "bindings/py_state.h"

#include <new>
#include <unordered_set>

#include "bindings/python_access.h"
#include "bindings/tasks.h"
#include "bindings/thread_end.h"

namespace tls::bindings {

tls::Slot<PyState> g_py_state;

PyState::~PyState() { ReleaseFromDestructor(dict_); }

void PyState::Close() {
  PythonCall py;
  if (!py) return;
  py.Run([&] {
    // Snapshot the values: a close() may store into (or clear) the dict.
    PyObject* values = PyDict_Values(dict_);
    if (values == nullptr) {
      PyErr_WriteUnraisable(dict_);
      return;
    }
    std::unordered_set<PyObject*> closed;  // `values` keeps each one alive
    CapturedObjects captured;              // given to a task: not its to close
    for (Py_ssize_t i = 0, n = PyList_GET_SIZE(values); i < n; ++i) {
      PyObject* value = PyList_GET_ITEM(values, i);
      if (!closed.insert(value).second) continue;  // same object under two keys
      if (captured.Contains(value)) continue;
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
  });
}

PyState* NewPyState() {
  if (EnsureThreadEndHook() < 0) return nullptr;
  // Allocating the dict may run the garbage collector, whose __del__ calls may
  // store values (making this thread's PyState): keep theirs.
  PyObject* dict = PyDict_New();
  if (dict == nullptr) return nullptr;
  if (PyState* made_meanwhile = g_py_state.Get()) {
    Py_DECREF(dict);
    return made_meanwhile;
  }
  PyState* state = nullptr;
  try {
    state = &g_py_state.Emplace(dict);  // runs no Python code
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_Format(PyExc_RuntimeError, "tls: cannot create thread state: %s", e.what());
  }
  Py_DECREF(dict);  // the PyState holds its own reference
  return state;
}

}  // namespace tls::bindings
