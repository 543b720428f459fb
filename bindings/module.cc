// The `tls._tls` extension: one registration call per area. The public face is
// the `tls` package (python/tls), which re-exports what is here.
//
// Only the main interpreter may load it. The engine keeps one store per
// thread for the whole process, and its closes and handlers run Python code
// on that thread whenever the thread ends, long after a subinterpreter that
// stored them may be gone. So a subinterpreter gets a clear ImportError:
// here, if it is the first to load the module, and from `tls/__init__.py`
// through _require_main_interpreter() if the main interpreter loaded it first
// (CPython then copies the module into the subinterpreter without calling
// this function again).
//
// Free-threaded CPython (3.13t): the module declares that it needs no GIL
// (PyUnstable_Module_SetGIL), so importing it leaves the GIL off. What protected
// each piece of the binding's state once the GIL did is listed in
// bindings/FREE_THREADING.md.
#include <Python.h>

#include "bindings/cpp_values.h"
#include "bindings/fast_calls.h"
#include "bindings/introspection.h"
#include "bindings/lifecycle.h"
#include "bindings/local.h"
#include "bindings/py_state.h"
#include "bindings/task_local.h"
#include "bindings/tasks.h"
#ifdef TLS_TESTING_HOOKS
#include "bindings/testing.h"  // only in the test build (bindings/BUILD)
#endif
#include "bindings/thread_end.h"
#include "bindings/wrapped.h"

namespace {

constexpr char kSubinterpreterError[] =
    "tls cannot be used from a subinterpreter: its per-thread values and exit "
    "handlers belong to the whole process and run in the main interpreter";

bool InMainInterpreter() { return PyInterpreterState_Get() == PyInterpreterState_Main(); }

PyObject* RequireMainInterpreter(PyObject*, PyObject*) {
  if (InMainInterpreter()) Py_RETURN_NONE;
  PyErr_SetString(PyExc_ImportError, kSubinterpreterError);
  return nullptr;
}

PyMethodDef g_interpreter_methods[] = {
    {"_require_main_interpreter", &RequireMainInterpreter, METH_NOARGS,
     "Raises ImportError unless called from the main interpreter (not API)."},
    {nullptr, nullptr, 0, nullptr},
};

// Fills the module, one area after another. 0, or -1 with an error set.
int Register(PyObject* m) {
  using namespace tls::bindings;
  if (PyModule_AddFunctions(m, g_interpreter_methods) < 0 || InitPyState() < 0 ||
      RegisterThreadEndBindings(m) < 0 || RegisterFastCalls(m) < 0 ||
      RegisterIntrospection(m) < 0 || RegisterLifecycleBindings(m) < 0 ||
      RegisterTaskBindings(m) < 0 || RegisterLocal(m) < 0 || RegisterTaskLocal(m) < 0 ||
      RegisterWrapped(m) < 0 || RegisterCppValues(m) < 0) {
    return -1;
  }
#ifdef TLS_TESTING_HOOKS
  if (RegisterTestingBindings(m) < 0) return -1;
#endif
  return 0;
}

// Single-phase initialisation (m_size -1): the module has process-wide state,
// and CPython copies it into a subinterpreter rather than calling
// PyInit__tls again (hence the check in tls/__init__.py).
PyModuleDef g_module_def = {
    PyModuleDef_HEAD_INIT,
    "_tls",
    "Private extension behind the `tls` package; import `tls` instead.",
    -1,       // m_size
    nullptr,  // m_methods: added by each area
    nullptr,  // m_slots
    nullptr,  // m_traverse
    nullptr,  // m_clear
    nullptr,  // m_free
};

}  // namespace

PyMODINIT_FUNC PyInit__tls() {
  if (!InMainInterpreter()) {
    PyErr_SetString(PyExc_ImportError, kSubinterpreterError);
    return nullptr;
  }
  PyObject* m = PyModule_Create(&g_module_def);
  if (m == nullptr) return nullptr;
#ifdef Py_GIL_DISABLED
  if (PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
#endif
  if (Register(m) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
