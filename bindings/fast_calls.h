// File: bindings/fast_calls.h
//
// The hot calls, get/set/delete/id, as METH_FASTCALL functions added to the
// module directly: pybind11's generic dispatch costs ~55 ns a call, more than
// a threading.local attribute read, so these skip it (~18 ns per raw call).
#ifndef TLS_BINDINGS_FAST_CALLS_H_
#define TLS_BINDINGS_FAST_CALLS_H_

#include <pybind11/pybind11.h>

namespace tls::bindings {

void RegisterFastCalls(pybind11::module_& m);

// A METH_FASTCALL function (with or without METH_KEYWORDS) as the PyCFunction
// a PyMethodDef holds; CPython calls it back with its real signature.
template <class F>
PyCFunction Fast(F* f) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_FAST_CALLS_H_
