// File: bindings/fast_calls.h
//
// The hot calls, get/set/delete/id, as METH_FASTCALL functions: a generic
// dispatch (pybind11's costs ~55 ns a call) is more than a threading.local
// attribute read. get(key) and, for a str key, set(key, value) have an inline
// path: the argument count checked in place, the thread's dict read from the
// binding's own cache (dict_cache.h); the other forms and the errors are out
// of line. The benchmark floor rows compare them with a minimal C extension
// (benchmarks/floor_ext).
#ifndef TLS_BINDINGS_FAST_CALLS_H_
#define TLS_BINDINGS_FAST_CALLS_H_

#include <Python.h>

namespace tls::bindings {

// Adds get/set/delete/id to `module`.
// Returns 0, or -1 with a Python error set.
int RegisterFastCalls(PyObject* module);

// The calling thread's (in a task: the task's) store, as get/set/delete use
// it, for other areas that keep values there (task_local.cc). Each holds the
// store meanwhile and follows set's rules when a key's code or a replaced
// value's __del__ resets it.
// StoreGet: the value under `key` as a new reference; nullptr with no error
// if missing, with an error on failure. Never creates the store.
PyObject* StoreGet(PyObject* key);
// StoreSet: stores `value` under `key`, creating the store if missing.
// 0, or -1 with an error set.
int StoreSet(PyObject* key, PyObject* value);
// StoreDelete: 1 removed (not closed), 0 missing, -1 with an error set.
int StoreDelete(PyObject* key);

// Sets the TypeError for a call with `nargs` arguments to `name`, a function
// taking min to max positional arguments, and returns nullptr. Out of line:
// the hot calls check their count inline.
[[gnu::cold, gnu::noinline]] PyObject* WrongArgCount(const char* name, Py_ssize_t nargs,
                                                     Py_ssize_t min, Py_ssize_t max);

// A METH_FASTCALL function (with or without METH_KEYWORDS) as the PyCFunction
// a PyMethodDef holds; CPython calls it back with its real signature.
template <class F>
PyCFunction Fast(F* f) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_FAST_CALLS_H_
