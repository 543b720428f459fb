// File: bindings/thread_end.h
//
// Catching the end of a Python thread. When a thread first gets Python state
// (a value or an at_exit handler), we put a sentinel object in its
// PyThreadState dict. CPython clears that dict when it clears the thread state:
// at the end of a threading.Thread / _thread thread, in PyGILState_Release for
// a native thread that entered Python. At that moment the thread still holds
// the GIL and its state is valid, so the sentinel's deallocator runs the
// thread's whole exit sequence early (tls::internal::RunThreadExit(kEarly)):
// Python handlers and closes run as normal Python code, on their own thread.
//
// The main thread's dict is only cleared during finalization, too late; its
// exit sequence runs from an `atexit` callback registered at import instead.
//
// The sentinel ignores a clear that is not its own thread's: at finalization
// (other threads' states are cleared from the main thread) and in a fork child
// (the threads that did not fork are cleared by the forking one).
#ifndef TLS_BINDINGS_THREAD_END_H_
#define TLS_BINDINGS_THREAD_END_H_

#include <pybind11/pybind11.h>

namespace tls::bindings {

// Arms the thread-end hook for the calling thread's current Python thread
// state (cheap after the first call). Returns -1 with a Python error set on
// failure. Requires the GIL.
int EnsureThreadEndHook() noexcept;

// Creates the sentinel type and registers the main thread's exit with atexit.
void RegisterThreadEndBindings(pybind11::module_& m);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_THREAD_END_H_
