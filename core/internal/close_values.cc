#include "core/internal/close_values.h"

#include <sched.h>

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "core/internal/captured_values.h"
#include "core/internal/registry.h"
#include "core/internal/report.h"
#include "core/internal/slot_retirements.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

// Values of Slots made with a retire function, taken out of the stub by
// RetireSlotValues, each with its index, in index order.
using RetiredCells = std::vector<std::pair<size_t, SlotCell>>;

void DestroyCell(SlotCell& cell) noexcept {
  if (void* value = std::exchange(cell.value, nullptr)) DestroySlotValue(value, cell.ops);
}

// Destroys detached slot values (without closing them), each once: when asked,
// or at scope end if a forced unwind left a close early.
class SlotDestroyer {
 public:
  explicit SlotDestroyer(SlotArray& cells, RetiredCells& retired) noexcept
      : cells_(cells), retired_(retired) {}
  ~SlotDestroyer() { DestroyAll(); }
  SlotDestroyer(const SlotDestroyer&) = delete;
  SlotDestroyer& operator=(const SlotDestroyer&) = delete;

  void DestroyAll() noexcept {
    cells_.ForEachUsed(DestroyCell);
    for (auto& [index, cell] : retired_) DestroyCell(cell);
  }

 private:
  SlotArray& cells_;
  RetiredCells& retired_;
};

// Takes each value of a Slot made with a retire function out of the stub and
// hands it to the function, holding that Slot's lock across both, so a walk
// of the Slot sees the value live or retired, never both (slot.h). The value
// goes to `retired`, with its index, to be closed and destroyed with the
// round's other values (a retire function is not a close: the store is not
// detached yet). A retire function may call tls, Unload included: the stub
// is looked up again for every cell. Only the used range is visited
// (slot_array.h).
// Moves `i` to the next cell at or after it that holds a value of a Slot made
// with a retire function; false if there is none. One write section for the
// whole scan: inside it no destruction of a Slot can take a value, so a
// value's record (which lives while the value is in its cell,
// slot_retirements.h) may be read.
bool FindRetireCell(Stub& stub, size_t& i) noexcept {
  OwnerWriteSection write(stub, StubPart::kSlots);
  for (; i < stub.slots.end_used(); ++i) {
    const SlotCell& cell = stub.slots[i];
    if (cell.value != nullptr && cell.ops->retirement != nullptr) return true;
  }
  return false;
}

// Takes the cell at `i` out of `stub` with its record's lock held, and
// returns the record; nullptr if the cell no longer holds a retire Slot's
// value (the Slot's destruction took it meanwhile). The lock is taken inside
// a write section but never waited for there: a walk of this Slot (or its
// destruction) holds the lock and may be waiting for this section.
SlotRetirement* TakeRetireCell(Stub& stub, size_t i, SlotCell& cell) noexcept {
  for (;;) {
    {
      OwnerWriteSection write(stub, StubPart::kSlots);
      const SlotCell& in_stub = stub.slots[i];
      if (in_stub.value == nullptr || in_stub.ops->retirement == nullptr) return nullptr;
      SlotRetirement* retirement = in_stub.ops->retirement;
      if (retirement->lock.try_lock()) {
        cell = std::exchange(stub.slots[i], SlotCell{});
        return retirement;
      }
    }
    sched_yield();
  }
}

void RetireSlotValues(const Stub& stub, RetiredCells& retired) {
  const Stub* first = IfStillCurrent(stub);
  if (first == nullptr) return;
  for (size_t i = first->slots.begin_used();; ++i) {
    Stub* current = IfStillCurrent(stub);
    if (current == nullptr || !FindRetireCell(*current, i)) return;
    if (retired.size() == retired.capacity()) {
      retired.reserve(std::max<size_t>(4, 2 * retired.size()));  // may throw: nothing moved
    }
    SlotCell cell;
    SlotRetirement* retirement = TakeRetireCell(*current, i, cell);
    if (retirement == nullptr) continue;
    // Destroyed by the caller's SlotDestroyer, even on a forced unwind.
    retired.emplace_back(i, cell);
    std::lock_guard<std::recursive_mutex> hold(retirement->lock, std::adopt_lock);
    if (retirement->retire) {
      RunContained(ErrorSource::kRetire, [&] { retirement->retire(cell.value); });
    }
  }
}

