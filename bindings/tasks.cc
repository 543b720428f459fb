#include "bindings/tasks.h"

#include <exception>
#include <new>
#include <utility>

#include "bindings/dict_cache.h"
#include "bindings/fast_calls.h"
#include "bindings/py_compat.h"
#include "bindings/py_state.h"
#include "bindings/python_access.h"
#include "bindings/snapshot_holds.h"
#include "bindings/thread_end.h"
#include "tls/embedder.h"
#include "tls/tls.h"

namespace tls::bindings {
namespace {

// ---- Open tasks --------------------------------------------------------------
//
// Each Snapshot.run on the stack of a thread has an OpenTask there, innermost
// in t_open_tasks. One whose engine task has ended no longer counts: the
// engine ends the tasks still open when the thread exits (exit() called inside
// a task), and this thread's own values must be closed then.

struct OpenTask {
  PyObject* captured;            // the snapshot's dict (borrowed), or nullptr
  tls::embedder::TaskId engine;  // its tls::TaskScope's identity, once begun
  OpenTask* outer;
};

// A plain pointer (constant-initialized, nothing to destroy): PyState::Close
// may run from the engine's native exit hook, after C++ thread_locals are gone.
thread_local constinit OpenTask* t_open_tasks = nullptr;

// Pushes an OpenTask for its lifetime. Touches no Python object, so a forced
// unwind may pass it. The thread's dict changes as the task begins and ends:
// the cached one is forgotten then (dict_cache.h).
class OpenTaskScope {
 public:
  explicit OpenTaskScope(PyObject* captured) noexcept : task_{captured, nullptr, t_open_tasks} {
    t_open_tasks = &task_;
  }
  ~OpenTaskScope() {
    ForgetCachedDict();  // the task ended (its TaskScope is gone): the thread's own dict is back
    t_open_tasks = task_.outer;
  }
  OpenTaskScope(const OpenTaskScope&) = delete;
  OpenTaskScope& operator=(const OpenTaskScope&) = delete;

  // Called right after the engine task began: it is the innermost one.
  void Began() noexcept {
    ForgetCachedDict();  // the thread's own dict is hidden now
    task_.engine = tls::embedder::CurrentTask();
  }

 private:
  OpenTask task_;
};

// ---- Snapshot ----------------------------------------------------------------

struct SnapshotObject {
  PyObject_HEAD tls::Snapshot engine;  // the thread's C++ values
  PyObject* values;                    // a copy of its Python dict, or nullptr if it had none
  bool holds_released;                 // values counted out of snapshot_holds.h (once)
};

PyTypeObject* g_snapshot_type = nullptr;

// A new Snapshot holding `values` (a new reference, or nullptr; stolen) and
// `engine`. Returns nullptr with a Python error set on failure.
PyObject* NewSnapshot(PyTypeObject* type, PyObject* values, tls::Snapshot engine) {
  const int held = values == nullptr ? 0 : HoldSnapshotValues(values);
  if (held < 0) {
    Py_DECREF(values);
    return nullptr;
  }
  auto* self = PyObject_GC_New(SnapshotObject, type);
  if (self == nullptr) {
    if (held > 0) ReleaseSnapshotValues(values);  // counted out again
    Py_XDECREF(values);
    return nullptr;
  }
  new (&self->engine) tls::Snapshot(std::move(engine));
  self->values = values;
  self->holds_released = held == 0;  // nothing counted: nothing to release
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

PyObject* SnapshotNew(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwargs != nullptr && PyDict_GET_SIZE(kwargs) != 0)) {
    PyErr_SetString(PyExc_TypeError, "Snapshot() takes no arguments");
    return nullptr;
  }
  return NewSnapshot(type, nullptr, tls::Snapshot());
}

int SnapshotTraverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(reinterpret_cast<SnapshotObject*>(self)->values);
  Py_VISIT(Py_TYPE(self));
  return 0;
}

// Counts the Python values out of snapshot_holds.h, once: a close that an
// end left to this snapshot, its last holder, runs here, on whichever thread
// drops it. The collector calls this (tp_finalize) before it clears anything
// of a garbage cycle, so the dict and its values are still whole; a snapshot
// the collector never saw counts out in its deallocation (refcount 0: the
// closes cannot reach it).
void SnapshotFinalize(PyObject* self) {
  auto* snapshot = reinterpret_cast<SnapshotObject*>(self);
  if (snapshot->values == nullptr || std::exchange(snapshot->holds_released, true)) return;
  ReleaseSnapshotValues(snapshot->values);
}

