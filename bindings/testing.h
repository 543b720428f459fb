// File: bindings/testing.h
//
// `tls._tls._testing`: hooks for tests/python only, not API. They let a test
// see the engine from the C++ side of the same thread (tls::ID(), C++ values
// and handlers) and run Python from a thread Python did not create.
#ifndef TLS_BINDINGS_TESTING_H_
#define TLS_BINDINGS_TESTING_H_

#include <Python.h>

namespace tls::bindings {

// Adds the `_testing` submodule to `module` (pybind11: test-only code).
// Returns 0, or -1 with a Python error set.
int RegisterTestingBindings(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_TESTING_H_
