// The untyped half of tls::Slot<T> (core/slot.h): indexes, get, store, the
// walk over every thread's value, and a Slot's release at its destruction.
// Retirement records (Slots made with a retire function) are
// slot_retirements.cc.
#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "core/internal/close_values.h"
#include "core/internal/exit.h"
#include "core/internal/fork.h"
#include "core/internal/registry.h"
#include "core/internal/report.h"
#include "core/internal/slot_retirements.h"
#include "core/internal/stub.h"
#include "core/internal/stub_lifecycle.h"
#include "core/internal/task_frames.h"
#include "tls/internal/abi.h"
#include "tls/internal/slot_ops.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

// Slot indexes. A destroyed Slot's index goes on a stack of free ones and the
// next Slot takes it, so per-thread slot arrays are as long as the most Slots
// alive at once. When no Slot is alive the stack is freed and numbering
// starts again (a plugin that made Slots unloads clean). An index is not
// reused (it stays counted as alive) if its Slot's values could not all be
// released: at process exit, or if memory ran out (ReleaseSlot).
//
// The lock is taken only when a Slot is made or destroyed, never on a get,
// a store or a walk; it is held across fork so the child starts it afresh.
constinit std::mutex g_indexes_lock;
constinit size_t g_next_index = 0;   // every index below it was handed out
constinit size_t g_alive = 0;        // indexes handed out and not free
constinit size_t* g_free = nullptr;  // the free indexes (a stack)
constinit size_t g_free_count = 0;
constinit size_t g_free_capacity = 0;

// Fork children down this process's line, and the thread that made the
// latest: written only in a fork child, while it has one thread.
constinit std::atomic<uint64_t> g_fork_generation{0};
constinit pthread_t g_forking_thread{};

void RegisterForkReset() noexcept {
  static pthread_once_t once = PTHREAD_ONCE_INIT;  // fork.h: why not a static
  pthread_once(&once, [] {
    RegisterForkHandlers(ForkUnit::kSlotIndexes,
                         {.prepare = []() noexcept { g_indexes_lock.lock(); },
                          .parent = []() noexcept { g_indexes_lock.unlock(); },
                          .child =
                              []() noexcept {
                                new (&g_indexes_lock) std::mutex();
                                g_forking_thread = pthread_self();
                                g_fork_generation.fetch_add(1, std::memory_order_release);
                              }});
  });
}

// Puts `index` back for the next Slot. False if there was no memory for it
// (the index is then never reused).
bool FreeIndex(size_t index) noexcept {
  std::lock_guard<std::mutex> hold(g_indexes_lock);
  if (g_alive == 1) {  // the last Slot: start numbering again
    std::free(g_free);
    g_free = nullptr;
    g_free_count = g_free_capacity = 0;
    g_next_index = 0;
    g_alive = 0;
    return true;
  }
  if (g_free_count == g_free_capacity) {
    const size_t capacity = g_free_capacity == 0 ? 16 : 2 * g_free_capacity;
    auto* grown = static_cast<size_t*>(std::realloc(g_free, capacity * sizeof(size_t)));
    if (grown == nullptr) return false;
    g_free = grown;
    g_free_capacity = capacity;
  }
  g_free[g_free_count++] = index;
  --g_alive;
  return true;
}

}  // namespace

uint64_t ForkGeneration() noexcept { return g_fork_generation.load(std::memory_order_acquire); }

bool LostInForkChild(pthread_t holder) noexcept {
  return ForkGeneration() != 0 && pthread_equal(holder, g_forking_thread) == 0;
}

size_t NewSlotIndex() noexcept {
  RegisterForkReset();
  std::lock_guard<std::mutex> hold(g_indexes_lock);
  ++g_alive;
  if (g_free_count != 0) return g_free[--g_free_count];
  return g_next_index++;
}

