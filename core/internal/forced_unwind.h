// Internal: the forced unwind, and how a frame that catches it is marked.
// Included by the engine (core/internal/report.h) and by the embedder
// interface (tls/embedder.h), so both name one type. Not API.
#ifndef TLS_CORE_INTERNAL_FORCED_UNWIND_H_
#define TLS_CORE_INTERNAL_FORCED_UNWIND_H_

#if defined(__GLIBCXX__)
#include <cxxabi.h>
#endif

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// A forced unwind: what pthread_exit (and thread cancellation) throws through
// C++ frames on glibc. It is not an error to contain: a catch that swallows it
// aborts the process, and so does a noexcept frame it reaches. CPython ends a
// daemon thread that wakes up during interpreter shutdown this way, from inside
// whatever Python code it was running, so every frame between a user callback
// and the thread's start lets it pass: a frame catches it only to note that
// the thread is ending, then rethrows:
//   try { f(); } catch (const ForcedUnwind&) { ended = true; throw; }
#if defined(__GLIBCXX__)
using ForcedUnwind = abi::__forced_unwind;
#else
struct ForcedUnwind {};  // never thrown: this C++ library unwinds pthread_exit otherwise
#endif

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

// For functions that catch ForcedUnwind: the unwind carries no C++ object, so
// UBSan's null check flags the reference the catch clause binds (a false
// positive; libstdc++ catches it the same way). GCC can only turn UBSan off
// for the whole function: these are kept small.
#if defined(__GNUC__)
#define TLS_CATCHES_FORCED_UNWIND __attribute__((no_sanitize_undefined))
#else
#define TLS_CATCHES_FORCED_UNWIND
#endif

#endif  // TLS_CORE_INTERNAL_FORCED_UNWIND_H_
