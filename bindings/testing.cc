#include "bindings/testing.h"

#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "bindings/snapshot_holds.h"
#include "tls/tls.h"

namespace py = pybind11;

namespace tls::bindings {
namespace {

std::atomic<int> g_cpp_closes{0};
std::atomic<int> g_cpp_handlers{0};

struct CountedCloser {
  void Close() { g_cpp_closes.fetch_add(1); }
};

// Runs `fn` on a new std::thread that enters Python with PyGILState_Ensure,
// as a native library calling back into Python does. Returns the tls::ID()
// C++ saw on that thread right after `fn` returned (before the thread state
// is released, which ends the thread's tls).
uint64_t RunInNativeThread(py::object fn) {
  uint64_t cpp_id = 0;
  {
    py::gil_scoped_release release;
    std::thread thread([&] {
      PyGILState_STATE gil = PyGILState_Ensure();
      PyObject* result = PyObject_CallNoArgs(fn.ptr());
      if (result == nullptr) {
        PyErr_WriteUnraisable(fn.ptr());
      } else {
        Py_DECREF(result);
      }
      cpp_id = tls::ID();
      PyGILState_Release(gil);
    });
    thread.join();
  }
  return cpp_id;
}

// pybind11 here only: this file is never shipped (tools/python_ext.bzl gives
// the release variants no pybind11 at all), and its functions are not hot.
void AddTestingSubmodule(py::module_ m) {
  py::module_ t = m.def_submodule("_testing", "Test-only hooks into the C++ side. Not API.");
  t.def(
      "cpp_id", [] { return tls::ID(); }, "tls::ID() as C++ sees it on the calling thread.");
  t.def(
      "cpp_set_closer",
      [](const std::string& key) { tls::Set(key, tls::MakeData(CountedCloser{})); },
      "Stores a C++ value under `key` whose close counts in cpp_closes().");
  t.def(
      "cpp_has", [](const std::string& key) { return tls::Get(key).has_value(); },
      "Whether the C++ store of the calling thread has `key`.");
  t.def(
      "cpp_at_exit", [] { tls::AtExit([] { g_cpp_handlers.fetch_add(1); }); },
      "Registers a C++ AtExit handler that counts in cpp_handlers().");
  t.def("cpp_closes", [] { return g_cpp_closes.load(); });
  t.def("cpp_handlers", [] { return g_cpp_handlers.load(); });
  t.def(
      "cpp_threads",
      [] {
        py::list out;
        for (const tls::ThreadReport& r : tls::ListThreads()) {
          py::list keys;
          for (const std::string& k : r.keys) keys.append(py::str(k));
          out.append(py::make_tuple(r.id, r.task, py::tuple(keys)));
        }
        return out;
      },
      "tls::ListThreads() as C++ sees it: [(id, task, keys)], newest first.");
  t.def(
      "cpp_stats",
      [] {
        const tls::Stats s = tls::GetStats();
        py::dict d;
        d["threads"] = s.threads;
        d["tasks"] = s.tasks;
        d["values"] = s.values;
        d["slot_values"] = s.slot_values;
        d["handlers"] = s.handlers;
        return d;
      },
      "Some of tls::GetStats() as C++ sees it, as a dict.");
  t.def(
      "snapshot_holds",
      [] {
        const SnapshotHoldCounts c = CountSnapshotHolds();
        return py::make_tuple(c.held, c.pending);
      },
      "(objects live Snapshots hold, objects whose close waits for them).");
  t.def("run_in_native_thread", &RunInNativeThread, py::arg("fn"),
        "Calls fn() on a new native thread (PyGILState_Ensure/Release); returns "
        "that thread's tls::ID() as C++ saw it after fn returned.");
}

}  // namespace

int RegisterTestingBindings(PyObject* module) {
  try {
    AddTestingSubmodule(py::reinterpret_borrow<py::module_>(module));
    return 0;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_ImportError, e.what());
  }
  return -1;
}

}  // namespace tls::bindings
