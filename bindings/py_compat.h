// File: bindings/py_compat.h
//
// The C API calls the binding needs, spelled once for every CPython it
// supports (3.9-3.15, and the free-threaded 3.13t). Where a newer CPython
// added a safer call, older ones get the same meaning from what they have.
#ifndef TLS_BINDINGS_PY_COMPAT_H_
#define TLS_BINDINGS_PY_COMPAT_H_

#include <Python.h>

namespace tls::bindings {

// dict[key] as a new reference in *result: 1 found, 0 missing (*result is
// nullptr), -1 with an error set. PyDict_GetItemRef (3.13+) takes the
// reference under the dict's own lock, the only safe read of a dict that other
// threads write without a GIL; before 3.13 the GIL makes the borrowed read
// plus Py_INCREF the same thing. Also safe against the key's own __eq__ (or
// the caller's next call) freeing the value: the reference is taken first.
inline int DictGetItemRef(PyObject* dict, PyObject* key, PyObject** result) {
#if PY_VERSION_HEX >= 0x030D0000
  return PyDict_GetItemRef(dict, key, result);
#else
  PyObject* value = PyDict_GetItemWithError(dict, key);  // borrowed
  Py_XINCREF(value);
  *result = value;
  return value != nullptr ? 1 : PyErr_Occurred() != nullptr ? -1 : 0;
#endif
}

// `name` looked up along the type's MRO (what a class attribute lookup finds
// before the instance), as a new reference, or nullptr with no error set if
// no class has it. A free-threaded build's types change under other threads,
// so the reference is taken inside the lookup there (_PyType_LookupRef,
// 3.13+); with a GIL the borrowed result plus Py_INCREF is the same.
inline PyObject* TypeLookupRef(PyTypeObject* type, PyObject* name) {
#ifdef Py_GIL_DISABLED
  return _PyType_LookupRef(type, name);
#else
  PyObject* found = _PyType_Lookup(type, name);  // borrowed
  Py_XINCREF(found);
  return found;
#endif
}

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_PY_COMPAT_H_
