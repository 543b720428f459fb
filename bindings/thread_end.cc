#include "bindings/thread_end.h"

#include <pythread.h>

#include <atomic>
#include <new>

#include "bindings/dict_cache.h"
#include "bindings/py_compat.h"
#include "bindings/python_access.h"
#include "tls/embedder.h"

namespace tls::bindings {
namespace {

void RunEarlyExit() {
  tls::embedder::RunThreadExit(tls::embedder::ExitCause::kEarly);
  ForgetCachedDict();  // as PyState::Close did (dict_cache.h)
  DrainReleases();
}

// ---- The sentinel: every thread, when its thread state is cleared ----------

struct Sentinel {
  PyObject_HEAD PyThreadState* owner;  // the thread state whose clearing ends the thread
};

// Whether this thread's current thread state carries a live sentinel. Reset
// when the sentinel fires, so a later thread state on the same native thread
// (PyGILState_Ensure after a Release) gets its own.
thread_local bool t_armed = false;

PyTypeObject* g_sentinel_type = nullptr;
PyObject* g_sentinel_key = nullptr;  // the key in the thread-state dict

void SentinelDealloc(PyObject* self) {
  PyThreadState* owner = reinterpret_cast<Sentinel*>(self)->owner;
  PyTypeObject* type = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(type);
  // Not our thread (finalization or a fork child clearing other threads'
  // states): leave the native hook to free the engine's part; the Python
  // parts are leaked by design (python_access.h). Too late to run Python: the
  // same.
  if (owner != CurrentThreadState()) return;
  PythonCall py;
  if (!py) return;
  py.Run(&RunEarlyExit);
  t_armed = false;
}

PyType_Slot g_sentinel_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(&SentinelDealloc)},
    {Py_tp_doc,
     const_cast<char*>("Runs the thread's tls exit sequence when its thread state is cleared.")},
    {0, nullptr},
};

PyType_Spec g_sentinel_spec = {
    "tls._tls._ThreadEndSentinel", sizeof(Sentinel), 0, Py_TPFLAGS_DEFAULT, g_sentinel_slots,
};

// ---- threading.Thread: while the thread is still itself (3.11+) -------------
//
// From 3.11, Thread._bootstrap_inner ends with `self._delete()`, after run()
// and the excepthook, while the thread is still in threading._active: there
// current_thread() is the Thread, its threading.local data is intact, and
// join() has not returned. A thread that arms its exit puts a wrapper in its
// own instance dict under `_delete`, which runs the exit sequence and then the
// real _delete. (3.9 and 3.10 delete the thread from _active inline: there,
// and for threads `threading` does not manage, the sentinel runs the exit.)

PyObject* g_threading_name = nullptr;  // "threading"

// ---- Which threads `threading` manages (every version) ---------------------

// What CurrentManagedThread reads of `threading`, looked up once (threading
// never rebinds them; _active is cleared and refilled in place after fork).
// Published once, whole, through an atomic pointer: without a GIL two threads
// may look them up at once; the first to publish wins and the other drops its
// own (no thread ever waits on another here).
struct ThreadingNames {
  PyObject* active;  // threading._active: ident -> Thread
  PyTypeObject* thread;
  PyTypeObject* dummy;
  PyTypeObject* main;
};
std::atomic<const ThreadingNames*> g_threading{nullptr};

void DropNames(PyObject* active, PyObject* thread, PyObject* dummy, PyObject* main) {
  Py_XDECREF(active);
  Py_XDECREF(thread);
  Py_XDECREF(dummy);
  Py_XDECREF(main);
}

