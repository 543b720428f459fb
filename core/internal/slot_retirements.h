// Freeing the records of Slots made with a retire function (slot_ops.h
// SlotRetirement). Engine-private.
//
// A record must outlive its Slot while any thread's cell still points at it,
// so it is kept past ~Slot. Once no stub exists (the registry was freed at
// process exit or library unload, stub_cache.cc), no cell does: then every
// record whose Slot has ended is freed, and a Slot that ends afterwards frees
// its own record at once (EndSlotRetirement, slots.cc).
#ifndef TLS_CORE_INTERNAL_SLOT_RETIREMENTS_H_
#define TLS_CORE_INTERNAL_SLOT_RETIREMENTS_H_

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// Call only after FreeRegistryIfUnused() returned true.
void FreeEndedSlotRetirements() noexcept;

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_SLOT_RETIREMENTS_H_
