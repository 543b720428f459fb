// File: bindings/lifecycle.h
//
// reset, unload and at_exit: the calls off the hot path, through the C API
// (METH_NOARGS, METH_O) like the rest of the module (bindings/BUILD).
// Each is the engine's own call (tls::Reset/Unload/AtExit), so C++ values and
// handlers of the thread take part exactly as the C++ API says.
#ifndef TLS_BINDINGS_LIFECYCLE_H_
#define TLS_BINDINGS_LIFECYCLE_H_

#include <pybind11/pybind11.h>

namespace tls::bindings {

void RegisterLifecycleBindings(pybind11::module_& m);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_LIFECYCLE_H_
