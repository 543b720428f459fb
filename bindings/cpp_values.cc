#include "bindings/cpp_values.h"

#include <cxxabi.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include "bindings/fast_calls.h"
#include "bindings/python_access.h"
#include "tls/python.h"
#include "tls/store.h"

namespace tls::bindings {
namespace {

using Bytes = std::vector<std::byte>;

// A Python int as C++ takes it: an int64_t, or a uint64_t above INT64_MAX.
// False, with an OverflowError naming `what`, beyond both.
struct Integer {
  bool is_unsigned;
  int64_t signed_value;
  uint64_t unsigned_value;
};
bool ToInteger(PyObject* n, const char* what, Integer& out) {
  int overflow = 0;
  const long long s = PyLong_AsLongLongAndOverflow(n, &overflow);
  if (overflow == 0) {
    if (s == -1 && PyErr_Occurred()) return false;
    out = {false, static_cast<int64_t>(s), 0};
    return true;
  }
  if (overflow > 0) {
    const unsigned long long u = PyLong_AsUnsignedLongLong(n);
    if (!(u == static_cast<unsigned long long>(-1) && PyErr_Occurred())) {
      out = {true, 0, static_cast<uint64_t>(u)};
      return true;
    }
    PyErr_Clear();
  }
  PyErr_Format(PyExc_OverflowError, "%s must fit C++ int64_t or uint64_t", what);
  return false;
}

// The C++ key for a Python key, or nullopt with a TypeError/OverflowError set.
// A str key views the str's own UTF-8 buffer: valid while `key` lives.
std::optional<tls::Key> ToKey(PyObject* key) {
  if (PyUnicode_Check(key)) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(key, &size);
    if (text == nullptr) return std::nullopt;
    return tls::Key(std::string_view(text, static_cast<size_t>(size)));
  }
  if (PyLong_Check(key)) {
    Integer n;
    if (!ToInteger(key, "a tls.cpp integer key", n)) return std::nullopt;
    return n.is_unsigned ? tls::Key(n.unsigned_value) : tls::Key(n.signed_value);
  }
  PyErr_Format(PyExc_TypeError, "a tls.cpp key must be str or int (C++ keys are), not %s",
               Py_TYPE(key)->tp_name);
  return std::nullopt;
}

// The C++ value for a Python value; false with an error set.
bool ToData(PyObject* value, tls::Data& out) {
  try {
    if (value == Py_None) {
      out = tls::MakeData(nullptr);
    } else if (PyBool_Check(value)) {
      out = tls::MakeData(value == Py_True);
    } else if (PyLong_Check(value)) {
      Integer n;
      if (!ToInteger(value, "a tls.cpp int", n)) return false;
      out = n.is_unsigned ? tls::MakeData(n.unsigned_value) : tls::MakeData(n.signed_value);
    } else if (PyFloat_Check(value)) {
      out = tls::MakeData(PyFloat_AS_DOUBLE(value));
    } else if (PyUnicode_Check(value)) {
      Py_ssize_t size = 0;
      const char* text = PyUnicode_AsUTF8AndSize(value, &size);
      if (text == nullptr) return false;
      out = tls::MakeData(std::string(text, static_cast<size_t>(size)));
    } else if (PyBytes_Check(value)) {
      const auto* p = reinterpret_cast<const std::byte*>(PyBytes_AS_STRING(value));
      out = tls::MakeData(Bytes(p, p + PyBytes_GET_SIZE(value)));
    } else {
      // Any other object: held, as a tls::python::Object (tls/python.h).
      Py_INCREF(value);
      out = tls::MakeData(tls::python::Object::Adopt(value, &ReleaseFromAnywhere));
    }
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
    return false;
  }
  return true;
}

// The Python value of a C++ value; nullptr with an error set.
PyObject* FromData(PyObject* key, const tls::Data& d) {
  if (const std::string* s = d.TryValue<std::string>()) {
    return PyUnicode_DecodeUTF8(s->data(), static_cast<Py_ssize_t>(s->size()), nullptr);
  }
  if (const char* const* c = d.TryValue<const char*>(); c != nullptr && *c != nullptr) {
    return PyUnicode_DecodeUTF8(*c, static_cast<Py_ssize_t>(std::strlen(*c)), nullptr);
  }
  if (const tls::python::Object* o = d.TryValue<tls::python::Object>()) {
    PyObject* object = o->get();
    Py_INCREF(object);
    return object;
  }
  if (const Bytes* b = d.TryValue<Bytes>()) {
    return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(b->data()),
                                     static_cast<Py_ssize_t>(b->size()));
  }
  if (const bool* v = d.TryValue<bool>()) return PyBool_FromLong(*v);
  if (const int64_t* v = d.TryValue<int64_t>()) return PyLong_FromLongLong(*v);
  if (const uint64_t* v = d.TryValue<uint64_t>()) return PyLong_FromUnsignedLongLong(*v);
  if (const int* v = d.TryValue<int>()) return PyLong_FromLong(*v);
  if (const unsigned* v = d.TryValue<unsigned>()) return PyLong_FromUnsignedLong(*v);
  if (const long long* v = d.TryValue<long long>()) return PyLong_FromLongLong(*v);
  if (const unsigned long long* v = d.TryValue<unsigned long long>()) {
    return PyLong_FromUnsignedLongLong(*v);
  }
  if (const short* v = d.TryValue<short>()) return PyLong_FromLong(*v);
  if (const unsigned short* v = d.TryValue<unsigned short>()) return PyLong_FromLong(*v);
  if (const signed char* v = d.TryValue<signed char>()) return PyLong_FromLong(*v);
  if (const unsigned char* v = d.TryValue<unsigned char>()) return PyLong_FromLong(*v);
  if (const double* v = d.TryValue<double>()) return PyFloat_FromDouble(*v);
  if (const float* v = d.TryValue<float>()) return PyFloat_FromDouble(*v);
  if (d.TryValue<std::nullptr_t>() != nullptr) Py_RETURN_NONE;
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(d.type().name(), nullptr, nullptr, &status), &std::free);
  PyErr_Format(PyExc_TypeError,
               "the C++ value under %R is a %s, which has no Python form "
               "(tls.cpp reads strings, bytes, integers, floating point, bool, nullptr "
               "and tls::python::Object)",
               key, status == 0 && name ? name.get() : d.type().name());
  return nullptr;
}

