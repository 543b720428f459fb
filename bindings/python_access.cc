#include "bindings/python_access.h"

#include <pthread.h>

#include <atomic>
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

// ReleaseFromAnywhere's queue: objects of any thread, dropped by a pending
// call (the main thread, between two bytecodes, GIL held) or by the next
// DrainReleases of any thread. A plain mutex (held only to push or swap; no
// Python code under it), reinitialised in a fork child, where the pending
// call may be gone: the next release there schedules another.
pthread_mutex_t g_soon_mu = PTHREAD_MUTEX_INITIALIZER;
PendingReleases g_soon;  // guarded by g_soon_mu
bool g_soon_scheduled = false;
std::atomic<bool> g_soon_waiting{false};  // g_soon.size > 0, read without the lock

void ReinitSoonInChild() {
  g_soon_mu = PTHREAD_MUTEX_INITIALIZER;
  g_soon_scheduled = false;
}

[[maybe_unused]] const int g_soon_fork_handler =
    pthread_atfork(nullptr, nullptr, &ReinitSoonInChild);

// Drops what the queue holds. GIL held; the deallocators may run any Python
// code, tls included, and queue more: taken in batches until it stays empty.
void DrainSoon() {
  while (g_soon_waiting.load(std::memory_order_acquire)) {
    pthread_mutex_lock(&g_soon_mu);
    PendingReleases batch = std::exchange(g_soon, PendingReleases{});
    g_soon_waiting.store(false, std::memory_order_release);
    pthread_mutex_unlock(&g_soon_mu);
    for (size_t i = 0; i < batch.size; ++i) Py_DECREF(batch.items[i]);
    std::free(batch.items);
  }
}

int DrainSoonFromPendingCall(void*) {
  pthread_mutex_lock(&g_soon_mu);
  g_soon_scheduled = false;
  pthread_mutex_unlock(&g_soon_mu);
  DrainSoon();
  return 0;
}

// Appends to `list`; false (nothing added) if out of memory.
bool Append(PendingReleases& list, PyObject* object) noexcept {
  if (list.size == list.capacity) {
    size_t capacity = list.capacity == 0 ? 8 : list.capacity * 2;
    void* grown = std::realloc(list.items, capacity * sizeof(PyObject*));
    if (grown == nullptr) return false;
    list.items = static_cast<PyObject**>(grown);
    list.capacity = capacity;
  }
  list.items[list.size++] = object;
  return true;
}

}  // namespace

void ReleaseFromAnywhere(PyObject* object) noexcept {
  // Finalizing or gone: nothing may run Python any more, leave it.
  if (PythonFinalizing() || !Py_IsInitialized()) return;
  pthread_mutex_lock(&g_soon_mu);
  const bool added = Append(g_soon, object);  // out of memory: leak it
  if (added) g_soon_waiting.store(true, std::memory_order_release);
  const bool schedule = added && !g_soon_scheduled;
  if (schedule) g_soon_scheduled = true;
  pthread_mutex_unlock(&g_soon_mu);
  // Needs neither the GIL nor a thread state. If CPython's queue of pending
  // calls is full, the next release tries again; DrainReleases drains too.
  if (schedule && Py_AddPendingCall(&DrainSoonFromPendingCall, nullptr) != 0) {
    pthread_mutex_lock(&g_soon_mu);
    g_soon_scheduled = false;
    pthread_mutex_unlock(&g_soon_mu);
  }
}

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
  // Out of memory: leak the reference rather than run Python code here.
  Append(t_pending, object);
}

void DrainReleases() {
  DrainSoon();
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
