// File: core/thread_info.h
//
// tls::ThreadInfo names the thread (or task) whose value a walk is visiting
// (Slot<T>::ForEachThread) or listing (tls::ListThreads, "tls/threads.h").
// Included by "tls/slot.h".
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_THREAD_INFO_H_
#define TLS_CORE_THREAD_INFO_H_

#include <pthread.h>

#include <cstdint>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE {

struct ThreadInfo {
  uint64_t id = 0;     // what tls::ID() returns on that thread (or in that task)
  pthread_t native{};  // the thread running it: pthread_self() there; for a
                       // std::thread, its native_handle(); in Python, threading.get_ident()
  bool task = false;   // a task's view (tls::TaskScope, Run, Wrap), not a thread's own
};

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_THREAD_INFO_H_
