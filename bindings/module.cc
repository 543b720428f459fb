// The `tls._tls` extension: one registration call per area. The public face is
// the `tls` package (python/tls), which re-exports what is here.
//
// Only the main interpreter may load it. The engine keeps one store per
// thread for the whole process, and its closes and handlers run Python code
// on that thread whenever the thread ends, long after a subinterpreter that
// stored them may be gone (and pybind11 2.10 has one state per process). So a
// subinterpreter gets a clear ImportError: here, if it is the first to load
// the module, and from `tls/__init__.py` through _require_main_interpreter()
// if the main interpreter loaded it first (CPython then copies the module into
// the subinterpreter without calling this function again).
//
// Free-threaded CPython (3.13t): the module declares that it needs no GIL
// (py::mod_gil_not_used), so importing it leaves the GIL off. What protected
// each piece of the binding's state once the GIL did is listed in
// bindings/FREE_THREADING.md.
#include <pybind11/pybind11.h>

#include "bindings/fast_calls.h"
#include "bindings/introspection.h"
#include "bindings/lifecycle.h"
#include "bindings/py_state.h"
#include "bindings/tasks.h"
#ifdef TLS_TESTING_HOOKS
#include "bindings/testing.h"  // only in the test build (bindings/BUILD)
#endif
#include "bindings/thread_end.h"

namespace py = pybind11;

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

void Register(py::module_& m) {
  m.doc() = "Private extension behind the `tls` package; import `tls` instead.";
  if (PyModule_AddFunctions(m.ptr(), g_interpreter_methods) < 0) {
    throw py::error_already_set();
  }
  if (tls::bindings::InitPyState() < 0) throw py::error_already_set();
  tls::bindings::RegisterThreadEndBindings(m);
  tls::bindings::RegisterFastCalls(m);
  tls::bindings::RegisterIntrospection(m);
  tls::bindings::RegisterLifecycleBindings(m);
  tls::bindings::RegisterTaskBindings(m);
#ifdef TLS_TESTING_HOOKS
  tls::bindings::RegisterTestingBindings(m);
#endif
}

py::module_::module_def g_module_def;

}  // namespace

// What PYBIND11_MODULE would define, with the interpreter checked before
// pybind11 sets up its (per-process) state.
extern "C" PYBIND11_EXPORT PyObject* PyInit__tls() {
  if (!InMainInterpreter()) {
    PyErr_SetString(PyExc_ImportError, kSubinterpreterError);
    return nullptr;
  }
  PYBIND11_CHECK_PYTHON_VERSION
  PYBIND11_ENSURE_INTERNALS_READY
  auto m =
      py::module_::create_extension_module("_tls", nullptr, &g_module_def, py::mod_gil_not_used());
  try {
    Register(m);
    return m.ptr();
  }
  PYBIND11_CATCH_INIT_EXCEPTIONS
  return nullptr;  // pybind11 3's catch clauses set ImportError and fall through
}
