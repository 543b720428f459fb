#include "bindings/fast_calls.h"

#include <exception>

#include "bindings/dict_cache.h"
#include "bindings/py_state.h"
#include "tls/tls.h"

#if PY_VERSION_HEX >= 0x030D0000
// Declared by 3.9-3.12's public headers; 3.13 still exports it (PyAPI_FUNC)
// but declares it in its internal headers only.
extern "C" int _PyDict_SetItem_KnownHash(PyObject* mp, PyObject* key, PyObject* item,
                                         Py_hash_t hash);
#endif

namespace tls::bindings {

PyObject* WrongArgCount(const char* name, Py_ssize_t nargs, Py_ssize_t min, Py_ssize_t max) {
  if (min == max) {
    PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd argument%s (%zd given)", name, min,
                 min == 1 ? "" : "s", nargs);
  } else {
    PyErr_Format(PyExc_TypeError, "%s() takes from %zd to %zd arguments (%zd given)", name, min,
                 max, nargs);
  }
  return nullptr;
}

namespace {

// The dict is held for the duration of each lookup or store: a key's
// __hash__/__eq__ or a replaced value's __del__ may run tls.reset()/unload(),
// which frees the thread's PyState. The dict comes from the thread's cache
// (dict_cache.h), which those clear.

// Whether get()'s keywords are just `default`, with the key alone before it;
// else sets the TypeError Python's own functions give.
bool DefaultIsTheOnlyKeyword(Py_ssize_t nargs, PyObject* kwnames) {
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, i);
    if (PyUnicode_CompareWithASCIIString(name, "default") != 0) {
      PyErr_Format(PyExc_TypeError, "get() got an unexpected keyword argument '%U'", name);
      return false;
    }
  }
  if (nargs != 1) {
    PyErr_SetString(PyExc_TypeError, nargs > 1 ? "get() got multiple values for argument 'default'"
                                               : "get() missing required argument 'key' (pos 1)");
    return false;
  }
  return true;
}

// dict[key] if there, else `fallback` (which may be nullptr: then a miss is
// nullptr with no error set): a new reference, or nullptr with the error set
// (an unhashable key, or __eq__ raised).
inline PyObject* LookUp(PyObject* dict, PyObject* key, PyObject* fallback) {
  Py_INCREF(dict);
  PyObject* value = PyDict_GetItemWithError(dict, key);  // borrowed
  if (value != nullptr) [[likely]] {
    Py_INCREF(value);  // before the dict may go
    Py_DECREF(dict);
    return value;
  }
  Py_DECREF(dict);
  if (PyErr_Occurred()) return nullptr;
  Py_XINCREF(fallback);
  return fallback;
}

// get() but for its common form, `get(key)` on a thread whose dict is cached.
[[gnu::noinline]] PyObject* GetSlowly(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* fallback = nargs == 2 ? args[1] : Py_None;
  if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) != 0) {
    if (!DefaultIsTheOnlyKeyword(nargs, kwnames)) return nullptr;
    fallback = args[1];  // keyword values follow the positional ones
  }
  if (nargs < 1 || nargs > 2) return WrongArgCount("get", nargs, 1, 2);
  PyObject* key = args[0];
  if (PyObject* dict = CurrentDict()) return LookUp(dict, key, fallback);
  if (PyObject_Hash(key) == -1) return nullptr;  // same TypeError for an unhashable key
  Py_INCREF(fallback);
  return fallback;
}

// get(key, /, default=None): `default` by position or keyword.
PyObject* Get(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (nargs == 1 && kwnames == nullptr) [[likely]] {
    if (PyObject* dict = CachedDict()) [[likely]]
      return LookUp(dict, args[0], Py_None);
  }
  return GetSlowly(args, nargs, kwnames);
}