// Puts each retired value back at its index among the detached ones, where
// that cell is free, so all are closed in index order.
void MergeRetired(RetiredCells& retired, SlotArray& slots) noexcept {
  for (auto& [index, cell] : retired) {
    if (cell.value != nullptr && index < slots.size() && slots[index].value == nullptr) {
      slots[index] = std::exchange(cell, SlotCell{});
      slots.NoteUsed(index);
    }
  }
}

// The innermost round's CloseTime, while one runs on this thread (rounds
// nest: a close may call Reset). Constant-initialised and trivially
// destructible: read by closes that run from the native exit hook.
thread_local constinit const CloseTime* t_round = nullptr;

class RoundScope {
 public:
  explicit RoundScope(const CloseTime& when) noexcept : outer_(std::exchange(t_round, &when)) {}
  ~RoundScope() { t_round = outer_; }
  RoundScope(const RoundScope&) = delete;
  RoundScope& operator=(const RoundScope&) = delete;

 private:
  const CloseTime* outer_;
};

}  // namespace

void CloseCell(SlotCell& cell) {
  if (cell.value != nullptr && cell.ops->close != nullptr) {
    RunContained(ErrorSource::kClose, [&] { cell.ops->close(cell.value); });
  }
}

bool ClosingAtEnd() noexcept { return t_round != nullptr && *t_round == CloseTime::kAtEnd; }

void CloseAllValues(Stub& stub, CloseTime when) {
  RetiredCells retired;  // empty unless the stub has slots
  SlotArray slots;
  SlotDestroyer slot_values(slots, retired);
  if (!stub.slots.empty()) [[unlikely]] {
    RetireSlotValues(stub, retired);
  }
  KeyTable values;
  std::shared_ptr<const CapturedValues> cached_snapshot;
  // Unless a retire function unloaded the stub (its values went unclosed).
  if (Stub* current = IfStillCurrent(stub)) {
    OwnerWriteSection write(*current, StubPart::kAll);
    values = std::move(current->values);
    cached_snapshot = std::move(current->capture_cache);
    slots = std::move(current->slots);  // leaves the stub's empty
  }
  // The reused snapshot is the thread's own, not a holder to wait for: let it
  // go before the closes. It holds exactly `values` (every change drops it),
  // so this releases no value, and closes one only if another store's end
  // left it pending.
  cached_snapshot.reset();
  // From here on `stub` is not touched: user code below may free it (Unload).
  // If a close ends the thread (a forced unwind passes RunContained), the
  // locals release what this round had not closed yet, without closing it.
  MergeRetired(retired, slots);

  RoundScope round(when);  // read by slot values' closes (ClosingAtEnd)
  // Inside a task, values it was given by a snapshot are not its to close.
  values.ForEach([when](Data& d) {
    DataBox* box = DataAccess::Box(d);  // null for a stored empty Data
    if (box == nullptr || CapturedByOpenTask(d)) return;
    RunContained(ErrorSource::kClose, [box, when] {
      if (when == CloseTime::kAtEnd) {
        box->CloseAtEnd();
      } else {
        box->CloseOnce();
      }
    });
  });
  slots.ForEachUsed(CloseCell);
  for (auto& [index, cell] : retired) CloseCell(cell);
  slot_values.DestroyAll();
  values.Clear();  // releases the handles; destructors may call tls
  // Give the emptied table block and slot cells back, so the next Set or Slot
  // store (after Reset, or the next thread to reuse this stub) does not
  // allocate; unless the stub has grown its own meanwhile.
  Stub* current = IfStillCurrent(stub);
  if (current != nullptr && current->values.capacity() == 0) {
    OwnerWriteSection write(*current, StubPart::kTable);
    current->values = std::move(values);
  }
  if (current != nullptr && current->slots.empty() && !slots.empty()) {
    slots.ClearUsed();  // every value was destroyed above
    OwnerWriteSection write(*current, StubPart::kSlots);
    current->slots = std::move(slots);
  }
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
