// Internal: the untyped half of tls::Slot<T>. Not part of the API.
#ifndef TLS_CORE_INTERNAL_SLOT_OPS_H_
#define TLS_CORE_INTERNAL_SLOT_OPS_H_

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>

#include "tls/internal/abi.h"
#include "tls/thread_info.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

struct SlotRetirement;

// How to close and destroy the T behind a slot's void*.
struct SlotOps {
  void (*close)(void*);                  // nullptr: T has no close
  void (*destroy)(void*) noexcept;       // delete static_cast<T*>(p)
  SlotRetirement* retirement = nullptr;  // set for a Slot made with a retire function
};

// What a Slot made with a retire function shares with the engine. Allocated
// once per such Slot and kept past it while any of its values lives (a cell
// of a thread that outlives the Slot points at `ops`): freed by whichever
// comes last, ~Slot or the destruction of its last value (`holds`,
// core/internal/slot_retirements.h). ~Slot empties `retire` under `lock`.
struct SlotRetirement {
  SlotOps ops;
  std::recursive_mutex lock;          // held by each retire call and each walk of the slot
  std::function<void(void*)> retire;  // empty once the Slot is gone
  // 2 x (values of this Slot alive, on any thread), + 1 once the Slot is gone.
  std::atomic<uint64_t> holds{0};
  // The engine's list of every record (slots.cc), under its lock.
  SlotRetirement* prev = nullptr;
  SlotRetirement* next = nullptr;
};

TLS_API SlotRetirement* NewSlotRetirement(const SlotOps& ops, std::function<void(void*)> retire);
TLS_API void EndSlotRetirement(SlotRetirement* retirement) noexcept;

// Calls visit(context, who, value) for each live thread's (and open task's)
// value at `index`, under `retirement`'s lock if not null. See
// Slot<T>::ForEachThread for the guarantees.
using SlotVisit = void (*)(void* context, const ThreadInfo& who, void* value);
// The bool is unused (every walk now holds only the stub it visits); it stays
// for ABI v3.
TLS_API void SlotForEachThread(size_t index, SlotRetirement* retirement, bool batched,
                               SlotVisit visit, void* context);

// An index for a new Slot: a destroyed Slot's, or a fresh one. Takes a lock
// no get, store or walk takes.
TLS_API size_t NewSlotIndex() noexcept;

// At a Slot's destruction: takes every thread's value at `index` out of its
// cell (one walk), hands each to the retire function if any, closes each,
// destroys each, all on the calling thread, then frees the index for the next
// Slot. `stored`: whether the Slot ever stored a value (if not, no walk).
// Once the process is exiting it releases nothing and keeps the index
// (internal/slots.cc). See Slot<T>::~Slot.
TLS_API void ReleaseSlot(size_t index, SlotRetirement* retirement, bool stored) noexcept;

// This thread's value at `index`, or nullptr. Never creates the stub.
TLS_API void* SlotGet(size_t index) noexcept;

// Stores `value` (may be nullptr to delete) at `index` in this thread's stub,
// creating the stub unless deleting. The previous value, if any, is destroyed
// without closing after the store is consistent again. Returns whether there
// was a previous value.
TLS_API bool SlotStore(size_t index, void* value, const SlotOps* ops);

// For a typed value that records its thread (tls::Counter's shards): how many
// fork children this process is down its line (0 in the original process),
// and whether `holder` is a thread a fork left behind (the latest fork made
// this process from another thread). Lock-free.
TLS_API uint64_t ForkGeneration() noexcept;
TLS_API bool LostInForkChild(pthread_t holder) noexcept;

// SlotGet and SlotStore for a thread-scoped Slot: the thread's own stub, also
// inside a task (where SlotGet and SlotStore use the task's).
TLS_API void* ThreadSlotGet(size_t index) noexcept;
TLS_API bool ThreadSlotStore(size_t index, void* value, const SlotOps* ops);

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_SLOT_OPS_H_
