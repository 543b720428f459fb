// A user's own C++ extension, as one would write it against the installed
// wheel: it links the wheel's engine (python -m tls --includes --libs, or
// find_package(TlsCore) with --cmake-dir) and knows nothing of the binding.
// cpp_engine_test.py builds it that way against an installed wheel, and
// Bazel builds it against //core:libtls-core.so.3 (tests/python/BUILD).
// Plain C API to keep the test's build one compiler call; a pybind11 module
// links the engine the same way.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tls/python.h"
#include "tls/tls.h"

namespace {

// What C++ callbacks saw, in order: at_exit handlers and closes run at thread
// end, where this extension cannot call Python, so they record here.
std::mutex g_log_lock;
std::vector<std::string> g_log;

void Log(std::string line) {
  std::lock_guard<std::mutex> lock(g_log_lock);
  g_log.push_back(std::move(line));
}

PyObject* StrOrNone(const std::string* s) {
  if (s == nullptr) Py_RETURN_NONE;
  return PyUnicode_FromStringAndSize(s->data(), static_cast<Py_ssize_t>(s->size()));
}

// id() -> tls::ID()
PyObject* Id(PyObject*, PyObject*) { return PyLong_FromUnsignedLongLong(tls::ID()); }

// get_str(key) -> tls::Get<std::string>(key), or None
PyObject* GetStr(PyObject*, PyObject* args) {
  const char* key = nullptr;
  if (!PyArg_ParseTuple(args, "s:get_str", &key)) return nullptr;
  return StrOrNone(tls::Get<std::string>(key));
}

// set_str(key, value): tls::Set(key, MakeData(std::string(value)))
PyObject* SetStr(PyObject*, PyObject* args) {
  const char* key = nullptr;
  const char* value = nullptr;
  if (!PyArg_ParseTuple(args, "ss:set_str", &key, &value)) return nullptr;
  tls::Set(key, tls::MakeData(std::string(value)));
  Py_RETURN_NONE;
}

// set_int(key, n): an `int`, which Python reads as any C++ integer
PyObject* SetInt(PyObject*, PyObject* args) {
  const char* key = nullptr;
  int n = 0;
  if (!PyArg_ParseTuple(args, "si:set_int", &key, &n)) return nullptr;
  tls::Set(key, tls::MakeData(n));
  Py_RETURN_NONE;
}

// get_int64(key) -> tls::Get<int64_t>(key), or None: what tls.cpp.set(key, n) stored
PyObject* GetInt64(PyObject*, PyObject* args) {
  const char* key = nullptr;
  if (!PyArg_ParseTuple(args, "s:get_int64", &key)) return nullptr;
  const int64_t* n = tls::Get<int64_t>(key);
  if (n == nullptr) Py_RETURN_NONE;
  return PyLong_FromLongLong(*n);
}

// set_point(key): a C++ type with no Python form
struct Point {
  int x, y;
};
PyObject* SetPoint(PyObject*, PyObject* args) {
  const char* key = nullptr;
  if (!PyArg_ParseTuple(args, "s:set_point", &key)) return nullptr;
  tls::Set(key, tls::MakeData(Point{1, 2}));
  Py_RETURN_NONE;
}

// set_object(key, obj): tls::Set(key, MakeData(tls::python::Object::Hold(obj)))
PyObject* SetObject(PyObject*, PyObject* args) {
  const char* key = nullptr;
  PyObject* object = nullptr;
  if (!PyArg_ParseTuple(args, "sO:set_object", &key, &object)) return nullptr;
  tls::python::Object held = tls::python::Object::Hold(object);
  if (!held) return nullptr;
  tls::Set(key, tls::MakeData(std::move(held)));
  Py_RETURN_NONE;
}

// get_object(key) -> what tls::Get<tls::python::Object>(key) holds, or None
PyObject* GetObject(PyObject*, PyObject* args) {
  const char* key = nullptr;
  if (!PyArg_ParseTuple(args, "s:get_object", &key)) return nullptr;
  const tls::python::Object* held = tls::Get<tls::python::Object>(key);
  if (held == nullptr) Py_RETURN_NONE;
  Py_INCREF(held->get());
  return held->get();
}

// drop_off_thread(key) -> None: takes the value under `key` out of the store
// and lets a std::thread with no Python state drop the last handle to it.
PyObject* DropOffThread(PyObject*, PyObject* args) {
  const char* key = nullptr;
  if (!PyArg_ParseTuple(args, "s:drop_off_thread", &key)) return nullptr;
  std::optional<tls::Data> taken = tls::Get(key);
  tls::Del(key);
  Py_BEGIN_ALLOW_THREADS std::thread([&taken] { taken.reset(); }).join();
  Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

// native_gil_sections() -> (value, same id): a native thread enters Python
// twice (PyGILState_Ensure/Release), storing from C++ in the first section.
PyObject* NativeGilSections(PyObject*, PyObject*) {
  std::optional<std::string> seen;
  uint64_t first = 0, second = 0;
  Py_BEGIN_ALLOW_THREADS std::thread([&] {
    PyGILState_STATE g = PyGILState_Ensure();
    tls::Set("native", tls::MakeData(std::string("kept")));
    first = tls::ID();
    PyGILState_Release(g);
    g = PyGILState_Ensure();
    if (const std::string* s = tls::Get<std::string>("native")) seen = *s;
    second = tls::ID();
    PyGILState_Release(g);
  }).join();
  Py_END_ALLOW_THREADS if (!seen) return Py_BuildValue("(OO)", Py_None,
                                                       first == second ? Py_True : Py_False);
  return Py_BuildValue("(s#O)", seen->data(), static_cast<Py_ssize_t>(seen->size()),
                       first == second ? Py_True : Py_False);
}

// set_closing(key, tag): a value whose close logs "close <tag>"
struct Closing {
  std::string tag;
  void Close() { Log("close " + tag); }
};
PyObject* SetClosing(PyObject*, PyObject* args) {
  const char* key = nullptr;
  const char* tag = nullptr;
  if (!PyArg_ParseTuple(args, "ss:set_closing", &key, &tag)) return nullptr;
  tls::Set(key, tls::MakeData(Closing{tag}));
  Py_RETURN_NONE;
}

// at_exit(tag): a C++ AtExit handler that logs "at_exit <tag>"
PyObject* AtExit(PyObject*, PyObject* args) {
  const char* tag = nullptr;
  if (!PyArg_ParseTuple(args, "s:at_exit", &tag)) return nullptr;
  tls::AtExit([t = std::string(tag)] { Log("at_exit " + t); });
  Py_RETURN_NONE;
}

// log(line): Python callbacks write to the same log, for one timeline
PyObject* LogLine(PyObject*, PyObject* args) {
  const char* line = nullptr;
  if (!PyArg_ParseTuple(args, "s:log", &line)) return nullptr;
  Log(line);
  Py_RETURN_NONE;
}

// take_log() -> the log's lines, emptied
PyObject* TakeLog(PyObject*, PyObject*) {
  std::vector<std::string> lines;
  {
    std::lock_guard<std::mutex> lock(g_log_lock);
    lines.swap(g_log);
  }
  PyObject* list = PyList_New(0);
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

// on_cpp_thread(key) -> (value, task id, thread id): tls::Wrap carries the
// calling thread's C++ values to a std::thread, with the GIL released.
PyObject* OnCppThread(PyObject*, PyObject* args) {
  const char* key = nullptr;
  if (!PyArg_ParseTuple(args, "s:on_cpp_thread", &key)) return nullptr;
  std::optional<std::string> seen;
  uint64_t task_id = 0, thread_id = 0;
  auto task = tls::Wrap([&, k = std::string(key)] {
    if (const std::string* s = tls::Get<std::string>(k)) seen = *s;
    task_id = tls::ID();
  });
  Py_BEGIN_ALLOW_THREADS std::thread t([&] {
    thread_id = tls::ID();
    task();
  });
  t.join();
  Py_END_ALLOW_THREADS if (seen) return Py_BuildValue(
      "(s#KK)", seen->data(), static_cast<Py_ssize_t>(seen->size()),
      static_cast<unsigned long long>(task_id), static_cast<unsigned long long>(thread_id));
  return Py_BuildValue("(OKK)", Py_None, static_cast<unsigned long long>(task_id),
                       static_cast<unsigned long long>(thread_id));
}

PyMethodDef g_methods[] = {
    {"id", &Id, METH_NOARGS, "tls::ID()"},
    {"get_str", &GetStr, METH_VARARGS, "tls::Get<std::string>(key)"},
    {"set_str", &SetStr, METH_VARARGS, "tls::Set(key, MakeData(std::string))"},
    {"set_int", &SetInt, METH_VARARGS, "tls::Set(key, MakeData(int))"},
    {"get_int64", &GetInt64, METH_VARARGS, "tls::Get<int64_t>(key)"},
    {"set_point", &SetPoint, METH_VARARGS, "tls::Set(key, MakeData(Point{1, 2}))"},
    {"set_object", &SetObject, METH_VARARGS, "a tls::python::Object from C++"},
    {"get_object", &GetObject, METH_VARARGS, "tls::Get<tls::python::Object>(key)"},
    {"drop_off_thread", &DropOffThread, METH_VARARGS, "the last handle dropped off Python"},
    {"native_gil_sections", &NativeGilSections, METH_NOARGS, "C++ stores in GIL sections"},
    {"set_closing", &SetClosing, METH_VARARGS, "a value whose Close() logs"},
    {"at_exit", &AtExit, METH_VARARGS, "a C++ AtExit handler that logs"},
    {"log", &LogLine, METH_VARARGS, "appends a line to the log"},
    {"take_log", &TakeLog, METH_NOARGS, "what the C++ callbacks logged"},
    {"on_cpp_thread", &OnCppThread, METH_VARARGS, "tls::Wrap onto a std::thread"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef g_module = {PyModuleDef_HEAD_INIT,
                        "tls_cpp_peer",
                        nullptr,
                        -1,
                        g_methods,
                        nullptr,
                        nullptr,
                        nullptr,
                        nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_tls_cpp_peer() {
  PyObject* m = PyModule_Create(&g_module);
#ifdef Py_GIL_DISABLED
  if (m != nullptr) PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
#endif
  return m;
}
