#include "bindings/python_access.h"

#include <cstdlib>
#include <utility>

namespace tls::bindings {
namespace {

// Objects waiting for DrainReleases. Trivially destructible on purpose: the
// engine's native exit hook may run after this thread's C++ thread_local
// destructors, and must still find this (empty, in practice) list.
struct PendingReleases {
  PyObject** items = nullptr;
  size_t size = 0;
  size_t capacity = 0;
};
thread_local constinit PendingReleases t_pending;

}  // namespace

void ReleaseLater(PyObject* object) noexcept {
  PendingReleases& p = t_pending;
  if (p.size == p.capacity) {
    size_t capacity = p.capacity == 0 ? 8 : p.capacity * 2;
    void* grown = std::realloc(p.items, capacity * sizeof(PyObject*));
    if (grown == nullptr) {
      // Out of memory: leak the reference rather than run Python code here.
      return;
    }
    p.items = static_cast<PyObject**>(grown);
    p.capacity = capacity;
  }
  p.items[p.size++] = object;
}

void DrainReleases() {
  PendingReleases& p = t_pending;
  // A deallocator may release more (ReleaseLater) or drain (a nested tls
  // call): take one at a time from the end.
  while (p.size > 0) {
    PyObject* object = p.items[--p.size];
    Py_DECREF(object);
  }
  std::free(std::exchange(p.items, nullptr));
  p.capacity = 0;
}

void ReleaseFromDestructor(PyObject* object) noexcept {
  PythonCall py;
  if (!py) return;  // finalizing or gone: leak
  if (py.acquired_gil()) {
    Py_DECREF(object);
  } else {
    ReleaseLater(object);
  }
}

}  // namespace tls::bindings