// The str's cached hash, or -1 if `key` is not exactly a str or its hash was
// never taken.
// The hash field is written by whichever thread hashes the str first: a
// free-threaded build reads it atomically (as CPython's own accessor, public
// from 3.15, does); with a GIL a plain read is what CPython itself does.
inline Py_hash_t CachedStrHash(PyObject* key) noexcept {
  if (!PyUnicode_CheckExact(key)) return -1;
#if PY_VERSION_HEX >= 0x030F0000
  return PyUnstable_Unicode_GET_CACHED_HASH(key);
#elif defined(Py_GIL_DISABLED)
  return __atomic_load_n(&reinterpret_cast<PyASCIIObject*>(key)->hash, __ATOMIC_RELAXED);
#else
  return reinterpret_cast<PyASCIIObject*>(key)->hash;
#endif
}

// The calling thread's dict to write into, its own, cached: a task's
// borrowed view of its snapshot (py_state.h, PyState::Borrow) is copied first,
// its first write; with `create`, a thread without a store gets one.
// 1 with *dict set, 0 if there is no store (and `create` is false), -1 with
// an error set. The copy may run the collector, and tls code in it: what it
// did to the store is looked at again before the copy is taken.
int OwnDict(bool create, PyObject** dict) {
  if ((*dict = CachedDict()) != nullptr) return 1;
  for (;;) {
    PyState* state = PyStates().Get();
    if (state == nullptr) {
      if (!create) return 0;
      state = NewPyState();  // may run the collector; a new store is never borrowed
      if (state == nullptr) return -1;
    }
    if (!state->borrowed()) {
      *dict = state->dict();
      CacheDict(*dict);
      return 1;
    }
    PyObject* copy = PyDict_Copy(state->dict());
    if (copy == nullptr) return -1;
    if (PyStates().Get() == state && state->borrowed()) {
      state->Own(copy);
      CacheDict(copy);
      *dict = copy;
      return 1;
    }
    Py_DECREF(copy);  // the store changed meanwhile: look again
  }
}

// Stores args[1] under args[0] (whose hash is `hash`) in `dict`, held
// meanwhile. Returns -1 with an error set, 0 if `dict` is still the thread's
// afterwards, 1 if the key's __eq__ or a replaced value's __del__ replaced the
// thread's store (held: no other dict can have taken its address).
inline int StoreIn(PyObject* dict, PyObject* const* args, Py_hash_t hash) {
  Py_INCREF(dict);
  int rc = _PyDict_SetItem_KnownHash(dict, args[0], args[1], hash);
  bool still_current = CurrentDict() == dict;
  Py_DECREF(dict);
  return rc < 0 ? -1 : still_current ? 0 : 1;
}

// As a dict does, set keeps the value when the key's own code (__hash__,
// __eq__) resets or unloads the store: the hash is taken before the store is,
// and if __eq__ (run on a hash collision) replaced the store meanwhile, the
// value goes into the new one too (an empty store runs no key code, so this
// ends). `attempts`: stores left to try.
[[gnu::noinline]] PyObject* SetSlowly(PyObject* const* args, int attempts) {
  Py_hash_t hash = CachedStrHash(args[0]);
  if (hash == -1 && (hash = PyObject_Hash(args[0])) == -1) return nullptr;
  for (; attempts > 0; --attempts) {
    PyObject* dict = nullptr;  // made (or copied) before the store is taken: may run the collector
    if (OwnDict(/*create=*/true, &dict) < 0) return nullptr;
    int rc = StoreIn(dict, args, hash);
    if (rc < 0) return nullptr;
    if (rc == 0) break;
  }
  Py_RETURN_NONE;
}

// set(key, value, /). Inline: a str key (its hash taken) into the cached dict.
PyObject* Set(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) [[unlikely]]
    return WrongArgCount("set", nargs, 2, 2);
  constexpr int kAttempts = 4;
  Py_hash_t hash = CachedStrHash(args[0]);
  PyObject* dict = CachedDict();
  if (hash == -1 || dict == nullptr) [[unlikely]]
    return SetSlowly(args, kAttempts);
  int rc = StoreIn(dict, args, hash);
  if (rc == 0) [[likely]]
    Py_RETURN_NONE;
  return rc < 0 ? nullptr : SetSlowly(args, kAttempts - 1);
}

