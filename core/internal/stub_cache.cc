#include "core/internal/stub_cache.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>

#include "core/internal/fork.h"
#include "core/internal/registry.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

class StubCache {
 public:
  constexpr StubCache() = default;
  StubCache(const StubCache&) = delete;
  StubCache& operator=(const StubCache&) = delete;

  // Gives back what is cached and turns whatever is released later into
  // shells (TearDownAtProcessExit). Waits a bounded time for a holder
  // (critical sections are a few instructions); if it cannot get in, leaves
  // the stubs and returns false.
  bool Close() noexcept {
    for (int spins = 0; busy_.test_and_set(std::memory_order_acquire); ++spins) {
      if (spins == 10'000) return false;
      sched_yield();
    }
    closed_ = true;
    const int n = count_;
    count_ = 0;
    Stub* items[kStubCacheCapacity];
    for (int i = 0; i < n; ++i) items[i] = items_[i];
    busy_.clear(std::memory_order_release);
    for (int i = 0; i < n; ++i) RetireStubToShell(items[i]);
    return true;
  }

  Stub* Take() noexcept {
    if (busy_.test_and_set(std::memory_order_acquire)) return nullptr;
    Stub* stub = count_ > 0 ? items_[--count_] : nullptr;
    busy_.clear(std::memory_order_release);
    return stub;
  }

  bool Put(Stub* stub) noexcept {
    RegisterForkReset();
    if (busy_.test_and_set(std::memory_order_acquire)) return false;
    const bool kept = !closed_ && count_ < kStubCacheCapacity;
    if (kept) items_[count_++] = stub;
    busy_.clear(std::memory_order_release);
    return kept;
  }

  // In a fork child only one thread exists: nobody can hold the lock for real.
  void ResetInChild() noexcept {
    count_ = 0;
    busy_.clear(std::memory_order_relaxed);
  }

 private:
  void RegisterForkReset() noexcept;

  std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
  bool closed_ = false;
  int count_ = 0;
  Stub* items_[kStubCacheCapacity] = {};
};

constinit StubCache g_cache;

void StubCache::RegisterForkReset() noexcept {
  // Before the first Put nothing is cached: nothing to reset before it.
  static pthread_once_t once = PTHREAD_ONCE_INIT;  // fork.h: why not a static
  pthread_once(&once, [] {
    RegisterForkHandlers(ForkUnit::kStubCache,
                         {.child = []() noexcept { g_cache.ResetInChild(); }});
  });
}

// Empty, and small: a stub that grew big goes back to malloc rather than
// keeping its memory for the next thread.
bool Cacheable(const Stub& stub) noexcept {
  constexpr size_t kMaxTableCapacity = 8;
  constexpr size_t kMaxHandlerCapacity = 8;
  constexpr size_t kMaxSlotCells = 64;
  return stub.empty() && stub.values.capacity() <= kMaxTableCapacity &&
         stub.handlers.capacity() <= kMaxHandlerCapacity && stub.slots.capacity() <= kMaxSlotCells;
}

}  // namespace

Stub* TakeCachedStub() noexcept { return WalkingOnThisThread() ? nullptr : g_cache.Take(); }

bool CacheableStub(const Stub& stub) noexcept { return Cacheable(stub); }

bool CloseStubCache() noexcept { return g_cache.Close(); }

void ReleaseStub(Stub* stub) noexcept {
  if (Cacheable(*stub)) {
    // Empty: nothing a walker reads changes, so no write section.
    stub->role.store(StubRole::kCached, std::memory_order_release);
    if (g_cache.Put(stub)) return;
  }
  RetireStubToShell(stub);
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
