#include "bindings/thread_end.h"

#include "bindings/python_access.h"
#include "core/internal/exit.h"

namespace py = pybind11;

namespace tls::bindings {
namespace {

using tls::internal::ExitCause;
using tls::internal::RunThreadExit;

struct Sentinel {
  PyObject_HEAD
  PyThreadState* owner;  // the thread state whose clearing ends the thread
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
  // states), or too late to run Python: leave the native hook to free the
  // engine's part; the Python parts are leaked by design (python_access.h).
  if (owner != CurrentThreadState() || PythonFinalizing()) return;
  SavedError saved;
  RunThreadExit(ExitCause::kEarly);
  t_armed = false;
}

PyType_Slot g_sentinel_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(&SentinelDealloc)},
    {Py_tp_doc, const_cast<char*>("Runs the thread's tls exit sequence when its thread state is cleared.")},
    {0, nullptr},
};

PyType_Spec g_sentinel_spec = {
    "tls._tls._ThreadEndSentinel",
    sizeof(Sentinel),
    0,
    Py_TPFLAGS_DEFAULT,
    g_sentinel_slots,
};

}  // namespace

int EnsureThreadEndHook() noexcept {
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
  return 0;
}

void RegisterThreadEndBindings(py::module_& m) {
  g_sentinel_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_sentinel_spec));
  if (g_sentinel_type == nullptr) throw py::error_already_set();
  g_sentinel_key = PyUnicode_InternFromString("tls._tls.thread_end");
  if (g_sentinel_key == nullptr) throw py::error_already_set();

  m.def(
      "_run_main_thread_exit",
      [] {
        // Called by atexit, before finalization begins: the main thread's
        // handlers, then its closes, run as ordinary Python code.
        if (!PythonFinalizing()) RunThreadExit(ExitCause::kEarly);
      },
      "Runs the calling thread's tls exit sequence now (registered with atexit "
      "for the main thread; not API).");
  py::module_::import("atexit").attr("register")(m.attr("_run_main_thread_exit"));
}

}  // namespace tls::bindings
