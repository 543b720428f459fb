// File: bindings/lifecycle.h
//
// reset, unload and at_exit: the calls off the hot path, through the C API
// (METH_NOARGS, METH_O) like the rest of the module (bindings/BUILD).
// Each is the engine's own call (tls::Reset/Unload/AtExit), so C++ values and
// handlers of the thread take part exactly as the C++ API says.
#ifndef TLS_BINDINGS_LIFECYCLE_H_
#define TLS_BINDINGS_LIFECYCLE_H_

#include <Python.h>

namespace tls::bindings {

// Adds reset/unload/at_exit to `module` and routes the engine's errors to
// Python (tls::SetErrorHandler).
// Returns 0, or -1 with a Python error set.
int RegisterLifecycleBindings(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_LIFECYCLE_H_
