// A thread's Slot cells, indexed by Slot index (internal/stub.h). Engine-private.
//
// A store at index N makes the array N + 1 cells long even when it holds one
// value; indexes are reused (lowest freed first is not promised: a freed
// index goes on a stack, internal/slots.cc), so the length follows the most
// Slots alive at once, not the most ever made. What keeps Reset and thread exit
// from paying for that length is the occupied range: every cell holding a
// value lies in [begin_used(), end_used()), which stores widen and only
// ClearUsed (or a move out) narrows. A Counter made after 100,000 others
// costs one cell of work per Reset instead of 100,000 (benchmarks/reset_bench.cc).
//
// 24 bytes, as the std::vector it replaces: the stub stays within its
// 128-byte malloc chunk. Sizes and indexes are 32-bit; an index that does not
// fit (over 4 billion Slots made, 64 GiB of cells) throws std::length_error.
#ifndef TLS_CORE_INTERNAL_SLOT_ARRAY_H_
#define TLS_CORE_INTERNAL_SLOT_ARRAY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

struct SlotOps;

struct SlotCell {
  void* value = nullptr;
  const SlotOps* ops = nullptr;  // meaningless while value is nullptr
};

// A cell's value read outside an owner write section. Besides its owner, one
// other thread writes a cell: the one destroying the cell's Slot empties it
// (ReleaseSlot in internal/slots.cc, inside a walk that gates the stub), so
// readers that may run meanwhile (Stub::HasSlotValues, GetStats' count) load
// the value atomically. The owner's
// Get of its own Slot needs no such load: using a Slot while it is destroyed
// is undefined. `ops` is written by the owner only.
inline void* LoadCellValue(const SlotCell& cell) noexcept {
  return std::atomic_ref<void*>(const_cast<void*&>(cell.value)).load(std::memory_order_relaxed);
}
inline void EmptyCellValue(SlotCell& cell) noexcept {
  std::atomic_ref<void*>(cell.value).store(nullptr, std::memory_order_relaxed);
}

class SlotArray {
 public:
  SlotArray() = default;
  SlotArray(const SlotArray&) = delete;
  SlotArray& operator=(const SlotArray&) = delete;
  SlotArray(SlotArray&& other) noexcept { swap(other); }
  SlotArray& operator=(SlotArray&& other) noexcept {
    SlotArray(std::move(other)).swap(*this);
    return *this;
  }
  ~SlotArray() { delete[] cells_; }

  size_t size() const noexcept { return size_; }
  // All cells are allocated at once: capacity is size (threads.cc's bytes).
  size_t capacity() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  SlotCell& operator[](size_t i) noexcept { return cells_[i]; }
  const SlotCell& operator[](size_t i) const noexcept { return cells_[i]; }

  // The range that holds every value; empty (begin >= end) when none may.
  size_t begin_used() const noexcept { return lo_; }
  size_t end_used() const noexcept { return hi_; }

  // Makes room for `index` (doubling, at least index + 1 cells), new cells
  // empty. May throw (std::bad_alloc, std::length_error): nothing changed.
  void Reserve(size_t index) {
    if (index < size_) return;
    if (index >= kMaxCells) ThrowTooManySlots();
    size_t n = index + 1 > size_t{size_} * 2 ? index + 1 : size_t{size_} * 2;
    if (n > kMaxCells) n = kMaxCells;
    auto* cells = new SlotCell[n]();
    if (size_ != 0) std::memcpy(static_cast<void*>(cells), cells_, size_ * sizeof(SlotCell));
    delete[] cells_;
    cells_ = cells;
    size_ = static_cast<uint32_t>(n);
  }

  // The cell at `index` (< size()) is about to hold a value.
  void NoteUsed(size_t index) noexcept {
    if (lo_ >= hi_) {
      lo_ = static_cast<uint32_t>(index);
      hi_ = static_cast<uint32_t>(index + 1);
      return;
    }
    if (index < lo_) lo_ = static_cast<uint32_t>(index);
    if (index >= hi_) hi_ = static_cast<uint32_t>(index + 1);
  }

  // Empties every cell of the used range (values and ops, without destroying
  // anything: the caller did) and the range itself; keeps the cells.
  void ClearUsed() noexcept {
    if (lo_ < hi_) {
      std::memset(static_cast<void*>(cells_ + lo_), 0, (hi_ - lo_) * sizeof(SlotCell));
    }
    lo_ = hi_ = 0;
  }

  void swap(SlotArray& other) noexcept {
    std::swap(cells_, other.cells_);
    std::swap(size_, other.size_);
    std::swap(lo_, other.lo_);
    std::swap(hi_, other.hi_);
  }

  // Calls f(SlotCell&) for each cell of the used range, in index order.
  template <class F>
  void ForEachUsed(F&& f) noexcept(noexcept(f(std::declval<SlotCell&>()))) {
    for (size_t i = lo_; i < hi_; ++i) f(cells_[i]);
  }
  template <class F>
  void ForEachUsed(F&& f) const noexcept(noexcept(f(std::declval<const SlotCell&>()))) {
    for (size_t i = lo_; i < hi_; ++i) f(cells_[i]);
  }

 private:
  static constexpr size_t kMaxCells = UINT32_MAX;
  [[noreturn]] static void ThrowTooManySlots();

  SlotCell* cells_ = nullptr;
  uint32_t size_ = 0;
  uint32_t lo_ = 0;  // the used range [lo_, hi_)
  uint32_t hi_ = 0;
};

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_SLOT_ARRAY_H_
