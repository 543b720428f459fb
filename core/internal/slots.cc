// The untyped half of tls::Slot<T> (core/slot.h): indexes, get, store, and
// the walk over every thread's value. Retirement records (Slots made with a
// retire function) are slot_retirements.cc.
#include <atomic>
#include <cstddef>
#include <mutex>
#include <utility>

#include "core/internal/registry.h"
#include "core/internal/slot_retirements.h"
#include "core/internal/stub.h"
#include "core/internal/stub_lifecycle.h"
#include "tls/internal/abi.h"
#include "tls/internal/slot_ops.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {
std::atomic<size_t> g_next_slot{0};
}  // namespace

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