// g_threading, filled if `threading` has been imported; nullptr if not (yet).
const ThreadingNames* LookUpThreading() {
  if (const ThreadingNames* names = g_threading.load(std::memory_order_acquire)) return names;
  PyObject* threading = PyImport_GetModule(g_threading_name);  // no import
  if (threading == nullptr) return nullptr;
  PyObject* active = PyObject_GetAttrString(threading, "_active");
  PyObject* thread = PyObject_GetAttrString(threading, "Thread");
  PyObject* dummy = PyObject_GetAttrString(threading, "_DummyThread");
  PyObject* main = PyObject_GetAttrString(threading, "_MainThread");
  Py_DECREF(threading);
  if (!(active != nullptr && PyDict_Check(active) && thread != nullptr && PyType_Check(thread) &&
        dummy != nullptr && PyType_Check(dummy) && main != nullptr && PyType_Check(main))) {
    DropNames(active, thread, dummy, main);  // a `threading` unlike CPython's: the sentinel only
    return nullptr;
  }
  auto* names = new (std::nothrow)
      ThreadingNames{active, reinterpret_cast<PyTypeObject*>(thread),
                     reinterpret_cast<PyTypeObject*>(dummy), reinterpret_cast<PyTypeObject*>(main)};
  if (names == nullptr) {
    DropNames(active, thread, dummy, main);
    return nullptr;
  }
  const ThreadingNames* first = nullptr;
  if (!g_threading.compare_exchange_strong(first, names, std::memory_order_acq_rel)) {
    DropNames(active, thread, dummy, main);  // another thread published first: use its
    delete names;
    return first;
  }
  return names;  // kept for good, as the module is
}

// threading._active[ident] as a new reference, or nullptr (none, or an error,
// left set). Other threads add and remove their entries meanwhile: without a
// GIL only a reference taken under the dict's own lock stays valid.
PyObject* ActiveThread(PyObject* active, PyObject* ident) {
  PyObject* thread = nullptr;
  DictGetItemRef(active, ident, &thread);
  return thread;
}

// The calling thread's threading.Thread, if `threading` manages it (not the
// main thread, whose exit runs from atexit, nor a dummy): a new reference, or
// nullptr. Never creates a dummy thread; never fails.
PyObject* CurrentManagedThread() {
  PyObject* thread = nullptr;
  if (const ThreadingNames* names = LookUpThreading()) {
    PyObject* ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (ident != nullptr) {
      thread = ActiveThread(names->active, ident);
      Py_DECREF(ident);
    }
    if (thread != nullptr &&
        !(PyObject_TypeCheck(thread, names->thread) && !PyObject_TypeCheck(thread, names->dummy) &&
          !PyObject_TypeCheck(thread, names->main))) {
      Py_CLEAR(thread);
    }
  }
  PyErr_Clear();
  return thread;
}

#if PY_VERSION_HEX >= 0x030B0000
PyObject* g_delete_name = nullptr;   // "_delete"
PyObject* g_context_name = nullptr;  // "_context" (3.14+)

// From 3.14, Thread.run() runs in the Thread's own contextvars.Context
// (`_context`: a copy of its creator's, or an empty one, as
// sys.flags.thread_inherit_context says), left when run() returns. The exit
// re-enters it, so handlers see the ContextVars the thread's code saw, as
// they do on 3.13 and older (where run() used the thread state's context).
// Returns the entered context (a new reference), or nullptr for none.
PyObject* EnterRunContext(PyObject* thread) {
#if PY_VERSION_HEX >= 0x030E0000
  PyObject* context = nullptr;
  if (PyObject_GetOptionalAttr(thread, g_context_name, &context) <= 0 ||
      !PyContext_CheckExact(context) || PyContext_Enter(context) < 0) {
    PyErr_Clear();  // none, or already entered elsewhere: the thread state's context
    Py_XDECREF(context);
    return nullptr;
  }
  return context;
#else
  (void)thread;
  return nullptr;
#endif
}

void LeaveRunContext(PyObject* context) {
  if (context == nullptr) return;
  if (PyContext_Exit(context) < 0) PyErr_WriteUnraisable(context);
  Py_DECREF(context);
}

