#include "bindings/python_access.h"

#include <pthread.h>

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

// OutsideEntry's state: plain pthread objects (static initializers, nothing to
// destroy, reinitialised in a fork child, where only the forking thread is left
// and so nobody is inside).
pthread_mutex_t g_door_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_door_idle = PTHREAD_COND_INITIALIZER;
int g_inside = 0;
bool g_shut = false;

void ReinitDoorInChild() {
  g_door_mu = PTHREAD_MUTEX_INITIALIZER;
  g_door_idle = PTHREAD_COND_INITIALIZER;
  g_inside = 0;
}

[[maybe_unused]] const int g_door_fork_handler =
    pthread_atfork(nullptr, nullptr, &ReinitDoorInChild);

}  // namespace

bool OutsideEntry::Enter() noexcept {
  pthread_mutex_lock(&g_door_mu);
  const bool open = !g_shut;
  if (open) ++g_inside;
  pthread_mutex_unlock(&g_door_mu);
  return open;
}

void OutsideEntry::Leave() noexcept {
  pthread_mutex_lock(&g_door_mu);
  if (--g_inside == 0) pthread_cond_broadcast(&g_door_idle);
  pthread_mutex_unlock(&g_door_mu);
}

void OutsideEntry::ShutDoorAndWait() noexcept {
  Py_BEGIN_ALLOW_THREADS  // those inside need the GIL to finish
      pthread_mutex_lock(&g_door_mu);
  g_shut = true;
  while (g_inside > 0) pthread_cond_wait(&g_door_idle, &g_door_mu);
  pthread_mutex_unlock(&g_door_mu);
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

void ReleaseDictFromDestructor(PyObject* dict) noexcept {
  PythonCall py;
  if (!py) return;  // finalizing or gone: leak
  if (py.acquired_gil() || PyDict_GET_SIZE(dict) == 0) {
    Py_DECREF(dict);  // no Python code of this thread below, or none to run (empty)
  } else {
    ReleaseLater(dict);
  }
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
