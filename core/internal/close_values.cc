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

// A detached slot value, destroyed (unclosed) when this goes.
class OneSlotValue {
 public:
  explicit OneSlotValue(SlotCell cell) noexcept : cell_(cell) {}
  ~OneSlotValue() { cell_.ops->destroy(cell_.value); }
  OneSlotValue(const OneSlotValue&) = delete;
  OneSlotValue& operator=(const OneSlotValue&) = delete;

 private:
  SlotCell cell_;
};

// Retires, closes and destroys, in that order, each value of a Slot made with
// a retire function, taking it out of the stub and handing it to the
// function while holding that Slot's lock, so a walk of the Slot sees the
// value live or retired, never both (slot.h). Before the other values: a
// retire function may call tls, Unload included, so the stub is looked up
// again for every cell.
void RetireSlotValues(const Stub& stub) {
  for (size_t i = 0;; ++i) {
    Stub* current = IfStillCurrent(stub);
    if (current == nullptr || i >= current->slots.size()) return;
    SlotCell cell = current->slots[i];
    if (cell.value == nullptr || cell.ops->retirement == nullptr) continue;
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
    OneSlotValue value(cell);  // destroyed last, even on a forced unwind
    {
      std::lock_guard<std::recursive_mutex> hold(retirement.lock, std::adopt_lock);
      if (retirement.retire) {
        RunContained(ErrorSource::kRetire, [&] { retirement.retire(cell.value); });
      }
    }
    if (cell.ops->close != nullptr) {
      RunContained(ErrorSource::kClose, [&] { cell.ops->close(cell.value); });
    }
  }
}

}  // namespace

void CloseAllValues(Stub& stub) {
  if (!stub.slots.empty()) [[unlikely]] {
    RetireSlotValues(stub);
    if (IfStillCurrent(stub) == nullptr) return;  // a retire function unloaded it
  }
  KeyTable values;
  std::shared_ptr<const CapturedValues> cached_snapshot;
  std::vector<SlotCell> slots;
  {
    OwnerWriteSection write(stub, StubPart::kAll);
    values = std::move(stub.values);
    // The reused snapshot holds the same values: it goes with them, released last.
    cached_snapshot = std::move(stub.capture_cache);
    slots = std::move(stub.slots);
    stub.slots.clear();
  }
  // From here on `stub` is not touched: user code below may free it (Unload).
  // If a close ends the thread (a forced unwind passes RunContained), the
  // locals release what this round had not closed yet, without closing it.
  SlotDestroyer slot_values(slots);

  // Inside a task, values it was given by a snapshot are not its to close.
  values.ForEach([](Data& d) {
    if (!CapturedByOpenTask(d)) RunContained(ErrorSource::kClose, [&] { d.Close(); });
  });
  for (SlotCell& cell : slots) {
    if (cell.value != nullptr && cell.ops->close != nullptr) {
      RunContained(ErrorSource::kClose, [&] { cell.ops->close(cell.value); });
    }
  }
  slot_values.DestroyAll();
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
