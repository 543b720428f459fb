// File: tls/python.h (in the wheel: <package>/include/tls/python.h)
//
// A Python object as a C++ value of the engine's store, for a C++ extension
// built against the `tls` wheel (docs/python-cpp.md). `tls.cpp.set(key, obj)`
// stores any object that has no C++ form (not a str, bytes, int, float, bool
// or None) as a tls::python::Object; C++ reads it with
// tls::Get<tls::python::Object>(key), and a C++ Object stored with tls::Set
// reads back in Python, with tls.cpp.get, as the very object.
//
// Rules:
//   - get() and Hold() need the GIL (an attached thread state, on 3.13t);
//     keeping, copying or dropping the tls::Data that holds an Object does not.
//   - The engine may drop an Object on any thread at any time (a task's end,
//     a snapshot's last release, a thread's exit). Its reference then goes to
//     the `tls` binding's queue, without the GIL and without waiting for it,
//     and is dropped at the main thread's next bytecode boundary (a pending
//     call) or at the next tls call that drains the queue; never once the
//     interpreter has begun to finalize (then it is left).
//   - An Object is released, never closed: a value's close() is for tls.set's
//     store.
//   - The collector does not see references held here: a cycle through a
//     stored Object lives until the thread's reset or end.
//
// Example:
//   #include "tls/python.h"
//   #include "tls/tls.h"
//
//   // Python: tls.cpp.set("handler", handler_object)
//   if (const auto* o = tls::Get<tls::python::Object>("handler")) {
//     PyObject* handler = o->get();  // with the GIL
//     Py_INCREF(handler);            // the call may replace the stored value
//     PyObject* result = PyObject_CallNoArgs(handler);
//     Py_DECREF(handler);
//     ...
//   }
//   tls::Set("logger", tls::MakeData(tls::python::Object::Hold(logger)));
#ifndef TLS_PYTHON_H_
#define TLS_PYTHON_H_

#include <Python.h>

#include <atomic>
#include <utility>

namespace tls::python {
inline namespace v1 {

// What the `tls` extension publishes as the capsule "tls._tls._object_api".
struct ObjectApi {
  int version;                          // 1
  void (*release)(PyObject*) noexcept;  // drops one reference, from anywhere
};

class Object {
 public:
  // An Object holding a new reference to `object`. Needs the GIL, and `tls`
  // importable (its release comes from there). On failure, an empty Object,
  // with the Python error set.
  static Object Hold(PyObject* object) {
    const ObjectApi* api = Api();
    if (api == nullptr) return Object();
    Py_INCREF(object);
    return Object(object, api->release);
  }

  // For the binding: takes `reference` (a strong one) over, to be dropped by `release`.
  static Object Adopt(PyObject* reference, void (*release)(PyObject*) noexcept) noexcept {
    return Object(reference, release);
  }

  Object() noexcept = default;
  Object(Object&& other) noexcept
      : object_(std::exchange(other.object_, nullptr)), release_(other.release_) {}
  Object& operator=(Object&& other) noexcept {
    Object(std::move(other)).swap(*this);
    return *this;
  }
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  ~Object() {
    if (object_ != nullptr) release_(object_);
  }
  void swap(Object& other) noexcept {
    std::swap(object_, other.object_);
    std::swap(release_, other.release_);
  }

  // The object, borrowed: valid while this Object lives. Use it with the GIL.
  PyObject* get() const noexcept { return object_; }
  explicit operator bool() const noexcept { return object_ != nullptr; }

 private:
  Object(PyObject* object, void (*release)(PyObject*) noexcept) noexcept
      : object_(object), release_(release) {}

  static const ObjectApi* Api() {
    static std::atomic<const ObjectApi*> api{nullptr};
    const ObjectApi* found = api.load(std::memory_order_acquire);
    if (found == nullptr) {
      found = static_cast<const ObjectApi*>(PyCapsule_Import("tls._tls._object_api", 0));
      if (found != nullptr && found->version != 1) {
        PyErr_SetString(PyExc_ImportError, "tls/python.h: this tls has another object API");
        return nullptr;
      }
      if (found != nullptr) api.store(found, std::memory_order_release);
    }
    return found;
  }

  PyObject* object_ = nullptr;
  void (*release_)(PyObject*) noexcept = nullptr;
};

}  // namespace v1
}  // namespace tls::python

#endif  // TLS_PYTHON_H_
