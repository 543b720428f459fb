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
// Every SlotRetirement not yet freed, newest first (slot_retirements.h). The
// lock is taken when a Slot with a retire function is made or destroyed, and
// at unload: never on a store, a get or a walk.
constinit std::mutex g_retirements_lock;
constinit SlotRetirement* g_retirements = nullptr;
// Set once the registry was freed (FreeEndedSlotRetirements): a Slot ending
// after that frees its own record if still no stub exists.
constinit bool g_retirements_unowned = false;

void Unlink(SlotRetirement* r) noexcept {
  (r->prev ? r->prev->next : g_retirements) = r->next;
  if (r->next) r->next->prev = r->prev;
}

// In a fork child only the forking thread exists. A retire lock that another
// thread held at the fork (inside a walk of the Slot, a retire, Serialized:
// a Counter::Read, say) would stay held for ever, and the child's walks,
// Reads and retires (its Reset, its exit) would wait on it; one the forking
// thread held cannot be unlocked or re-entered there either (a recursive
// mutex checks its owner's thread id, which the child's thread does not
// keep). So the child starts every lock afresh.
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
  pthread_once(&once, [] { pthread_atfork(nullptr, nullptr, &ResetRetirementLocksInForkChild); });
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
    }
    old = std::exchange(stub->slots[index], SlotCell{value, ops});
  }
  if (old.value == nullptr) return false;
  old.ops->destroy(old.value);  // after the store: the destructor may call tls
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
  {
    std::lock_guard<std::mutex> hold(g_retirements_lock);
    retirement->ended = true;
    if (g_retirements_unowned && RegistryIsEmpty()) {
      Unlink(retirement);
      delete retirement;
    }
  }
  // `retire` (and what it captured) is destroyed here, outside the locks.
}

void FreeEndedSlotRetirements() noexcept {
  std::lock_guard<std::mutex> hold(g_retirements_lock);
  g_retirements_unowned = true;
  for (SlotRetirement* r = g_retirements; r != nullptr;) {
    SlotRetirement* next = r->next;
    if (r->ended) {
      Unlink(r);
      delete r;
    }
    r = next;
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