// set(key, value, /)
PyObject* Set(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) return WrongArgCount("set", nargs, 2, 2);
  std::optional<tls::Key> k = ToKey(args[0]);
  if (!k) return nullptr;
  tls::Data data;
  if (!ToData(args[1], data)) return nullptr;
  // A replaced tls::python::Object is queued (ReleaseFromAnywhere): dropped
  // here, once the engine has returned.
  PyObject* result = CallEngine([&] { tls::Set(*k, std::move(data)); });
  DrainReleases();
  return result;
}

// get(key, default=None, /)
PyObject* Get(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 2) return WrongArgCount("get", nargs, 1, 2);
  std::optional<tls::Key> k = ToKey(args[0]);
  if (!k) return nullptr;
  // Find, not Get: no handle copied (two atomic operations). The pointer
  // stays valid while no tls call runs on this thread, and converting runs
  // none before its last read of `*d`: it makes an int, float, str or bytes
  // (or increfs a held object), none of which the collector tracks, so no
  // collection (and no __del__) can start; only the error paths allocate
  // tracked objects (the exception), after `*d` was read.
  const tls::Data* d = tls::Find(*k);
  if (d == nullptr) {
    PyObject* fallback = nargs == 2 ? args[1] : Py_None;
    Py_INCREF(fallback);
    return fallback;
  }
  return FromData(args[0], *d);
}

// delete(key, /)
PyObject* Delete(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 1) return WrongArgCount("delete", nargs, 1, 1);
  std::optional<tls::Key> k = ToKey(args[0]);
  if (!k) return nullptr;
  bool removed = false;
  PyObject* done = CallEngine([&] { removed = tls::Del(*k); });
  DrainReleases();
  if (done == nullptr) return nullptr;
  Py_DECREF(done);
  return PyBool_FromLong(removed);
}

PyMethodDef g_cpp_methods[] = {
    {"set", Fast(&Set), METH_FASTCALL,
     "set($module, key, value, /)\n--\n\n"
     "set stores value in the engine's store of the calling thread (inside a\n"
     "task, the task's), as C++ tls::Set does: C++ code reads it with\n"
     "tls::Get<T>(key). key: str or int. value: str (std::string), bytes\n"
     "(std::vector<std::byte>), bool, int (int64_t; uint64_t above INT64_MAX),\n"
     "float (double), None (std::nullptr_t); any other object is held as a\n"
     "tls::python::Object (tls/python.h), which C++ reads with the GIL."},
    {"get", Fast(&Get), METH_FASTCALL,
     "get($module, key, default=None, /)\n--\n\n"
     "get returns the C++ value under key in the calling thread's engine store\n"
     "(what tls.cpp.set or C++ tls::Set stored), converted to Python, or default.\n"
     "A Python object tls.cpp.set held comes back as itself; a C++ value with\n"
     "no Python form is a TypeError naming its type."},
    {"delete", Fast(&Delete), METH_FASTCALL,
     "delete($module, key, /)\n--\n\n"
     "delete removes key from the engine's store without closing its value, as\n"
     "C++ tls::Del does. Returns whether it was there."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

namespace {

// tls/python.h's tls::python::Object::Hold finds the release here.
constexpr tls::python::ObjectApi kObjectApi = {1, &ReleaseFromAnywhere};

}  // namespace

int RegisterCppValues(PyObject* module) {
  PyObject* api = PyCapsule_New(const_cast<tls::python::ObjectApi*>(&kObjectApi),
                                "tls._tls._object_api", nullptr);
  if (api == nullptr || PyModule_AddObject(module, "_object_api", api) < 0) {
    Py_XDECREF(api);
    return -1;
  }
  PyObject* cpp = PyModule_New("tls.cpp");
  if (cpp == nullptr) return -1;
  if (PyModule_AddFunctions(cpp, g_cpp_methods) < 0 ||
      PyModule_AddObject(module, "_cpp", cpp) < 0) {
    Py_DECREF(cpp);
    return -1;
  }
  return 0;
}

}  // namespace tls::bindings
