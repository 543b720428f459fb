/* The floor for Python `tls.get` / `tls.set`: the least a C
 * extension can do for a per-thread key/value store. One dict per thread in a
 * C thread_local (initial-exec: a direct %fs-relative load), and get/set doing
 * exactly the dict operation, nothing else: no argument count beyond what
 * METH_O gives, no store reset, tasks or exit handling. The dict of a thread
 * is never freed (the benchmark uses it on one thread).
 *
 *   get(key, /)         the value under key, or None
 *   set(key, value, /)  stores value under key
 *   get_kw(key, /, default=None)  get with tls.get's signature (METH_FASTCALL
 *                       | METH_KEYWORDS, not METH_O): what CPython's call of
 *                       such a function costs over get's (an untargeted row)
 *
 * Benchmark-only: built by //benchmarks/floor_ext, never shipped. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static _Thread_local PyObject* t_dict __attribute__((tls_model("initial-exec")));

static PyObject* floor_get(PyObject* module, PyObject* key) {
  (void)module;
  PyObject* dict = t_dict;
  if (dict != NULL) {
    PyObject* value = PyDict_GetItemWithError(dict, key); /* borrowed */
    if (value != NULL) {
      Py_INCREF(value);
      return value;
    }
    if (PyErr_Occurred()) return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject* floor_get_kw(PyObject* module, PyObject* const* args, Py_ssize_t nargs,
                              PyObject* kwnames) {
  (void)module;
  PyObject* fallback = nargs == 2 ? args[1] : Py_None;
  if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0) {
    if (nargs != 1 || PyTuple_GET_SIZE(kwnames) != 1) { /* the name is not checked: a floor */
      PyErr_SetString(PyExc_TypeError, "get_kw(key, /, default=None)");
      return NULL;
    }
    fallback = args[1];
  } else if (nargs < 1 || nargs > 2) {
    PyErr_SetString(PyExc_TypeError, "get_kw() takes 1 or 2 arguments");
    return NULL;
  }
  PyObject* dict = t_dict;
  if (dict != NULL) {
    PyObject* value = PyDict_GetItemWithError(dict, args[0]); /* borrowed */
    if (value != NULL) {
      Py_INCREF(value);
      return value;
    }
    if (PyErr_Occurred()) return NULL;
  }
  Py_INCREF(fallback);
  return fallback;
}

static PyObject* floor_set(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  (void)module;
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "set() takes exactly 2 arguments");
    return NULL;
  }
  PyObject* dict = t_dict;
  if (dict == NULL && (dict = t_dict = PyDict_New()) == NULL) return NULL;
  if (PyDict_SetItem(dict, args[0], args[1]) < 0) return NULL;
  Py_RETURN_NONE;
}

static PyMethodDef floor_methods[] = {
    {"get", (PyCFunction)floor_get, METH_O, "get(key, /): the value under key, or None."},
    {"get_kw", (PyCFunction)(void (*)(void))floor_get_kw, METH_FASTCALL | METH_KEYWORDS,
     "get_kw(key, /, default=None): the value under key, or default."},
    {"set", (PyCFunction)(void (*)(void))floor_set, METH_FASTCALL,
     "set(key, value, /): stores value under key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef floor_module = {
    PyModuleDef_HEAD_INIT,
    "tls_floor",
    "Benchmark floor: a per-thread dict in a C thread_local (not shipped).",
    -1,
    floor_methods,
};

PyMODINIT_FUNC PyInit_tls_floor(void) {
  PyObject* module = PyModule_Create(&floor_module);
  /* The CPython it was built for, so a benchmark run by another one can tell. */
  if (module != NULL && PyModule_AddIntConstant(module, "built_for", PY_VERSION_HEX >> 16) < 0) {
    Py_DECREF(module);
    return NULL;
  }
  return module;
}
