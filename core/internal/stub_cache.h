// Internal: a small process-wide cache of emptied stubs, so that a thread
// that starts, stores a few values and ends does not pay for allocating and
// freeing its stub and its first hash table. Not part of the API.
//
// Why: a short-lived thread's cost in the engine is mostly malloc: each block
// it allocates is malloc'ed, freed at exit into the thread's tcache, and freed
// again when glibc flushes that tcache as the thread ends. A stub that comes
// back empty at the end of the exit sequence keeps its table block and its
// handler capacity; the next thread to need a stub takes it as it is.
//
// Rules:
//   - Only empty, small stubs are cached (see Cacheable), at most
//     kStubCacheCapacity of them; anything else becomes a free shell on the
//     registry (registry.h: stubs are never freed while the process runs).
//   - The cache never blocks: a try-lock, and on contention the caller just
//     allocates or retires. So no thread waits on another, none can deadlock
//     on it, and no user code ever runs under it.
//   - fork: the child resets the cache (a lock held by a thread that does not
//     exist in the child must not disable or hang it); the stubs it held are
//     abandoned in the child.
//   - Unload of the library (dlclose) or process exit: TearDownAtProcessExit
//     (stub_lifecycle.h) closes the cache, which gives the cached stubs back;
//     stubs released after that become shells.
#ifndef TLS_CORE_INTERNAL_STUB_CACHE_H_
#define TLS_CORE_INTERNAL_STUB_CACHE_H_

#include "core/internal/stub.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

inline constexpr int kStubCacheCapacity = 32;

// A cached stub (empty, id unset), or nullptr.
Stub* TakeCachedStub() noexcept;

// Whether `stub` is empty and small enough to be kept for reuse (here, or as
// a thread's spare task stub).
bool CacheableStub(const Stub& stub) noexcept;

// Caches `stub` (not null) if it is empty and small and there is room;
// otherwise retires it to a shell (RetireStubToShell), which destroys the
// values it still holds, unclosed.
void ReleaseStub(Stub* stub) noexcept;

// Gives every cached stub back as a shell and closes the cache: from here on
// ReleaseStub retires every stub. Returns false (and does nothing) if it
// could not take the cache's lock within a bounded wait.
bool CloseStubCache() noexcept;

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_STUB_CACHE_H_
