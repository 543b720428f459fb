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
// Example:
//   #include "tls/tls.h"
//
//   void Worker() {
//     tls::Set("user", tls::MakeData(std::string("ada")));
//     tls::AtExit([] { std::printf("bye %s\n",
//                      tls::Get("user")->Value<std::string>().c_str()); });
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
#include "tls/internal/require_cxx20.h"  // one clear #error before C++20
#if !defined(TLS_CORE_TLS_H_) && !defined(TLS_INTERNAL_CXX_TOO_OLD)
#define TLS_CORE_TLS_H_

#include <cstdint>
#include <functional>
#include <optional>

#include "tls/counter.h"
#include "tls/data.h"
#include "tls/error.h"
#include "tls/internal/abi.h"
#include "tls/key.h"
#include "tls/slot.h"
#include "tls/task.h"
#include "tls/threads.h"

namespace tls::inline TLS_ABI_NAMESPACE {

// Set stores `data` under `key` for the calling thread, creating its stub if
// needed. Replacing a value does not close the old one (go-tls semantics): the
// old handle is simply released.
// Example: tls::Set("user", tls::MakeData(std::string("ada")));
TLS_API void Set(const Key& key, Data data);

// Get returns a copy of the handle stored under `key`, or std::nullopt. Never
// creates the stub; never allocates.
// Example: if (auto d = tls::Get("user")) Use(d->Value<std::string>());
TLS_API std::optional<Data> Get(const Key& key);

// Find is Get without the copy: a pointer to the stored handle, or nullptr.
// The pointer is valid until the calling thread's next Set, Del, Reset or
// Unload (or any tls call made by code it runs).
// Example: if (const tls::Data* d = tls::Find(7)) n += d->Value<int>();
TLS_API const Data* Find(const Key& key) noexcept;

// Del removes `key` without closing its value. Returns whether it was present.
// Never creates the stub.
TLS_API bool Del(const Key& key);

// ID returns the calling thread's ID: 1, 2, 3... in order of first use, never
// reused in the process, stable until Unload. Creates the stub if needed, so
// the main thread has a real ID too.
TLS_API uint64_t ID();

// Reset closes every value once and removes them all, keeping the ID and the
// AtExit handlers. A close may call any tls function; values it sets stay.
TLS_API void Reset();

// Unload drops the calling thread's stub: values are released WITHOUT closing,
// handlers are dropped WITHOUT running. The next Set/ID/AtExit makes a new stub
// with a new ID. Called from an AtExit handler during thread exit, it also drops
// the handlers still waiting in that round.
TLS_API void Unload();

// AtExit registers `f` to run when the calling thread ends, newest first,
// with the thread's values still readable. Creates the stub if needed.
// Registered during exit (from a handler or a close), `f` still runs, in the
// next round. A handler that throws is reported (error.h); the rest still run.
// Example: tls::AtExit([] { FlushLogs(); });
TLS_API void AtExit(std::function<void()> f);

// How many rounds thread exit runs before it gives up on code that keeps
// adding handlers or values; what is left is dropped without running or
// closing, and reported with ErrorSource::kExitRounds.
inline constexpr int kMaxExitRounds = 64;

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_TLS_H_