int SnapshotClear(PyObject* self) {
  SnapshotFinalize(self);
  Py_CLEAR(reinterpret_cast<SnapshotObject*>(self)->values);
  return 0;
}

void SnapshotDealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  SnapshotClear(self);
  // Lets go of the C++ values: one whose close an end left pending closes
  // here; others no handle holds are destroyed, not closed (core/task.h).
  reinterpret_cast<SnapshotObject*>(self)->engine.~Snapshot();
  PyObject_GC_Del(self);
  Py_DECREF(type);
}

// Gives the task begun just now its PyState: `captured` itself, borrowed
// until the task's first write (py_state.h, PyState::Borrow). Runs no Python
// code (the thread's end hook is armed already), so the task's slot is still
// empty here.
int StartTaskValues(PyObject* captured) {
  try {
    PyStates().Emplace(captured, PyState::Borrow{});
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
    return -1;
  } catch (const std::exception& e) {
    PyErr_Format(PyExc_RuntimeError, "tls: cannot create the task's state: %s", e.what());
    return -1;
  }
  return 0;
}

// Closes an async generator (it has no close()) with no event loop: the
// awaitable of its aclose(), stepped once, finishes unless the generator awaits
// while closing, an error then. A Python error is set if it failed.
void CloseAsyncGen(PyObject* agen) {
  PyObject* closing = PyObject_CallMethod(agen, "aclose", nullptr);
  if (closing == nullptr) return;
  PyObject* step = PyObject_CallMethod(closing, "send", "O", Py_None);
  if (step == nullptr) {
    if (PyErr_ExceptionMatches(PyExc_StopIteration)) PyErr_Clear();  // closed
  } else {
    Py_DECREF(step);
    Py_XDECREF(PyObject_CallMethod(closing, "close", nullptr));
    if (!PyErr_Occurred()) {
      PyErr_SetString(PyExc_RuntimeError, "async generator awaited while closing, with no loop");
    }
  }
  Py_DECREF(closing);
}

// fn's result (stolen; nullptr if fn raised), unless it is a generator, a
// coroutine or an async generator: calling fn only made that, and its body
// would run later wherever it is iterated or awaited, outside the task. Such a
// result is closed here, in the task (a started one's cleanup sees the task's
// values; a coroutine never awaited warns no more), and refused: TypeError, the
// task then ends as if fn raised it. (A forced unwind out of close() leaks it.)
PyObject* RefuseDeferredBody(PyObject* result) {
  if (result == nullptr) return nullptr;
  const char* instead;
  if (PyGen_Check(result)) {
    instead = "consume it inside the task, e.g. snapshot.run(lambda: list(gen()))";
  } else if (PyCoro_CheckExact(result)) {
    instead =
        "run the event loop inside the task, e.g. snapshot.run(lambda: asyncio.run(main())); "
        "or, within one event loop, keep per-request state in contextvars (each asyncio task "
        "has its own copy)";
  } else if (PyAsyncGen_CheckExact(result)) {
    instead =
        "iterate it in a coroutine run inside the task, e.g. "
        "snapshot.run(lambda: asyncio.run(consume(agen())))";
  } else {
    return result;
  }
  if (PyAsyncGen_CheckExact(result)) {
    CloseAsyncGen(result);
  } else {
    Py_XDECREF(PyObject_CallMethod(result, "close", nullptr));
  }
  PyObject *type, *value, *traceback;  // close()'s error, if any: the TypeError's context
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_Format(PyExc_TypeError,
               "run(): fn returned %R, whose body would run later, where it is iterated or "
               "awaited: outside the task, in that thread's values; it was closed. Instead, %s",
               result, instead);
  Py_DECREF(result);
  if (type != nullptr) {
    PyObject *error_type, *error, *error_traceback;
    PyErr_Fetch(&error_type, &error, &error_traceback);
    PyErr_NormalizeException(&error_type, &error, &error_traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != nullptr) PyException_SetTraceback(value, traceback);
    PyException_SetContext(error, value);  // steals value
    Py_DECREF(type);
    Py_XDECREF(traceback);
    PyErr_Restore(error_type, error, error_traceback);
  }
  return nullptr;
}

