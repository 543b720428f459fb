// A thread's stub from first use to release, and process teardown
// (stub_lifecycle.h).
#include "core/internal/stub_lifecycle.h"

#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "core/internal/exit.h"
#include "core/internal/registry.h"
#include "core/internal/stub_cache.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

// IDs start at 1 and are never reused. Relaxed is enough: only uniqueness
// matters, and fetch_add gives that.
std::atomic<uint64_t> g_last_id{0};

// Runs TearDownAtProcessExit once, when static destructors run: at exit(), or
// at dlclose of the library that holds the engine.
struct ProcessTeardown {
  ~ProcessTeardown() { TearDownAtProcessExit(); }
};
constinit ProcessTeardown g_teardown;

}  // namespace

void StubReleaser::operator()(Stub* stub) const noexcept { ReleaseStub(stub); }

namespace {

std::atomic<ThreadStoreHook> g_thread_store_hook{nullptr};
// Set while the hook runs on this thread: a store its code makes runs no hook.
thread_local constinit bool t_in_thread_store_hook = false;

// Runs the hook before a thread's own store is made. True if the hook's code
// made the store meanwhile.
[[gnu::noinline]] bool RunThreadStoreHook(ThreadStoreHook hook) noexcept {
  t_in_thread_store_hook = true;
  hook();
  t_in_thread_store_hook = false;
  return t_thread.stub != nullptr;
}

}  // namespace

void SetThreadStoreHook(ThreadStoreHook hook) noexcept {
  g_thread_store_hook.store(hook, std::memory_order_release);
}

Stub& NewStub(Stub* reuse) {
  if (reuse == nullptr && t_thread.task == nullptr && t_thread.phase == Phase::kLive &&
      !t_in_thread_store_hook) {
    ThreadStoreHook hook = g_thread_store_hook.load(std::memory_order_acquire);
    if (hook != nullptr && RunThreadStoreHook(hook)) return *t_thread.stub;
  }
  StubPtr stub(reuse != nullptr ? reuse : TakeCachedStub());
  if (stub == nullptr) stub.reset(ClaimOrAllocateStub());
  // The stub is empty: a walker reads no more than these three fields of it,
  // so they need no write section. `role` goes last, releasing the others.
  const uint64_t id = g_last_id.fetch_add(1, std::memory_order_relaxed) + 1;
  stub->id.store(id, std::memory_order_relaxed);
  stub->native.store(pthread_self(), std::memory_order_relaxed);
  stub->role.store(t_thread.task != nullptr ? StubRole::kTask : StubRole::kThread,
                   std::memory_order_release);
  ArmExitHook();
  t_thread.stub = stub.release();
  t_thread.id = id;
  return *t_thread.stub;
}

StubPtr DetachStub() noexcept {
  StubPtr stub(t_thread.stub);
  t_thread.stub = nullptr;
  t_thread.id = 0;
  return stub;
}

void TearDownAtProcessExit() noexcept {
  if (!CloseStubCache()) return;  // a holder never let go: leave everything
  FreeRegistryIfUnused();
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
