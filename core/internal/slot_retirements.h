// The lifetime of the records of Slots made with a retire function
// (slot_ops.h SlotRetirement). Engine-private.
//
// A record must outlive its Slot while any of the Slot's values lives: the
// value's cell (in a stub, or detached in a close round, or in a stub being
// emptied off the registry) points at the record's ops, and the close round
// takes the record's lock. So the record counts the values alive: a store of
// a value adds one (SlotStore), every destruction of one removes it
// (DestroySlotValue, the only way the engine destroys a Slot value), and
// ~Slot sets the "ended" bit. Whichever of the last two comes last frees the
// record: a plugin with a Counter unloads clean (a record never freed would
// leak 104 bytes per dlopen/dlclose).
#ifndef TLS_CORE_INTERNAL_SLOT_RETIREMENTS_H_
#define TLS_CORE_INTERNAL_SLOT_RETIREMENTS_H_

#include "tls/internal/abi.h"
#include "tls/internal/slot_ops.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// A value of the record's Slot is about to be stored in a cell.
void HoldRetirement(SlotRetirement& retirement) noexcept;
// One of its values was destroyed; frees the record if it was the last and
// the Slot is gone.
void ReleaseRetirement(SlotRetirement& retirement) noexcept;

// Destroys a Slot value (without closing it) and releases its record's hold.
inline void DestroySlotValue(void* value, const SlotOps* ops) noexcept {
  SlotRetirement* retirement = ops->retirement;  // read before: the value may be the last
  ops->destroy(value);
  if (retirement != nullptr) ReleaseRetirement(*retirement);
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_SLOT_RETIREMENTS_H_
