#include "bindings/python_access.h"

#include <pthread.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
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

// OutsideEntry's state. Never destroyed: threads may still ask after static
// destructors ran (the answer is then "no", as finalization has begun).
struct Door {
  std::mutex mu;
  std::condition_variable idle;
  int inside = 0;
  bool shut = false;
};
Door& TheDoor() {
  static Door* door = [] {
    // A fork child has only the forking thread: nobody else is inside.
    pthread_atfork(nullptr, nullptr, [] {
      new (&TheDoor().mu) std::mutex();
      new (&TheDoor().idle) std::condition_variable();
      TheDoor().inside = 0;
    });
    return new Door();
  }();
  return *door;
}

}  // namespace

bool OutsideEntry::Enter() noexcept {
  Door& d = TheDoor();
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.shut) return false;
  ++d.inside;
  return true;
}

void OutsideEntry::Leave() noexcept {
  Door& d = TheDoor();
  std::lock_guard<std::mutex> lock(d.mu);
  if (--d.inside == 0) d.idle.notify_all();
}

void OutsideEntry::ShutDoorAndWait() noexcept {
  Door& d = TheDoor();
  Py_BEGIN_ALLOW_THREADS  // those inside need the GIL to finish
  std::unique_lock<std::mutex> lock(d.mu);
  d.shut = true;
  d.idle.wait(lock, [&] { return d.inside == 0; });
  Py_END_ALLOW_THREADS
}

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
