// Internal: a thread's stub from its first use to its release, and the
// engine's teardown at process exit. Not part of the API.
//
// A stub is made on a thread's (or a task's) first store (NewStub: from the
// stub cache, a free shell of the registry, or new), with a fresh never-reused
// ID and the thread's exit hook armed; it is detached when the thread or task
// ends (or at Unload) and released: cached if it is empty and small, else
// retired to a shell on the registry (stub_cache.h, registry.h).
#ifndef TLS_CORE_INTERNAL_STUB_LIFECYCLE_H_
#define TLS_CORE_INTERNAL_STUB_LIFECYCLE_H_

#include <memory>

#include "core/internal/stub.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// Owns a detached stub; releasing it caches or retires it (stub_cache.h).
struct StubReleaser {
  void operator()(Stub* stub) const noexcept;
};
using StubPtr = std::unique_ptr<Stub, StubReleaser>;

// Makes the calling thread's stub: `reuse` (an empty stub) or a cached or new
// one, with a fresh ID and the exit hook armed. The thread must have none.
// A thread's own stub (outside tasks, the thread live) is preceded by the
// embedder's store hook, if one is set (SetThreadStoreHook): it may call
// anything, tls included, and if its code made the stub, that one is returned.
Stub& NewStub(Stub* reuse = nullptr);

// The embedder's hook run before a thread's store is made (embedder.h,
// SetThreadStoreHook); nullptr for none.
using ThreadStoreHook = void (*)() noexcept;
void SetThreadStoreHook(ThreadStoreHook hook) noexcept;
inline Stub& CurrentStub() {
  Stub* s = t_thread.stub;
  if (s == nullptr) [[unlikely]]
    return NewStub();
  return *s;
}

// Unhooks the calling thread's stub and hands it to the caller: from here on
// the thread has no stub. Destroying the result may run user code (value and
// handler destructors), which may create a new stub; that is fine.
StubPtr DetachStub() noexcept;

// At process exit or library unload (run once, by a static destructor of
// this unit): closes the stub cache, giving its stubs back as shells, so that
// stubs released later become shells too; then frees the registry if no
// thread holds a stub any more (registry.h: FreeRegistryIfUnused).
void TearDownAtProcessExit() noexcept;

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_STUB_LIFECYCLE_H_