void ReleaseSlot(size_t index, SlotRetirement* retirement, bool stored) noexcept {
  // Static destructors (a global Slot's) run after exit() ran the exiting
  // thread's thread_local destructors, while detached threads may still run
  // and use global Slots. So once the main thread's exit sequence ran, a
  // destroyed Slot releases nothing: its values stay with their threads, as
  // when Slots lived for ever, and its index is never reused.
  if (ProcessExiting()) return;
  if (!stored) {
    (void)FreeIndex(index);
    return;
  }
  // Take every thread's value out of its cell, in one walk of the cells. A
  // retire Slot's lock is held across the walk and the retire calls, as for
  // ForEachThread, so a thread's close round never retires a value taken here.
  std::vector<SlotCell> taken;  // the values taken out of threads' cells
  bool all_taken = true;
  {
    std::unique_lock<std::recursive_mutex> hold;
    if (retirement != nullptr) hold = std::unique_lock<std::recursive_mutex>(retirement->lock);
    ForEachLiveStub(StubPart::kSlots, [&](Stub& stub) {
      if (index >= stub.slots.size()) return;
      SlotCell& cell = stub.slots[index];
      void* value = LoadCellValue(cell);
      if (value == nullptr) return;
      try {
        taken.push_back(SlotCell{value, cell.ops});
      } catch (const std::bad_alloc&) {
        all_taken = false;  // left to its thread; the index is never reused
        return;
      }
      EmptyCellValue(cell);
    });
    if (retirement != nullptr && retirement->retire) {
      for (const SlotCell& t : taken) {
        RunContained(ErrorSource::kRetire, [&] { retirement->retire(t.value); });
      }
    }
  }
  // Closed, then destroyed, here: no thread can reach them any more.
  for (SlotCell& t : taken) CloseCell(t);
  for (const SlotCell& t : taken) DestroySlotValue(t.value, t.ops);
  if (all_taken) (void)FreeIndex(index);
}

namespace {

void* GetFrom(const Stub* stub, size_t index) noexcept {
  if (stub == nullptr || index >= stub->slots.size()) return nullptr;
  return stub->slots[index].value;
}

// Stores `value` at `index` of `stub` (the calling thread's, or the one
// under its tasks; made by `make` if missing), or deletes the value there if
// `value` is nullptr (creating nothing).
bool StoreIn(Stub* stub, Stub& (*make)(), size_t index, void* value, const SlotOps* ops) {
  if (value == nullptr) {
    if (stub == nullptr || index >= stub->slots.size()) return false;
  } else if (stub == nullptr) {
    stub = &make();
  }
  SlotCell old;
  {
    OwnerWriteSection write(*stub, StubPart::kSlots);
    if (value != nullptr) {
      stub->slots.Reserve(index);  // may throw: nothing changed
      stub->slots.NoteUsed(index);
      if (ops->retirement != nullptr) HoldRetirement(*ops->retirement);
    }
    old = std::exchange(stub->slots[index], SlotCell{value, ops});
  }
  if (old.value == nullptr) return false;
  DestroySlotValue(old.value, old.ops);  // after the store: the destructor may call tls
  return true;
}

}  // namespace

void* SlotGet(size_t index) noexcept { return GetFrom(t_thread.stub, index); }

bool SlotStore(size_t index, void* value, const SlotOps* ops) {
  return StoreIn(
      t_thread.stub, []() -> Stub& { return NewStub(); }, index, value, ops);
}

namespace {
[[gnu::noinline]] void* ThreadSlotGetUnderTasks(size_t index) noexcept {
  return GetFrom(ThreadStubUnderTasks(), index);
}
}  // namespace

void* ThreadSlotGet(size_t index) noexcept {
  // Outside tasks (the usual case) one more thread_local read than SlotGet;
  // inside one a tail call, so the fast path keeps no frame.
  if (t_thread.task != nullptr) [[unlikely]]
    return ThreadSlotGetUnderTasks(index);
  return GetFrom(t_thread.stub, index);
}

bool ThreadSlotStore(size_t index, void* value, const SlotOps* ops) {
  return StoreIn(ThreadStubUnderTasks(), &MakeThreadStubUnderTasks, index, value, ops);
}

void SlotForEachThread(size_t index, SlotRetirement* retirement, bool /*unused*/, SlotVisit visit,
                       void* context) {
  std::unique_lock<std::recursive_mutex> hold;
  if (retirement != nullptr) hold = std::unique_lock<std::recursive_mutex>(retirement->lock);
  ForEachLiveStub(StubPart::kSlots, [&](Stub& stub) {
    if (index >= stub.slots.size()) return;
    void* value = stub.slots[index].value;
    if (value == nullptr) return;
    visit(context, InfoOf(stub), value);
  });
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
