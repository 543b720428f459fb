#include "core/internal/close_values.h"

#include <sched.h>

#include <mutex>
#include <utility>
#include <vector>

#include "core/internal/captured_values.h"
#include "core/internal/registry.h"
#include "core/internal/report.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

// Destroys detached slot values (without closing them), each once: when asked,
// or at scope end if a forced unwind left a close early.
class SlotDestroyer {
 public:
  explicit SlotDestroyer(std::vector<SlotCell>& cells) noexcept : cells_(cells) {}
  ~SlotDestroyer() { DestroyAll(); }
  SlotDestroyer(const SlotDestroyer&) = delete;
  SlotDestroyer& operator=(const SlotDestroyer&) = delete;

  void DestroyAll() noexcept {
    for (SlotCell& cell : cells_) {
      if (void* value = std::exchange(cell.value, nullptr)) cell.ops->destroy(value);
    }
  }

 private:
  std::vector<SlotCell>& cells_;
};

// Takes each value of a Slot made with a retire function out of the stub and
// hands it to the function, holding that Slot's lock across both, so a walk
// of the Slot sees the value live or retired, never both (slot.h). The value
// goes to `retired`, at its index, to be closed and destroyed with the
// round's other values (a retire function is not a close: the store is not
// detached yet). A retire function may call tls, Unload included: the stub
// is looked up again for every cell.
void RetireSlotValues(const Stub& stub, std::vector<SlotCell>& retired) {
  for (size_t i = 0;; ++i) {
    Stub* current = IfStillCurrent(stub);
    if (current == nullptr || i >= current->slots.size()) return;
    const SlotCell cell = current->slots[i];
    if (cell.value == nullptr || cell.ops->retirement == nullptr) continue;
    if (retired.size() <= i) retired.resize(current->slots.size());  // may throw: nothing moved
    SlotRetirement& retirement = *cell.ops->retirement;
    // The lock is taken inside the write section but never waited for there:
    // a walk of this Slot holds the lock and may be waiting for this section.
    for (;;) {
      {
        OwnerWriteSection write(*current, StubPart::kSlots);
        if (retirement.lock.try_lock()) {
          current->slots[i] = SlotCell{};
          break;
        }
      }
      sched_yield();
    }
    retired[i] = cell;  // destroyed by the caller's SlotDestroyer, even on a forced unwind
    std::lock_guard<std::recursive_mutex> hold(retirement.lock, std::adopt_lock);
    if (retirement.retire) {
      RunContained(ErrorSource::kRetire, [&] { retirement.retire(cell.value); });
    }
  }
}

// Puts each retired value back at its index among the detached ones, where
// that cell is free, so all are closed in index order.
void MergeRetired(std::vector<SlotCell>& retired, std::vector<SlotCell>& slots) noexcept {
  for (size_t i = 0; i < retired.size() && i < slots.size(); ++i) {
    if (retired[i].value != nullptr && slots[i].value == nullptr) {
      slots[i] = std::exchange(retired[i], SlotCell{});
    }
  }
}

}  // namespace

void CloseAllValues(Stub& stub) {
  std::vector<SlotCell> retired;  // by index; empty unless the stub has slots
  SlotDestroyer retired_values(retired);
  if (!stub.slots.empty()) [[unlikely]] {
    RetireSlotValues(stub, retired);
  }
  KeyTable values;
  std::shared_ptr<const CapturedValues> cached_snapshot;
  std::vector<SlotCell> slots;
  // Unless a retire function unloaded the stub (its values went unclosed).
  if (Stub* current = IfStillCurrent(stub)) {
    OwnerWriteSection write(*current, StubPart::kAll);
    values = std::move(current->values);
    // The reused snapshot holds the same values: it goes with them, released last.
    cached_snapshot = std::move(current->capture_cache);
    slots = std::move(current->slots);
    current->slots.clear();
  }
  // From here on `stub` is not touched: user code below may free it (Unload).
  // If a close ends the thread (a forced unwind passes RunContained), the
  // locals release what this round had not closed yet, without closing it.
  SlotDestroyer slot_values(slots);
  MergeRetired(retired, slots);

  // Inside a task, values it was given by a snapshot are not its to close.
  values.ForEach([](Data& d) {
    if (!CapturedByOpenTask(d)) RunContained(ErrorSource::kClose, [&] { d.Close(); });
  });
  for (std::vector<SlotCell>* cells : {&slots, &retired}) {
    for (SlotCell& cell : *cells) {
      if (cell.value != nullptr && cell.ops->close != nullptr) {
        RunContained(ErrorSource::kClose, [&] { cell.ops->close(cell.value); });
      }
    }
  }
  slot_values.DestroyAll();
  retired_values.DestroyAll();
  values.Clear();  // releases the handles; destructors may call tls
  // Give the emptied block back, so the next Set (after Reset, or the next
  // thread to reuse this stub) does not allocate; unless the stub has grown a
  // table of its own meanwhile.
  Stub* current = IfStillCurrent(stub);
  if (current != nullptr && current->values.capacity() == 0) {
    OwnerWriteSection write(*current, StubPart::kTable);
    current->values = std::move(values);
  }
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
