// Internal: the per-thread stub and the thread_local state that reaches it.
// Not part of the API; see core/README.md for the design.
#ifndef TLS_CORE_INTERNAL_STUB_H_
#define TLS_CORE_INTERNAL_STUB_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/internal/key_table.h"
#include "core/internal/slot_array.h"
#include "tls/internal/abi.h"
#include "tls/internal/handler.h"
#include "tls/internal/slot_ops.h"
#include "tls/internal/task_frame.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// What a stub is for, as the registry (registry.h) sees it.
enum class StubRole : uint8_t {
  kFree,     // an empty shell on the registry, for the next NewStub to claim
  kClaimed,  // being made into a thread's or task's stub
  kThread,   // a thread's own stub (current, or hidden by an open task)
  kTask,     // an open task's stub
  kSpare,    // an ended task's emptied stub, kept by its thread
  kCached,   // empty, in the stub cache (stub_cache.h)
  kLost,     // another thread's stub in a fork child: abandoned
};

// Everything one thread stores. Created lazily by the first Set/ID/AtExit (or
// Slot store); freed at thread exit or by Unload. Only its own thread touches
// it, so nothing in it is locked. A stub that ends empty may be cached and
// handed, empty, to another thread (stub_cache.h); it gets a new id then.
struct Stub {
  Stub() = default;
  Stub(const Stub&) = delete;
  Stub& operator=(const Stub&) = delete;
  ~Stub();  // destroys values WITHOUT closing them (Unload semantics)

  // Set by NewStub; never changes while a thread owns it. Atomic (relaxed)
  // only because a walker may read it while NewStub reuses the stub.
  std::atomic<uint64_t> id{0};
  KeyTable values;
  // The last full Capture() of `values`, handed out again while `values` is
  // unchanged; every change drops it (DropCaptureCache) so it never keeps a
  // removed value alive.
  std::shared_ptr<const CapturedValues> capture_cache;
  SlotArray slots;                // indexed by Slot<T>::index()
  std::vector<Handler> handlers;  // AtExit, oldest first

  // The registry's fields (registry.h). `writing` and `native` are written
  // by the owner; `role` by whoever holds the stub. Walkers only read them.
  std::atomic<uint8_t> writing{0};  // 1 inside an owner's write section
  std::atomic<StubRole> role{StubRole::kClaimed};
  std::atomic<pthread_t> native{};  // the owning thread (pthread_self)
  size_t registry_index = 0;        // its place in the registry's table, for good

  bool HasSlotValues() const noexcept;
  bool empty() const noexcept { return values.empty() && handlers.empty() && !HasSlotValues(); }
};

enum class Phase : uint8_t {
  kLive,     // normal operation
  kExiting,  // the exit sequence is running on this thread
  kExited,   // the native exit hook has run; a stub made now needs the late hook
};

// The one thread_local the engine reads on its fast paths. Constant-initialized
// and trivially destructible, so reading it costs no init check.
struct ThreadState {
  Stub* stub = nullptr;
  uint64_t id = 0;  // stub->id, mirrored so ID() is a single read (0: no stub)
  Phase phase = Phase::kLive;
  TaskFrame* task = nullptr;  // the innermost open task (core/task.h), if any
  Stub* spare = nullptr;      // an emptied task stub, kept for this thread's next task
};

extern thread_local constinit ThreadState t_thread;

// `stub` if it is still the calling thread's stub, else nullptr. For code that
// ran user callbacks after taking memory out of `stub`: those may have
// unloaded (freed) it, so `stub` is only compared here, never read.
inline Stub* IfStillCurrent(const Stub& stub) noexcept {
  return t_thread.stub == &stub ? t_thread.stub : nullptr;
}

// Drops `stub.capture_cache` after a change to `stub.values`. Releasing it may
// run value destructors (user code), so callers call it last and touch
// `stub` no more.
inline void DropCaptureCache(Stub& stub) noexcept {
  if (stub.capture_cache != nullptr) [[unlikely]]
    std::shared_ptr<const CapturedValues>(std::move(stub.capture_cache));
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_STUB_H_