PyObject* Delete(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 1) [[unlikely]]
    return WrongArgCount("delete", nargs, 1, 1);
  PyObject* key = args[0];
  PyObject* dict = CurrentDict();
  if (dict == nullptr) {
    if (PyObject_Hash(key) == -1) return nullptr;
    Py_RETURN_FALSE;
  }
  if (dict != CachedDict()) {  // a task's borrowed view: the task's own copy first
    const int found = PyDict_Contains(dict, key);
    if (found <= 0) {
      if (found < 0) return nullptr;
      Py_RETURN_FALSE;
    }
    const int own = OwnDict(/*create=*/false, &dict);  // the key's __eq__ may have reset it
    if (own < 0) return nullptr;
    if (own == 0) Py_RETURN_FALSE;
  }
  Py_INCREF(dict);
  int rc = PyDict_DelItem(dict, key);
  Py_DECREF(dict);
  if (rc == 0) Py_RETURN_TRUE;
  if (!PyErr_ExceptionMatches(PyExc_KeyError)) return nullptr;
  PyErr_Clear();
  Py_RETURN_FALSE;
}

PyObject* Id(PyObject*, PyObject* const*, Py_ssize_t nargs) {
  if (nargs != 0) return WrongArgCount("id", nargs, 0, 0);
  try {
    return PyLong_FromUnsignedLongLong(tls::ID());
  } catch (const std::exception&) {
    return PyErr_NoMemory();  // the only way ID() fails: allocating the stub
  }
}

// The "name(...)\n--\n\n" prefix gives each function a __text_signature__,
// so inspect.signature() works (tests/python/stubs_test.py relies on it).
PyMethodDef g_fast_methods[] = {
    {"get", Fast(&Get), METH_FASTCALL | METH_KEYWORDS,
     "get($module, key, /, default=None)\n--\n\n"
     "get returns the calling thread's value under `key`, or `default`.\n\n"
     "Never creates the thread's store. Raises TypeError for an unhashable key."},
    {"set", Fast(&Set), METH_FASTCALL,
     "set($module, key, value, /)\n--\n\n"
     "set stores `value` under `key` for the calling thread.\n\n"
     "Any hashable key (keys compare like dict keys); an unhashable key raises\n"
     "TypeError. Replacing a value does not close the old one."},
    {"delete", Fast(&Delete), METH_FASTCALL,
     "delete($module, key, /)\n--\n\n"
     "delete removes `key` without closing its value; returns whether it was there.\n\n"
     "A missing key is not an error. Never creates the thread's store."},
    {"id", Fast(&Id), METH_FASTCALL,
     "id($module, /)\n--\n\n"
     "id returns the calling thread's unique ID: an int > 0, never reused.\n\n"
     "The same number the C++ core's tls::ID() returns on this thread. Stable\n"
     "until unload() or the thread's end."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyObject* StoreGet(PyObject* key) {
  PyObject* dict = CurrentDict();
  return dict != nullptr ? LookUp(dict, key, /*fallback=*/nullptr) : nullptr;
}

int StoreSet(PyObject* key, PyObject* value) {
  PyObject* args[] = {key, value};
  PyObject* done = SetSlowly(args, 4);
  if (done == nullptr) return -1;
  Py_DECREF(done);
  return 0;
}

int StoreDelete(PyObject* key) {
  PyObject* args[] = {key};
  PyObject* removed = Delete(nullptr, args, 1);
  if (removed == nullptr) return -1;
  const int rc = removed == Py_True ? 1 : 0;
  Py_DECREF(removed);
  return rc;
}

int RegisterFastCalls(PyObject* module) { return PyModule_AddFunctions(module, g_fast_methods); }

}  // namespace tls::bindings