PyObject* RunExitThenDelete(PyObject* thread, PyObject*) {
  Py_INCREF(thread);
  // Back to the class's _delete (this also drops the wrapper's reference to
  // the thread, the cycle thread -> __dict__ -> wrapper -> thread).
  if (PyObject_GenericSetAttr(thread, g_delete_name, nullptr) < 0) PyErr_Clear();
  PyObject* context = EnterRunContext(thread);
  RunEarlyExit();
  LeaveRunContext(context);
  PyObject* result = PyObject_CallMethodNoArgs(thread, g_delete_name);
  Py_DECREF(thread);
  return result;
}

PyMethodDef g_run_exit_then_delete = {
    "_delete", &RunExitThenDelete, METH_NOARGS,
    "Runs the thread's tls exit sequence, then threading's own _delete()."};

// Puts the wrapper on the calling thread's Thread, if it has one. Failing to
// is not an error: the sentinel still runs the exit, later.
void HookThreadingDelete() {
  PyObject* thread = CurrentManagedThread();
  if (thread == nullptr) return;
  PyObject* wrapper = PyCFunction_New(&g_run_exit_then_delete, thread);
  if (wrapper == nullptr || PyObject_GenericSetAttr(thread, g_delete_name, wrapper) < 0) {
    PyErr_Clear();
  }
  Py_XDECREF(wrapper);
  Py_DECREF(thread);
}
#else
void HookThreadingDelete() {}
#endif

}  // namespace

int EnsureThreadEndHook() {
  if (t_armed) return 0;
  PyObject* dict = PyThreadState_GetDict();  // borrowed
  if (dict == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "tls: no Python thread state");
    return -1;
  }
  Sentinel* sentinel = PyObject_New(Sentinel, g_sentinel_type);
  if (sentinel == nullptr) return -1;
  sentinel->owner = PyThreadState_Get();
  PyObject* stored = PyDict_SetDefault(dict, g_sentinel_key, reinterpret_cast<PyObject*>(sentinel));
  Py_DECREF(sentinel);  // the dict owns it (or already had one: keep that)
  if (stored == nullptr) return -1;
  t_armed = true;
  HookThreadingDelete();
  return 0;
}

namespace {

// ---- The main thread: from atexit ------------------------------------------

PyObject* RunMainThreadExit(PyObject*, PyObject*) {
  // Called by atexit, before finalization begins: the main thread's handlers,
  // then its closes, run as ordinary Python code. Then no thread may enter
  // Python from outside any more (python_access.h, 4.).
  if (!PythonFinalizing()) {
    RunEarlyExit();
    OutsideEntry::ShutDoorAndWait();
  }
  Py_RETURN_NONE;
}

PyMethodDef g_main_thread_exit_methods[] = {
    {"_run_main_thread_exit", &RunMainThreadExit, METH_NOARGS,
     "Runs the calling thread's tls exit sequence now (registered with atexit "
     "for the main thread; not API)."},
    {nullptr, nullptr, 0, nullptr},
};

// The exit must stay registered through atexit._clear(): 3.13's
// multiprocessing calls it in each fork and forkserver child (to drop the
// parent's callbacks), then runs what is registered after it with
// atexit._run_exitfuncs() before os._exit, and the process ending there is
// still a main thread ending. So _clear is wrapped: clear, then register the
// exit again (first after the clear, it runs after the callbacks registered
// later, as it does after import). `self` is (atexit's _clear, atexit.register,
// _run_main_thread_exit).
PyObject* ClearThenRegisterExit(PyObject* self, PyObject*) {
  PyObject* cleared = PyObject_CallNoArgs(PyTuple_GET_ITEM(self, 0));
  if (cleared == nullptr) return nullptr;
  Py_DECREF(cleared);
  PyObject* registered = PyObject_CallOneArg(PyTuple_GET_ITEM(self, 1), PyTuple_GET_ITEM(self, 2));
  if (registered == nullptr) return nullptr;
  Py_DECREF(registered);
  Py_RETURN_NONE;
}

PyMethodDef g_clear_then_register_exit = {
    "_clear", &ClearThenRegisterExit, METH_NOARGS,
    "Clears atexit's callbacks, then registers tls's main-thread exit again "
    "(tls: bindings/thread_end.cc)."};

// Registers `run_exit` with atexit and wraps atexit._clear. 0, or -1 with an
// error set.
int RegisterMainThreadExit(PyObject* run_exit) {
  PyObject* atexit = PyImport_ImportModule("atexit");
  if (atexit == nullptr) return -1;
  PyObject* register_exit = PyObject_GetAttrString(atexit, "register");
  PyObject* clear = PyObject_GetAttrString(atexit, "_clear");
  PyObject* state = register_exit != nullptr && clear != nullptr
                        ? PyTuple_Pack(3, clear, register_exit, run_exit)
                        : nullptr;
  PyObject* wrapper =
      state != nullptr ? PyCFunction_New(&g_clear_then_register_exit, state) : nullptr;
  PyObject* registered =
      wrapper != nullptr ? PyObject_CallOneArg(register_exit, run_exit) : nullptr;
  const int result = registered != nullptr ? PyObject_SetAttrString(atexit, "_clear", wrapper) : -1;
  Py_XDECREF(registered);
  Py_XDECREF(wrapper);
  Py_XDECREF(state);
  Py_XDECREF(clear);
  Py_XDECREF(register_exit);
  Py_DECREF(atexit);
  return result;
}

}  // namespace

