#include "bindings/lifecycle.h"

#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "bindings/dict_cache.h"
#include "bindings/python_access.h"
#include "bindings/thread_end.h"
#include "tls/tls.h"

namespace tls::bindings {
namespace {

// A Python callable as an engine AtExit handler. The engine may run or drop
// it from anywhere (python_access.h): it calls only when Python is usable, and
// an exception it raises goes to sys.unraisablehook, never to the engine.
class PyHandler {
 public:
  explicit PyHandler(PyObject* fn) noexcept : fn_(fn) { Py_INCREF(fn_); }
  ~PyHandler() { ReleaseFromDestructor(fn_); }
  PyHandler(const PyHandler&) = delete;
  PyHandler& operator=(const PyHandler&) = delete;

  void operator()() const {
    PythonCall py;
    if (!py) return;
    py.Run([&] {
      PyObject* result = PyObject_CallNoArgs(fn_);
      if (result == nullptr) {
        PyErr_WriteUnraisable(fn_);
      } else {
        Py_DECREF(result);
      }
    });
  }

 private:
  PyObject* fn_;
};

// at_exit(fn, /)
PyObject* AtExit(PyObject*, PyObject* fn) {
  if (!PyCallable_Check(fn)) {
    PyErr_Format(PyExc_TypeError, "at_exit() argument must be callable, not %s",
                 Py_TYPE(fn)->tp_name);
    return nullptr;
  }
  if (EnsureThreadEndHook() < 0) return nullptr;
  return CallEngine([fn] {
    auto handler = std::make_shared<const PyHandler>(fn);
    tls::AtExit([handler] { (*handler)(); });
  });
}

// Each forgets the cached dict when the engine returns, whatever ran inside
// (PyState::Close and ~PyState forget it as it happens: dict_cache.h).
PyObject* Reset(PyObject*, PyObject*) {
  PyObject* result = CallEngine([] { tls::Reset(); });
  ForgetCachedDict();
  DrainReleases();
  return result;
}

PyObject* Unload(PyObject*, PyObject*) {
  ForgetCachedDict();  // the PyState may be destroyed later, on another thread
  PyObject* result = CallEngine([] { tls::Unload(); });
  ForgetCachedDict();
  DrainReleases();
  return result;
}

// The engine's error handler while the extension is loaded: an error of a
// C++ value or handler, or thread exit giving up, reaches sys.unraisablehook
// as a RuntimeError when the thread can run Python, so tests and logging see
// it; else the engine's usual line on stderr.
void ReportToPython(const tls::ErrorInfo& e) {
  const std::string line =
      "tls: " + std::string(e.message) + " (thread " + std::to_string(e.thread_id) + ")";
  PythonCall py;
  if (!py) {
    std::fprintf(stderr, "%s\n", line.c_str());
    return;
  }
  py.Run([&] {
    PyObject* message =
        PyUnicode_DecodeUTF8(line.data(), static_cast<Py_ssize_t>(line.size()), "replace");
    if (message != nullptr) {
      PyErr_SetObject(PyExc_RuntimeError, message);
      Py_DECREF(message);
    }
    PyErr_WriteUnraisable(nullptr);
  });
}

PyMethodDef g_lifecycle_methods[] = {
    {"reset", &Reset, METH_NOARGS,
     "reset($module, /)\n--\n\n"
     "reset closes every value of the calling thread, then drops them all.\n\n"
     "Each stored object with a close() method is closed exactly once; an\n"
     "exception from a close() goes to sys.unraisablehook. The thread keeps its\n"
     "ID and at_exit handlers. C++ values of the thread are closed too."},
    {"unload", &Unload, METH_NOARGS,
     "unload($module, /)\n--\n\n"
     "unload drops the calling thread's values and handlers without closing\n"
     "or running them.\n\n"
     "The next set/id/at_exit starts over with a new ID."},
    {"at_exit", &AtExit, METH_O,
     "at_exit($module, fn, /)\n--\n\n"
     "at_exit registers `fn` to run when the calling thread ends.\n\n"
     "Handlers run newest first with the thread's values still readable; then\n"
     "values with close() are closed. On the main thread they run at interpreter\n"
     "exit, before finalization. A non-callable raises TypeError; an exception\n"
     "raised by `fn` goes to sys.unraisablehook and the others still run."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int RegisterLifecycleBindings(PyObject* module) {
  tls::SetErrorHandler(&ReportToPython);
  return PyModule_AddFunctions(module, g_lifecycle_methods);
}

}  // namespace tls::bindings
