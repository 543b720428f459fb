// The C++ side of the cross-language benchmark rows (benchmarks/python_bench.py,
// CROSS_PAIRS): C++ reads from an extension, as a user's extension makes them.
// Built twice (BUILD): `tls_cross` links the wheel's engine (libtls-core.so.3,
// found by its SONAME once `import tls` loaded it), `tls_cross_static` has a
// private static copy of the engine, the layout before one engine per process.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <string>

#include "tls/tls.h"

#ifndef TLS_CROSS_MODULE
#error "build with -DTLS_CROSS_MODULE=<module name> (benchmarks/cross_ext/BUILD)"
#endif
#define TLS_CROSS_STR2(x) #x
#define TLS_CROSS_STR(x) TLS_CROSS_STR2(x)
#define TLS_CROSS_INIT2(x) PyInit_##x
#define TLS_CROSS_INIT(x) TLS_CROSS_INIT2(x)

namespace {

// set_cpp(): tls::Set("cpp", std::string) from C++.
PyObject* SetCpp(PyObject*, PyObject*) {
  tls::Set("cpp", tls::MakeData(std::string("a C++ string")));
  Py_RETURN_NONE;
}

// get_loop(which, n): n reads of tls::Get<std::string> under the literal key
// "py" (which == 0: what Python stored with tls.cpp.set) or "cpp" (1: what
// set_cpp stored). Returns how many found a value, so the reads stay.
PyObject* GetLoop(PyObject*, PyObject* args) {
  int which = 0;
  long long n = 0;
  if (!PyArg_ParseTuple(args, "iL:get_loop", &which, &n)) return nullptr;
  long long found = 0;
  if (which == 0) {
    for (long long i = 0; i < n; ++i) {
      const std::string* s = tls::Get<std::string>("py");
      asm volatile("" : : "r"(s) : "memory");
      found += s != nullptr;
    }
  } else {
    for (long long i = 0; i < n; ++i) {
      const std::string* s = tls::Get<std::string>("cpp");
      asm volatile("" : : "r"(s) : "memory");
      found += s != nullptr;
    }
  }
  return PyLong_FromLongLong(found);
}

PyMethodDef g_methods[] = {
    {"set_cpp", &SetCpp, METH_NOARGS, "tls::Set(\"cpp\", std::string) from C++"},
    {"get_loop", &GetLoop, METH_VARARGS, "get_loop(which, n): n C++ reads"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef g_module = {PyModuleDef_HEAD_INIT,
                        TLS_CROSS_STR(TLS_CROSS_MODULE),
                        nullptr,
                        -1,
                        g_methods,
                        nullptr,
                        nullptr,
                        nullptr,
                        nullptr};

}  // namespace

PyMODINIT_FUNC TLS_CROSS_INIT(TLS_CROSS_MODULE)() {
  PyObject* m = PyModule_Create(&g_module);
#ifdef Py_GIL_DISABLED
  if (m != nullptr) PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
#endif
  return m;
}
