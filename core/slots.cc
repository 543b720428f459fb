// The untyped half of tls::Slot<T> (core/slot.h).
#include <algorithm>
#include <atomic>
#include <utility>

#include "core/internal/stub.h"
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
    if (index >= stub->slots.size()) {
      stub->slots.resize(std::max(index + 1, stub->slots.size() * 2));
    }
  }
  SlotCell old = std::exchange(stub->slots[index], SlotCell{value, ops});
  if (old.value == nullptr) return false;
  old.ops->destroy(old.value);  // after the store: the destructor may call tls
  return true;
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
