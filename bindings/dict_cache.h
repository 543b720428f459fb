// File: bindings/dict_cache.h
//
// The calling thread's Python dict (its PyState's, py_state.h), cached where
// get/set reach it with one load: the binding's own thread_local, in the
// initial-exec TLS model (a %fs-relative load through one GOT entry). Without
// it each call asks the slot: a call into the engine, whose thread_local is
// reached through __tls_get_addr (-fPIC code is general-dynamic), then the
// dependent loads stub -> slots -> PyState -> dict.
//
// The rule that keeps it right: the cache holds a dict only while that dict's
// PyState is the calling thread's PyStates() value, so a cached read is what
// PyStates().Get()->dict() would give. The ways a PyState stops being it, and
// where each clears the cache before Python code can run on the thread:
//   - the engine takes it out to close it (tls.reset(), thread end, a task's
//     end): PyState::Close, first thing. Between the engine taking the slot
//     values out and that Close only the engine and C++ values' closes run
//     (the binding stores every Python value in the dict);
//   - the engine destroys it unclosed (unload(), the exit giving up): ~PyState,
//     if on this thread; unload() also clears it itself, before and after,
//     since its PyState may be destroyed later, elsewhere;
//   - a task hides it (Snapshot.run): cleared as the task begins and after it
//     ended (bindings/tasks.cc).
//   - a task's store begins borrowing its snapshot's dict (py_state.h,
//     PyState::Borrow), which must never be written: a borrowed dict is never
//     cached (DictFromSlot reads it each time); the task's first write makes
//     its own copy (fast_calls.cc, OwnDict) and caches that.
// reset(), unload() and the early thread exit (lifecycle.cc, thread_end.cc)
// clear it again when the engine returns, whatever happened inside.
// Only NewPyState and CurrentDict's slow path fill it. The test build
// (TLS_TESTING_HOOKS) checks every cached read against the slot and aborts
// on a stale one, so the whole Python suite tests this rule.
//
// Initial-exec in a dlopen'ed module: the module is marked STATIC_TLS, and
// glibc places its whole TLS block (105 bytes: this pointer and the engine's
// thread_locals) in the static TLS surplus it keeps for such modules (at
// least 1,664 bytes in glibc 2.36, whatever glibc.rtld.optional_static_tls
// says), initialised in every thread already running. So importing tls after
// threads started works (tests/python/late_import_test.py); the import would
// fail ("cannot allocate memory in static TLS block") only if other modules
// had used up the surplus.
#ifndef TLS_BINDINGS_DICT_CACHE_H_
#define TLS_BINDINGS_DICT_CACHE_H_

#include <Python.h>

namespace tls::bindings {

// The cached dict (borrowed), or nullptr: not known, ask the slot.
extern thread_local constinit PyObject* t_cached_dict [[gnu::tls_model("initial-exec")]];

#ifdef TLS_TESTING_HOOKS
// Aborts, naming the mismatch, unless `dict` is the slot's current dict.
void CheckCachedDict(PyObject* dict) noexcept;
#endif

// The calling thread's dict (borrowed) if cached, else nullptr.
inline PyObject* CachedDict() noexcept {
  PyObject* dict = t_cached_dict;
#ifdef TLS_TESTING_HOOKS
  if (dict != nullptr) CheckCachedDict(dict);
#endif
  return dict;
}

// The slow path of CurrentDict: asks the slot, and caches its answer.
PyObject* DictFromSlot() noexcept;

// The calling thread's dict (borrowed), or nullptr if it has no PyState.
// Never creates one.
inline PyObject* CurrentDict() noexcept {
  if (PyObject* dict = CachedDict()) [[likely]]
    return dict;
  return DictFromSlot();
}

// Records `dict`, the dict of the PyState just stored in the calling thread's slot.
inline void CacheDict(PyObject* dict) noexcept { t_cached_dict = dict; }

// Forgets the cached dict: the thread's PyState changed or may have.
inline void ForgetCachedDict() noexcept { t_cached_dict = nullptr; }

// Forgets the cached dict if it is `dict` (a PyState being destroyed).
inline void ForgetCachedDict(PyObject* dict) noexcept {
  if (t_cached_dict == dict) t_cached_dict = nullptr;
}

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_DICT_CACHE_H_