// The task itself, between OpenTaskScope and End. Anything else that leaves it
// (a C++ exception, or CPython's forced unwind ending the thread) ends the task
// through ~TaskScope (whose handlers and closes run Python only where
// PythonCall allows), then pops the OpenTask; nothing here holds a reference
// that an unwind would have to release.
PyObject* RunAsTask(SnapshotObject* self, PyObject* const* args, Py_ssize_t nargs,
                    PyObject* kwnames) {
  // Armed before the task begins: arming may run Python code (an import, the
  // collector), which must not store into the task before its PyState is made.
  if (self->values != nullptr && EnsureThreadEndHook() < 0) return nullptr;
  OpenTaskScope open(self->values);
  tls::TaskScope task(self->engine);
  open.Began();
  PyObject* result = nullptr;
  if (self->values == nullptr || StartTaskValues(self->values) == 0) {
    // The keyword values follow the positional ones in `args`.
    result = RefuseDeferredBody(
        PyObject_Vectorcall(args[0], args + 1, static_cast<size_t>(nargs - 1), kwnames));
  }
  // The task's exit: its handlers and closes save and restore the pending
  // exception, if fn raised (PythonCall).
  task.End();
  return result;
}

// run(fn, /, *args, **kwargs)
PyObject* SnapshotRun(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (nargs < 1) {
    PyErr_SetString(PyExc_TypeError, "run() missing required argument 'fn' (pos 1)");
    return nullptr;
  }
  if (!PyCallable_Check(args[0])) {
    PyErr_Format(PyExc_TypeError, "run() argument 'fn' must be callable, not %s",
                 Py_TYPE(args[0])->tp_name);
    return nullptr;
  }
  PyObject* result = nullptr;
  Py_INCREF(self);  // its dict must outlive the task (leaked if the thread is ended inside)
  try {
    result = RunAsTask(reinterpret_cast<SnapshotObject*>(self), args, nargs, kwnames);
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_Format(PyExc_RuntimeError, "tls: %s", e.what());
  }
  Py_DECREF(self);
  // What the task's exit released (its dict, handlers), with fn's exception
  // kept aside: deallocators may run any code.
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  DrainReleases();
  PyErr_Restore(type, value, traceback);
  return result;
}

