#include "bindings/introspection.h"

#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings/local.h"
#include "bindings/py_state.h"
#include "tls/threads.h"

namespace tls::bindings {
namespace {

// CPython's thread ident is (unsigned long)pthread_self() (thread_pthread.h):
// threading.get_ident() on the thread a ThreadInfo names.
static_assert(std::is_integral_v<pthread_t>, "glibc's pthread_t, as CPython's ident assumes");
unsigned long IdentOf(pthread_t native) noexcept { return static_cast<unsigned long>(native); }

// A thread's (or task's) Python store as a walk found it: a strong reference
// to its dict, released by ReleaseStores.
struct PyStore {
  uint64_t id;
  PyObject* dict;
};

// Releases the references TakeStores took (a dict whose thread has dropped it
// meanwhile goes now, with its values: any Python code may run).
void ReleaseStores(std::vector<PyStore>& stores) {
  for (PyStore& store : stores) Py_CLEAR(store.dict);
  stores.clear();
}

// Takes a reference to the dict of every live thread and open task that has
// a Python store. The visitor runs no Python code (see introspection.h).
// Returns false with a Python error set (and nothing held) on failure.
bool TakeStores(std::vector<PyStore>& stores) {
  try {
    PyStates().ForEachThread([&](const tls::ThreadInfo& who, PyState& state) {
      // Read once: a task's first write may swap its borrowed dict for its
      // own copy meanwhile (PyState::Own, 3.13t); either stays alive while
      // the walk visits this PyState.
      PyObject* dict = state.dict();
      stores.push_back(PyStore{who.id, dict});  // if it throws, no reference was taken
      Py_INCREF(dict);
    });
  } catch (const std::bad_alloc&) {
    ReleaseStores(stores);
    PyErr_NoMemory();
    return false;
  }
  return true;
}

// The tls.local dicts TakeLocalDicts found, sorted by thread (stable: each
// thread's in the locals' creation order); released by ReleaseLocalDicts.
bool TakeLocalDictsByThread(std::vector<LocalDictRef>& dicts) {
  if (!TakeLocalDicts(dicts)) return false;
  std::stable_sort(dicts.begin(), dicts.end(), [](const LocalDictRef& a, const LocalDictRef& b) {
    return IdentOf(a.thread) < IdentOf(b.thread);
  });
  return true;
}

void ReleaseLocalDicts(std::vector<LocalDictRef>& dicts) {
  for (LocalDictRef& d : dicts) {
    Py_CLEAR(d.type);
    Py_CLEAR(d.dict);
  }
  dicts.clear();
}

// [(type, [attribute names])] of the locals holding attributes on the thread
// `report` names (none for a task: a local's attributes are its thread's).
PyObject* LocalsOf(const tls::ThreadReport& report, const std::vector<LocalDictRef>& dicts) {
  PyObject* list = PyList_New(0);
  if (list == nullptr || report.task) return list;
  const unsigned long ident = IdentOf(report.native);
  auto it = std::lower_bound(
      dicts.begin(), dicts.end(), ident,
      [](const LocalDictRef& d, unsigned long i) { return IdentOf(d.thread) < i; });
  for (; it != dicts.end() && IdentOf(it->thread) == ident; ++it) {
    // Another thread's dict, which its owner may be writing: PyDict_Keys
    // copies the keys under the dict's own lock in a free-threaded build.
    PyObject* names = PyDict_Keys(it->dict);
    if (names == nullptr) {
      Py_DECREF(list);
      return nullptr;
    }
    if (PyList_GET_SIZE(names) == 0) {  // a thread that used the object and holds nothing
      Py_DECREF(names);
      continue;
    }
    PyObject* pair = Py_BuildValue("(ON)", it->type, names);
    if (pair == nullptr || PyList_Append(list, pair) < 0) {
      Py_XDECREF(pair);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(pair);
  }
  return list;
}

// The C++ key names as a tuple of str (Key::ToString is UTF-8 for text keys;
// anything else is escaped rather than refused).
PyObject* KeyNames(const std::vector<std::string>& keys) {
  PyObject* names = PyTuple_New(static_cast<Py_ssize_t>(keys.size()));
  if (names == nullptr) return nullptr;
  for (size_t i = 0; i < keys.size(); ++i) {
    PyObject* name = PyUnicode_DecodeUTF8(keys[i].data(), static_cast<Py_ssize_t>(keys[i].size()),
                                          "backslashreplace");
    if (name == nullptr) {
      Py_DECREF(names);
      return nullptr;
    }
    PyTuple_SET_ITEM(names, static_cast<Py_ssize_t>(i), name);
  }
  return names;
}

// One entry of _threads(): (id, ident, task, keys, cpp_keys, slot_values,
// handlers, bytes, locals), keys being the Python store's key objects (a new
// list, insertion order; empty without a store), locals LocalsOf's list.
PyObject* Entry(const tls::ThreadReport& report, PyObject* dict,
                const std::vector<LocalDictRef>& locals) {
  constexpr Py_ssize_t kFields = 9;
  PyObject* entry = PyTuple_New(kFields);
  if (entry == nullptr) return nullptr;
  // One at a time, stopping at the first failure (no C API call with an
  // error set); the tuple releases what it got.
  Py_ssize_t i = 0;
  auto put = [&](PyObject* item) {
    if (item == nullptr) return false;
    PyTuple_SET_ITEM(entry, i++, item);
    return true;
  };
  const bool ok =
      put(PyLong_FromUnsignedLongLong(report.id)) &&
      put(PyLong_FromUnsignedLong(IdentOf(report.native))) && put(PyBool_FromLong(report.task)) &&
      put(dict != nullptr ? PyDict_Keys(dict) : PyList_New(0)) && put(KeyNames(report.keys)) &&
      put(PyLong_FromSize_t(report.slot_values)) && put(PyLong_FromSize_t(report.handlers)) &&
      put(PyLong_FromSize_t(report.bytes)) && put(LocalsOf(report, locals));
  if (!ok) {
    Py_DECREF(entry);  // unset items are NULL: the tuple skips them
    return nullptr;
  }
  return entry;
}

PyObject* BuildThreads(const std::vector<tls::ThreadReport>& reports,
                       const std::vector<PyStore>& stores,
                       const std::vector<LocalDictRef>& locals) {
  PyObject* list = PyList_New(0);
  if (list == nullptr) return nullptr;
  for (const tls::ThreadReport& report : reports) {
    auto store = std::lower_bound(stores.begin(), stores.end(), report.id,
                                  [](const PyStore& s, uint64_t id) { return s.id < id; });
    PyObject* dict = store != stores.end() && store->id == report.id ? store->dict : nullptr;
    PyObject* entry = Entry(report, dict, locals);
    if (entry == nullptr || PyList_Append(list, entry) < 0) {
      Py_XDECREF(entry);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(entry);
  }
  return list;
}

// _threads(): one entry per thread or task tls::ListThreads reports, in its
// order (newest stub first), with that thread's Python keys if it has a store.
PyObject* Threads(PyObject*, PyObject*) {
  std::vector<tls::ThreadReport> reports;
  try {
    reports = tls::ListThreads();
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  // The C++ walk first. With a GIL, a Python store is made only by a thread
  // holding it, which this one holds until both walks are done, so every
  // store the second walk finds is on a thread or task the first one listed.
  // Without a GIL (3.13t) a thread may make its store between the walks: its
  // id is not listed and the store is left out, as if the walk came first.
  // (The listing is the C++ view's.) A thread that ends between the walks
  // shows with no Python keys.
  std::vector<PyStore> stores;
  if (!TakeStores(stores)) return nullptr;
  std::sort(stores.begin(), stores.end(),
            [](const PyStore& a, const PyStore& b) { return a.id < b.id; });
  // The locals' dicts last, matched to the listing by thread: as above, a
  // thread that made its first one meanwhile (3.13t) is left out with it.
  std::vector<LocalDictRef> locals;
  if (!TakeLocalDictsByThread(locals)) {
    ReleaseStores(stores);
    return nullptr;
  }
  PyObject* result = BuildThreads(reports, stores, locals);
  ReleaseStores(stores);
  ReleaseLocalDicts(locals);
  return result;
}

// _stats(): tls::GetStats's figures, plus python_threads (threads and tasks
// whose Python store holds a value) and python_values (Python values in all).
PyObject* Stats(PyObject*, PyObject*) {
  tls::Stats s;
  try {
    s = tls::GetStats();
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  std::vector<PyStore> stores;
  if (!TakeStores(stores)) return nullptr;
  size_t python_threads = 0;
  size_t values = 0;
  for (const PyStore& store : stores) {
    // Another thread's dict, which its owner may be writing: PyDict_Size
    // reads the count atomically in a free-threaded build.
    const size_t n = static_cast<size_t>(PyDict_Size(store.dict));
    python_threads += n != 0;
    values += n;
  }
  ReleaseStores(stores);
  return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n}",                    //
                       "threads", static_cast<Py_ssize_t>(s.threads),              //
                       "tasks", static_cast<Py_ssize_t>(s.tasks),                  //
                       "python_threads", static_cast<Py_ssize_t>(python_threads),  //
                       "python_values", static_cast<Py_ssize_t>(values),           //
                       "cpp_values", static_cast<Py_ssize_t>(s.values),            //
                       "slot_values", static_cast<Py_ssize_t>(s.slot_values),      //
                       "handlers", static_cast<Py_ssize_t>(s.handlers),            //
                       "bytes", static_cast<Py_ssize_t>(s.bytes),                  //
                       "kept_stubs", static_cast<Py_ssize_t>(s.kept_stubs));
}

PyMethodDef g_introspection_methods[] = {
    {"_threads", &Threads, METH_NOARGS,
     "_threads($module, /)\n--\n\n"
     "The raw listing behind tls.threads() (not API): a list of (id, ident, task,\n"
     "python_keys, cpp_keys, slot_values, handlers, bytes, locals), one per live\n"
     "thread and open task, newest first; python_keys is a new list of the key\n"
     "objects, locals a list of (type, [attribute names]) of each tls.local\n"
     "holding attributes on the thread."},
    {"_stats", &Stats, METH_NOARGS,
     "_stats($module, /)\n--\n\n"
     "The raw figures behind tls.stats() (not API), as a dict."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int RegisterIntrospection(PyObject* module) {
  return PyModule_AddFunctions(module, g_introspection_methods);
}

}  // namespace tls::bindings
