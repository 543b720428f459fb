// File: bindings/introspection.h
//
// The raw halves of tls.threads() and tls.stats() (python/tls/_introspection.py
// makes the public objects): what every live thread and open task holds,
// keys and counts only, read from the calling thread (core/threads.h).
//
// How another thread's Python store is read. The C++ side comes from
// tls::ListThreads / tls::GetStats. The Python side is a walk of PyStates()
// (Slot::ForEachThread) whose visitor only copies the dict pointer and takes a
// reference to it (Py_INCREF): the caller holds the GIL, and an owner changes
// its dict or its reference count only while holding the GIL, so that is
// safe, and it runs no Python code (which could wait for a thread the walk
// holds off). Everything else (the key lists, the Python objects returned)
// is made after the walk, still under the GIL, and then the references go.
// A walk holds off only its visited owners' write sections, which never wait
// for the GIL, so it cannot deadlock with a thread that wants the GIL.
//
// Only the main interpreter loads the module (module.cc), so every store is
// the main interpreter's. During finalization these are ordinary calls made
// by a thread that holds the GIL; they never take it themselves.
#ifndef TLS_BINDINGS_INTROSPECTION_H_
#define TLS_BINDINGS_INTROSPECTION_H_

#include <Python.h>

namespace tls::bindings {

// Adds _threads() and _stats() (not API) to `module`.
// Returns 0, or -1 with a Python error set.
int RegisterIntrospection(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_INTROSPECTION_H_
