// Internal: the untyped half of tls::Slot<T>. Not part of the API.
#ifndef TLS_CORE_INTERNAL_SLOT_OPS_H_
#define TLS_CORE_INTERNAL_SLOT_OPS_H_

#include <cstddef>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// How to close and destroy the T behind a slot's void*.
struct SlotOps {
  void (*close)(void*);             // nullptr: T has no close
  void (*destroy)(void*) noexcept;  // delete static_cast<T*>(p)
};

// A fresh slot index; indexes are never reused. Lock-free.
TLS_API size_t NewSlotIndex() noexcept;

// This thread's value at `index`, or nullptr. Never creates the stub.
TLS_API void* SlotGet(size_t index) noexcept;

// Stores `value` (may be nullptr to delete) at `index` in this thread's stub,
// creating the stub unless deleting. The previous value, if any, is destroyed
// without closing after the store is consistent again. Returns whether there
// was a previous value.
TLS_API bool SlotStore(size_t index, void* value, const SlotOps* ops);

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_SLOT_OPS_H_