PyMethodDef g_snapshot_methods[] = {
    {"run", Fast(&SnapshotRun), METH_FASTCALL | METH_KEYWORDS,
     "run($self, fn, /, *args, **kwargs)\n--\n\n"
     "run calls fn(*args, **kwargs) as a task in this snapshot; returns what fn\n"
     "returns, or raises what it raised, after the task ended.\n\n"
     "Inside, get() sees the captured values and the thread's own are hidden;\n"
     "set/delete/reset/unload act on the task's view only; id() is the task's\n"
     "own. At the end: the task's at_exit handlers run (newest first, values\n"
     "readable), then the values it set are closed, once; captured values are\n"
     "never closed by a task. Then the thread's values are back, unchanged.\n"
     "Any thread may run a snapshot, many at once. If fn returns a generator,\n"
     "coroutine or async generator (its body would run later, outside the\n"
     "task), run closes it and raises TypeError: consume it inside fn instead."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot g_snapshot_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(&SnapshotNew)},
    {Py_tp_dealloc, reinterpret_cast<void*>(&SnapshotDealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(&SnapshotTraverse)},
    {Py_tp_clear, reinterpret_cast<void*>(&SnapshotClear)},
    {Py_tp_finalize, reinterpret_cast<void*>(&SnapshotFinalize)},
    {Py_tp_methods, g_snapshot_methods},
    {Py_tp_doc,
     const_cast<char*>("Snapshot()\n--\n\n"
                       "Snapshot: a thread's values, taken by capture(), to run tasks in.\n\n"
                       "Immutable; the values are shared with the thread that captured them,\n"
                       "not copied. Snapshot() is an empty one: a task run in it starts with\n"
                       "nothing.")},
    {0, nullptr},
};

constexpr unsigned kSnapshotFlags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;  // final: no BASETYPE

PyType_Spec g_snapshot_spec = {
    "tls.Snapshot", sizeof(SnapshotObject), 0, kSnapshotFlags, g_snapshot_slots,
};

// ---- capture -----------------------------------------------------------------

// The thread's Python values under `keys` (all of them if there are none), as
// a new dict; nullptr with no error set if there are none.
PyObject* CopyValues(PyObject* const* keys, Py_ssize_t nkeys) {
  PyState* state = PyStates().Get();
  if (state == nullptr || PyDict_GET_SIZE(state->dict()) == 0) {
    // Same TypeError as get() for an unhashable key, store or not.
    for (Py_ssize_t i = 0; i < nkeys; ++i) {
      if (PyObject_Hash(keys[i]) == -1) return nullptr;
    }
    return nullptr;
  }
  PyObject* source = state->dict();
  Py_INCREF(source);  // a key's __eq__ or the collector may reset the store
  PyObject* values = nullptr;
  if (nkeys == 0) {
    values = PyDict_Copy(source);
  } else if ((values = PyDict_New()) != nullptr) {
    for (Py_ssize_t i = 0; i < nkeys; ++i) {
      PyObject* value = nullptr;
      const int found = DictGetItemRef(source, keys[i], &value);
      const bool failed = found < 0 || (found > 0 && PyDict_SetItem(values, keys[i], value) < 0);
      Py_XDECREF(value);
      if (failed) {
        Py_CLEAR(values);
        break;
      }
    }
    if (values != nullptr && PyDict_GET_SIZE(values) == 0) Py_CLEAR(values);
  }
  Py_DECREF(source);
  return values;
}

// capture(*keys)
PyObject* Capture(PyObject*, PyObject* const* keys, Py_ssize_t nkeys) {
  PyObject* values = CopyValues(keys, nkeys);
  if (values == nullptr && PyErr_Occurred()) return nullptr;
  try {
    // C++ keys are strings and integers, Python keys any hashable: only a
    // capture of everything takes the C++ values.
    return NewSnapshot(g_snapshot_type, values, nkeys == 0 ? tls::Capture() : tls::Snapshot());
  } catch (const std::bad_alloc&) {
    Py_XDECREF(values);
    return PyErr_NoMemory();
  }
}

PyMethodDef g_task_methods[] = {
    {"capture", Fast(&Capture), METH_FASTCALL,
     "capture($module, /, *keys)\n--\n\n"
     "capture returns a Snapshot of the calling thread's values (inside a task:\n"
     "of the task's), to run tasks in on any thread.\n\n"
     "The values are shared, not copied; later set/delete on this thread do not\n"
     "change the snapshot. With keys, only the Python values under them (missing\n"
     "ones left out) and no C++ values; without, every Python and C++ value.\n"
     "An unhashable key raises TypeError."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyObject* RunInSnapshot(PyObject* snapshot, PyObject* const* args, Py_ssize_t nargs,
                        PyObject* kwnames) {
  return SnapshotRun(snapshot, args, nargs, kwnames);
}

PyObject* CaptureAll() { return Capture(nullptr, nullptr, 0); }

bool CapturedObjects::Contains(PyObject* value) {
  if (!gathered_) {
    gathered_ = true;
    for (const OpenTask* t = t_open_tasks; t != nullptr; t = t->outer) {
      if (t->captured == nullptr || !tls::embedder::TaskOpen(t->engine)) continue;
      Py_ssize_t pos = 0;
      PyObject *key, *captured;
      while (PyDict_Next(t->captured, &pos, &key, &captured)) objects_.Insert(captured);
    }
  }
  return objects_.Contains(value);
}

uint64_t CapturedObjects::StrandedHolds(PyObject* value) const {
  uint64_t holds = 0;
  for (const OpenTask* t = t_open_tasks; t != nullptr; t = t->outer) {
    if (t->captured == nullptr || tls::embedder::TaskOpen(t->engine)) continue;
    Py_ssize_t pos = 0;
    PyObject *key, *captured;
    while (PyDict_Next(t->captured, &pos, &key, &captured)) holds += captured == value ? 1 : 0;
  }
  return holds;
}

int RegisterTaskBindings(PyObject* module) {
  g_snapshot_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_snapshot_spec));
  if (g_snapshot_type == nullptr) return -1;
  Py_INCREF(g_snapshot_type);  // one for the module, one for g_snapshot_type
  if (PyModule_AddObject(module, "Snapshot", reinterpret_cast<PyObject*>(g_snapshot_type)) < 0) {
    Py_DECREF(g_snapshot_type);
    return -1;
  }
  return PyModule_AddFunctions(module, g_task_methods);
}

}  // namespace tls::bindings
