// File: bindings/thread_end.h
//
// Catching the end of a Python thread, so its exit sequence runs while the
// thread can still run Python code as itself. Three hooks, by kind of thread:
//
//  - threading.Thread (pool workers included), Python 3.11+: the first time a
//    thread gets Python state, its Thread object gets a `_delete` wrapper in
//    its instance dict. _bootstrap_inner calls `self._delete()` last, after
//    run() and the excepthook, while current_thread() is still the Thread and
//    its threading.local data is intact; the wrapper runs the exit there.
//  - every thread (the fallback: _thread threads, native threads entering
//    Python, threading.Thread on 3.9/3.10, and anything set after the wrapper
//    ran): a sentinel object in the PyThreadState dict. CPython clears that
//    dict when it clears the thread state (at the end of a _thread thread, in
//    PyGILState_Release for a native thread), still holding the GIL, so the
//    sentinel's deallocator runs the exit (RunThreadExit(kEarly)) as normal
//    Python code on its own thread, though `threading` has let go of it.
//  - the main thread: its dict is only cleared during finalization, too
//    late; its exit runs from an `atexit` callback registered at import, and
//    again by atexit._clear() (a 3.13 multiprocessing fork or forkserver child
//    clears atexit, then runs what is registered after the clear).
//
// The sentinel ignores a clear that is not its own thread's: at finalization
// (other threads' states are cleared from the main thread) and in a fork child
// (the threads that did not fork are cleared by the forking one).
#ifndef TLS_BINDINGS_THREAD_END_H_
#define TLS_BINDINGS_THREAD_END_H_

#include <Python.h>

namespace tls::bindings {

// Arms the thread-end hook for the calling thread's current Python thread
// state (cheap after the first call). Returns -1 with a Python error set on
// failure. Requires the GIL.
int EnsureThreadEndHook();

// Creates the sentinel type, adds _run_main_thread_exit to `module` and
// registers it with atexit (and again after each atexit._clear()).
// Returns 0, or -1 with a Python error set.
int RegisterThreadEndBindings(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_THREAD_END_H_