namespace {

// The engine's thread store hook (tls/embedder.h): a thread's store is about
// to be made, perhaps by a user's C++ extension (tls::Set from C++ code that
// the Python thread called), which never arms the Python thread's end. Arm it
// here, so that the thread's C++ values close with the Python thread, before
// join() returns, as Python values do. Only on a thread that holds the GIL
// (attached, on 3.13t): a native thread or C++ code with the GIL released
// has no Python thread state to arm, and its store ends with the native
// thread. An error is not the storing code's: it goes to sys.unraisablehook.
void ArmBeforeTheEnginesStore() noexcept {
  if (t_armed) return;
  if (PythonFinalizing() || !Py_IsInitialized() || !HoldsGil()) return;
  // The main interpreter's threads only: tls refuses subinterpreters.
  if (PyThreadState_GetInterpreter(CurrentThreadState()) != PyInterpreterState_Main()) return;
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  // Only a thread `threading` started (pool workers included). A native
  // thread inside a PyGILState_Ensure section has a thread state that ends at
  // the section's release: arming it would end the thread's C++ store there,
  // though the thread goes on (docs/python.md, "Differences"). The main
  // thread's exit runs from atexit whatever happens here.
  if (PyObject* thread = CurrentManagedThread()) {
    Py_DECREF(thread);
    if (EnsureThreadEndHook() < 0) PyErr_Clear();  // not the storing code's error
  }
  PyErr_Restore(type, value, traceback);
}

}  // namespace

int RegisterThreadEndBindings(PyObject* module) {
  g_sentinel_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_sentinel_spec));
  if (g_sentinel_type == nullptr) return -1;
  g_sentinel_key = PyUnicode_InternFromString("tls._tls.thread_end");
  if (g_sentinel_key == nullptr) return -1;
  g_threading_name = PyUnicode_InternFromString("threading");
  if (g_threading_name == nullptr) return -1;
#if PY_VERSION_HEX >= 0x030B0000
  g_delete_name = PyUnicode_InternFromString("_delete");
  g_context_name = PyUnicode_InternFromString("_context");
  if (g_delete_name == nullptr || g_context_name == nullptr) return -1;
#endif
  if (PyModule_AddFunctions(module, g_main_thread_exit_methods) < 0) return -1;
  PyObject* run_exit = PyObject_GetAttrString(module, "_run_main_thread_exit");
  if (run_exit == nullptr) return -1;
  const int result = RegisterMainThreadExit(run_exit);
  Py_DECREF(run_exit);
  if (result == 0) tls::embedder::SetThreadStoreHook(&ArmBeforeTheEnginesStore);
  return result;
}

}  // namespace tls::bindings
