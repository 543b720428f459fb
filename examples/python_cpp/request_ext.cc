// A C++ extension a Python service calls, built against the installed `tls`
// wheel (CMakeLists.txt: find_package(TlsCore), target tls::core). It shares
// the wheel's engine, so it sees what the Python handler set with tls.cpp.set
// and its tasks carry it: `fan_out` runs parts on a boost::asio::thread_pool
// through tls::Wrap, and every part logs the request and trace IDs that
// Python set, with no argument passing them. examples/python_cpp/handler.py
// calls it; check.sh builds it from a wheel and checks the output.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "tls/tls.h"

namespace {

// One line on stdout, flushed: Python's prints (flush=True) share the fd.
void Print(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// Context, read where it is needed, as a logging library would.
std::string Context() {
  const std::string* request = tls::Get<std::string>("request_id");
  const std::string* trace = tls::Get<std::string>("trace_id");
  return "request=" + (request ? *request : std::string("none")) +
         " trace=" + (trace ? *trace : std::string("none"));
}

// A C++ resource the handler's thread holds: closed at that thread's end,
// after every at_exit handler (Python's and C++'s), before Python's values.
struct Connection {
  std::string request;
  void Close() { Print("  C++ connection of " + request + " closed"); }
};

// fan_out(parts) -> list of str: each part's log line, in part order.
PyObject* FanOut(PyObject*, PyObject* args) {
  int parts = 0;
  if (!PyArg_ParseTuple(args, "i:fan_out", &parts)) return nullptr;
  std::vector<std::string> lines(static_cast<size_t>(parts));
  Py_BEGIN_ALLOW_THREADS  // the parts need no Python: let other handlers run
      boost::asio::thread_pool pool(4);
  std::vector<std::future<void>> done;
  for (int part = 0; part < parts; ++part) {
    auto finished = std::make_shared<std::promise<void>>();
    done.push_back(finished->get_future());
    boost::asio::post(pool, tls::Wrap([part, finished, &lines] {
                        lines[static_cast<size_t>(part)] =
                            "part " + std::to_string(part) + ": " + Context();
                        finished->set_value();
                      }));
  }
  for (auto& d : done) d.wait();
  pool.join();
  Py_END_ALLOW_THREADS PyObject* list = PyList_New(0);
  for (const std::string& line : lines) {
    PyObject* s = PyUnicode_FromStringAndSize(line.data(), static_cast<Py_ssize_t>(line.size()));
    if (s == nullptr || PyList_Append(list, s) < 0) {
      Py_XDECREF(s);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(s);
  }
  return list;
}

// open_connection(): a C++ value and a C++ AtExit handler on the calling thread.
PyObject* OpenConnection(PyObject*, PyObject*) {
  const std::string* request = tls::Get<std::string>("request_id");
  const std::string id = request ? *request : "none";
  tls::Set("connection", tls::MakeData(Connection{id}));
  tls::AtExit([id] { Print("  C++ at_exit of " + id); });
  tls::Set("rows", tls::MakeData(int64_t{42}));  // Python reads it: tls.cpp.get("rows")
  Py_RETURN_NONE;
}

PyMethodDef g_methods[] = {
    {"fan_out", &FanOut, METH_VARARGS, "fan_out(parts): log lines of parts run on a C++ pool"},
    {"open_connection", &OpenConnection, METH_NOARGS, "a C++ connection for this thread"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef g_module = {PyModuleDef_HEAD_INIT,
                        "request_ext",
                        nullptr,
                        -1,
                        g_methods,
                        nullptr,
                        nullptr,
                        nullptr,
                        nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_request_ext() {
  PyObject* m = PyModule_Create(&g_module);
#ifdef Py_GIL_DISABLED
  if (m != nullptr) PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
#endif
  return m;
}
