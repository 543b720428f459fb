// The untyped half of tls::Slot<T> (core/slot.h).
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

#include "core/internal/registry.h"
#include "core/internal/slot_retirements.h"
#include "core/internal/stub.h"
#include "tls/internal/abi.h"
#include "tls/internal/slot_ops.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {
std::atomic<size_t> g_next_slot{0};
// Every SlotRetirement not yet freed, newest first (slot_retirements.h), for
// the fork child's lock reset. The lock is taken when a record is made or
// freed, and across fork: never on a store, a get or a walk.
constinit std::mutex g_retirements_lock;
constinit SlotRetirement* g_retirements = nullptr;

void FreeRetirement(SlotRetirement* r) noexcept {
  {
    std::lock_guard<std::mutex> hold(g_retirements_lock);
    (r->prev ? r->prev->next : g_retirements) = r->next;
    if (r->next) r->next->prev = r->prev;
  }
  delete r;
}

constexpr uint64_t kEnded = 1;  // SlotRetirement::holds: the Slot is gone
constexpr uint64_t kValue = 2;  // one value alive

// In a fork child only the forking thread exists. A retire lock that another
// thread held at the fork (inside a walk of the Slot, a retire, Serialized:
// a Counter::Read, say) would stay held for ever, and the child's walks,
// Reads and retires (its Reset, its exit) would wait on it; one the forking
// thread held cannot be unlocked or re-entered there either (a recursive
// mutex checks its owner's thread id, which the child's thread does not
// keep). So the child starts every lock afresh.
// The list itself is held across the fork (prepare/parent), so the child
// never sees it half linked.
void ResetRetirementLocksInForkChild() noexcept {
  new (&g_retirements_lock) std::mutex();
  for (SlotRetirement* r = g_retirements; r != nullptr; r = r->next) {
    new (&r->lock) std::recursive_mutex();
  }
}

// Once per process (per load of the library: glibc drops the handler when it
// is unloaded); pthread_once, which glibc restarts in a child whose fork
// interrupted it.
void RegisterForkReset() noexcept {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, [] {
    pthread_atfork([] { g_retirements_lock.lock(); }, [] { g_retirements_lock.unlock(); },
                   &ResetRetirementLocksInForkChild);
  });
}
}  // namespace

void SlotArray::ThrowTooManySlots() {
  throw std::length_error("tls::Slot: over 4 billion Slots made (indexes are never reused)");
}

size_t NewSlotIndex() noexcept { return g_next_slot.fetch_add(1, std::memory_order_relaxed); }

void* SlotGet(size_t index) noexcept {
  Stub* stub = t_thread.stub;
  if (stub == nullptr || index >= stub->slots.size()) return nullptr;
  return stub->slots[index].value;
}

bool SlotStore(size_t index, void* value, const SlotOps* ops) {
  Stub* stub = t_thread.stub;
  if (value == nullptr) {
    if (stub == nullptr || index >= stub->slots.size()) return false;
  } else {
    stub = &CurrentStub();
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

SlotRetirement* NewSlotRetirement(const SlotOps& ops, std::function<void(void*)> retire) {
  RegisterForkReset();
  auto* retirement = new SlotRetirement();  // freed: slot_retirements.h
  retirement->ops = ops;
  retirement->ops.retirement = retirement;
  retirement->retire = std::move(retire);
  std::lock_guard<std::mutex> hold(g_retirements_lock);
  retirement->next = g_retirements;
  if (g_retirements) g_retirements->prev = retirement;
  g_retirements = retirement;
  return retirement;
}

void EndSlotRetirement(SlotRetirement* retirement) noexcept {
  std::function<void(void*)> retire;
  {
    std::lock_guard<std::recursive_mutex> hold(retirement->lock);
    retire.swap(retirement->retire);
  }
  // No value left anywhere: nothing points at the record any more.
  if (retirement->holds.fetch_or(kEnded, std::memory_order_acq_rel) == 0) {
    FreeRetirement(retirement);
  }
  // `retire` (and what it captured) is destroyed here, outside the lock.
}

void HoldRetirement(SlotRetirement& retirement) noexcept {
  retirement.holds.fetch_add(kValue, std::memory_order_relaxed);
}

void ReleaseRetirement(SlotRetirement& retirement) noexcept {
  if (retirement.holds.fetch_sub(kValue, std::memory_order_acq_rel) == kValue + kEnded) {
    FreeRetirement(&retirement);
  }
}

void SlotForEachThread(size_t index, SlotRetirement* retirement, bool batched, SlotVisit visit,
                       void* context) {
  std::unique_lock<std::recursive_mutex> hold;
  if (retirement != nullptr) hold = std::unique_lock<std::recursive_mutex>(retirement->lock);
  ForEachLiveStub(WalkMode{StubPart::kSlots, batched}, [&](Stub& stub) {
    if (index >= stub.slots.size()) return;
    void* value = stub.slots[index].value;
    if (value == nullptr) return;
    visit(context, InfoOf(stub), value);
  });
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
