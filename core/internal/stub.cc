#include "core/internal/stub.h"

#include <stdexcept>

#include "core/internal/slot_retirements.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

thread_local constinit ThreadState t_thread;

// Every byte of a stub is paid once per live thread: 120 bytes is malloc's
// 128-byte chunk (RSS per live thread, docs/benchmarks.md).
static_assert(sizeof(Stub) <= 120, "Stub outgrew its 128-byte malloc chunk");

Stub::~Stub() {
  slots.ForEachUsed([](SlotCell& cell) {
    if (cell.value != nullptr) DestroySlotValue(cell.value, cell.ops);
  });
}

void SlotArray::ThrowTooManySlots() {
  throw std::length_error("tls::Slot: over 4 billion Slots alive at once");
}

bool Stub::HasSlotValues() const noexcept {
  bool any = false;
  slots.ForEachUsed([&any](const SlotCell& cell) { any = any || LoadCellValue(cell) != nullptr; });
  return any;
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
