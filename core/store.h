// File: core/store.h
//
// The calling thread's keyed values, its ID and its exit handlers: go-tls's
// API (Set, Get, Find, Del, ID, Reset, Unload, AtExit), and nothing else.
// tls/tls.h includes it with the rest (Slot, Counter, tasks, walks); a
// translation unit that uses only these may include this alone, and compiles
// faster (docs/cpp.md, "Compile cost").
//
// Example:
//   #include "tls/store.h"
//
//   tls::Set("user", tls::MakeData(std::string("ada")));
//   if (std::string* user = tls::Get<std::string>("user")) Greet(*user);
//   tls::AtExit([] { FlushLogs(); });   // when this thread ends, newest first
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_STORE_H_
#define TLS_CORE_STORE_H_

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "tls/data.h"
#include "tls/error.h"
#include "tls/internal/abi.h"
#include "tls/internal/handler.h"
#include "tls/key.h"

namespace tls::inline TLS_ABI_NAMESPACE {

// Set stores `data` under `key` for the calling thread, creating its stub if
// needed. Replacing a value does not close the old one (go-tls semantics): the
// old handle is simply released.
// Example: tls::Set("user", tls::MakeData(std::string("ada")));
TLS_API void Set(const Key& key, Data data);

// Get returns a copy of the handle stored under `key`, or std::nullopt. Never
// creates the stub; never allocates. Check it before use: `->` on an empty
// optional is undefined behaviour (Get<T> below cannot be misused that way).
// Example: if (auto d = tls::Get("user")) Use(d->Value<std::string>());
TLS_API std::optional<Data> Get(const Key& key);

// Get<T> is the typed lookup: a pointer to the T stored under `key`, or
// nullptr if there is none or it holds another type. No copy, no exception;
// the pointer is valid as long as Find's is (below).
// Example: if (std::string* user = tls::Get<std::string>("user")) Use(*user);
template <class T>
T* Get(const Key& key) noexcept;

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
// `f` is any callable with no arguments: a lambda (move-only captures too),
// a function pointer, a std::function; an empty one (a null pointer, an
// empty std::function) throws std::invalid_argument. A small callable (up to
// two pointers of captures) is stored without allocating.
// Example: tls::AtExit([] { FlushLogs(); });
template <class F>
requires std::is_invocable_v < std::decay_t<F>
& > void AtExit(F&& f) { internal::AtExitHandler(internal::Handler(std::forward<F>(f))); }

// How many rounds thread exit runs before it gives up on code that keeps
// adding handlers or values; what is left is dropped without running or
// closing, and reported with ErrorSource::kExitRounds.
inline constexpr int kMaxExitRounds = 64;

template <class T>
T* Get(const Key& key) noexcept {
  const Data* data = Find(key);
  return data == nullptr ? nullptr : data->TryValue<T>();
}

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_STORE_H_
