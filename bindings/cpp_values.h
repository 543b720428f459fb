// File: bindings/cpp_values.h
//
// tls.cpp: Python's access to the engine's own keyed store, the one C++ code
// reads with tls::Get/tls::Find (core/store.h) without the GIL. A value set
// here from Python is a C++ value, read by any C++ extension that links the
// same engine (the wheel's libtls-core.so.3; docs/python-cpp.md), and the
// reverse. The mapping (docs/python-cpp.md, "Values across the language line"):
//
//   Python            C++ (what tls.cpp.set stores / what tls.cpp.get reads)
//   str               std::string (UTF-8)     also reads const char*
//   bytes             std::vector<std::byte>
//   bool              bool
//   int               int64_t, or uint64_t above INT64_MAX (OverflowError
//                     beyond); reads every standard integer type (not char)
//   float             double                  also reads float
//   None              std::nullptr_t
//   any other object  tls::python::Object (tls/python.h): held, released
//                     through ReleaseFromAnywhere, read back as itself
//
// Subclasses of str, int and float convert as their base type.
// Keys: a str is the C++ string key of its UTF-8 text, an int the C++ integer
// key of its value ("1" and 1 are two keys, as in C++). Any other key is a
// TypeError; a C++ value of another type read from Python is a TypeError
// naming the type. The module also holds the capsule "_object_api"
// (tls::python::ObjectApi), from which C++ code makes Objects.
#ifndef TLS_BINDINGS_CPP_VALUES_H_
#define TLS_BINDINGS_CPP_VALUES_H_

#include <Python.h>

namespace tls::bindings {

// Adds the submodule object `_cpp` (named "tls.cpp": get/set/delete) to `module`.
// Returns 0, or -1 with a Python error set.
int RegisterCppValues(PyObject* module);

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_CPP_VALUES_H_
