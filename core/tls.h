// File: core/tls.h
//
// Thread-local storage that cleans up after itself: every thread, however it was
// started (std::thread, pthread_create, a library's pool, the main thread), gets a
// private key/value store, a unique never-reused ID, and at-exit handlers. Values
// wrapped by MakeData are closed automatically at Reset and when the thread ends.
// This is go-tls's API on real thread-exit hooks. Depend on `//core`.
//
// Cost model: Get/Find/Set/Del/ID touch only the calling thread's stub, reached
// through one thread_local pointer; there is no lock on any of them. A keyed get
// is one hash (computed when the Key is built) and an open-addressing probe, with
// no allocation. Slot<T> (core/slot.h) is the typed fast path.
//
// This header includes every public one: store.h (the keyed values, ID and
// AtExit: go-tls's API), data.h, key.h, error.h, slot.h, counter.h, task.h,
// threads.h. A file that uses only the keyed values may include store.h alone.
//
// Example:
//   #include "tls/tls.h"
//
//   void Worker() {
//     tls::Set("user", tls::MakeData(std::string("ada")));
//     tls::AtExit([] {
//       if (std::string* user = tls::Get<std::string>("user")) {
//         std::printf("bye %s\n", user->c_str());
//       }
//     });
//     uint64_t me = tls::ID();   // unique for this thread, never reused
//   }  // thread ends: handler prints "bye ada", then the value is closed and freed
//
// Thread exit, in order (see core/README.md for the full contract):
//   1. AtExit handlers run newest first, with every value still readable;
//   2. then every value is closed once and released;
//   3. anything added by steps 1-2 is handled the same way in a further round,
//      up to kMaxExitRounds rounds; then the stub is freed.
// On the main thread this happens at normal process exit (return from main or
// exit()), before static destructors and atexit handlers run.
//
// Every function may be called from inside an AtExit handler or a value's close
// (re-entrancy is defined; see each function).
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_TLS_H_
#define TLS_CORE_TLS_H_

#include "tls/counter.h"
#include "tls/data.h"
#include "tls/error.h"
#include "tls/key.h"
#include "tls/slot.h"
#include "tls/store.h"
#include "tls/task.h"
#include "tls/threads.h"

#endif  // TLS_CORE_TLS_H_
