// Internal: the per-thread key -> Data map. Not part of the API.
//
// Open addressing with linear probing over two parallel arrays: `hashes_` (8
// bytes a slot, 0 = empty; every key hash has its top bit set so it is never 0)
// and the entries right after them, in one heap block (one malloc per table, not two: a
// thread's first allocations and their frees dominate its start/exit cost). A
// probe scans the dense hash array and touches an entry only on a full 64-bit
// hash match, so a hit costs one hash compare and one key compare, and a miss
// usually none. Deletion shifts later entries back (no tombstones), so
// lookups never slow down after churn. Load factor <= 3/4; capacity is a power of
// two, starting at kInitialCapacity (small: most threads hold a few values, and
// every byte of a stub is paid once per live thread).
//
// No user code runs inside any member: Put and Erase hand the displaced Data back
// to the caller, who releases it after the table is consistent again. That is
// what makes re-entrant calls from value destructors safe.
//
// A task's view (core/task.h) is a table with a `below` layer: the snapshot's
// table, immutable, shared by every task running it. Reads fall through to it
// for keys the table does not hold itself, so beginning a task copies nothing
// and takes no reference; writes go to the table itself (a Set shadows the
// snapshot's key); an Erase of a key the layer holds first copies the layer in
// (Materialize). A thread's own table has no layer: its misses pay one
// predictable branch.
#ifndef TLS_CORE_INTERNAL_KEY_TABLE_H_
#define TLS_CORE_INTERNAL_KEY_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tls/data.h"
#include "tls/internal/abi.h"
#include "tls/key.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

class KeyTable {
 public:
  KeyTable() noexcept = default;
  KeyTable(KeyTable&& other) noexcept { *this = std::move(other); }
  // Inline for the common case, a move into an empty table (a close round's
  // detach and give-back).
  KeyTable& operator=(KeyTable&& other) noexcept {
    if (this == &other) return *this;
    if (hashes_ != nullptr || below_ != nullptr) return MoveFrom(std::move(other));
    hashes_ = std::exchange(other.hashes_, nullptr);
    mask_ = std::exchange(other.mask_, 0);
    size_ = std::exchange(other.size_, 0);
    below_ = std::exchange(other.below_, nullptr);
    return *this;
  }
  ~KeyTable() { Free(); }

  static constexpr size_t kInitialCapacity = 2;

  const Data* Find(const Key& key) const noexcept {
    const size_t i = IndexOf(key);
    if (i != kAbsent) return &entries()[i].data;
    if (below_ != nullptr) [[unlikely]]
      return FindBelow(key);
    return nullptr;
  }

  // The handle this table itself holds under `key` (not the layer's), or
  // nullptr. Swapping it is not a structural change (registry.h).
  Data* FindOwn(const Key& key) noexcept {
    const size_t i = IndexOf(key);
    return i == kAbsent ? nullptr : &entries()[i].data;
  }

  // A copy sharing every handle, with the layer's values copied in (no layer).
  KeyTable Clone() const;

  // Reads of keys this table lacks go to `below` (or nowhere: nullptr), which
  // must outlive this table's use of it and have no layer itself.
  void SetBelow(const KeyTable* below) noexcept { below_ = below; }

  // Stores `data` under `key`; returns the Data it replaced (empty if none).
  Data Put(const Key& key, Data data);
  // Put for a key this table does not hold itself (FindOwn returned nullptr):
  // skips the lookup.
  void Insert(const Key& key, Data&& data);
  // Removes `key`; returns its Data (empty if absent).
  Data Erase(const Key& key);
  // Removes every entry and releases its Data, one at a time, keeping the
  // block for reuse, and drops the layer. The table is consistent whenever a
  // Data is released, so a value's destructor may call tls (it cannot reach a
  // detached table).
  void Clear() noexcept;

  // Counting the layer's keys that this table does not shadow.
  size_t size() const noexcept { return below_ == nullptr ? size_ : size_ + BelowOnlyCount(); }
  bool empty() const noexcept { return size_ == 0 && below_ == nullptr; }
  size_t capacity() const noexcept { return hashes_ ? size_t{mask_} + 1 : 0; }

  // What a walker reads (core/threads.h): the entries this table holds itself,
  // their keys as Key::ToString writes them, and the heap block's size.
  size_t own_size() const noexcept { return size_; }
  void AppendKeyNames(std::vector<std::string>& out) const;
  size_t block_bytes() const noexcept;

  // How many slots a lookup of `key` in this table itself examines, up to the
  // hit or the empty slot that ends a miss (1 = found or missed at its home
  // slot). For the probe-length benchmark (benchmarks/table_bench.cc).
  size_t ProbesFor(const Key& key) const noexcept;

  // Calls f(Data&) for every value the table holds itself (not the layer's),
  // in no particular order. f must not modify the table.
  template <class F>
  void ForEach(F&& f) {
    for (size_t i = 0; hashes_ && i <= mask_; ++i) {
      if (hashes_[i] != 0) f(entries()[i].data);
    }
  }

 private:
  struct Entry {
    bool Matches(const Key& key) const noexcept {
      return tag == key.tag() && bits == key.bits() &&
             (tag != Key::kTagString || std::memcmp(text.data(), key.data(), bits) == 0);
    }
    uint64_t bits = 0;  // string length, or the integer's bits
    std::string text;   // the copied text of a string key
    Data data;
    uint8_t tag = 0;
  };

  static constexpr size_t kAbsent = ~size_t{0};

  // memcmp(a, b, n) == 0 for n <= 16, inline: two overlapping word loads per
  // side, as Key's hash reads them. A memcmp call would cost more than the
  // rest of a hit, and make every lookup save registers around it.
  static bool ShortBytesEqual(const char* a, const char* b, size_t n) noexcept {
    using internal::Load32;
    using internal::Load64;
    if (n >= 8) return ((Load64(a) ^ Load64(b)) | (Load64(a + n - 8) ^ Load64(b + n - 8))) == 0;
    if (n >= 4) return ((Load32(a) ^ Load32(b)) | (Load32(a + n - 4) ^ Load32(b + n - 4))) == 0;
    return n == 0 || (a[0] == b[0] && a[n >> 1] == b[n >> 1] && a[n - 1] == b[n - 1]);
  }

  [[gnu::always_inline]] size_t IndexOf(const Key& key) const noexcept {
    if (size_ == 0) return kAbsent;
    const uint64_t h = key.hash();
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t slot = hashes_[i];
      if (slot == h) {
        const Entry& e = entries()[i];
        if (e.tag == key.tag() && e.bits == key.bits()) {
          if (e.tag != Key::kTagString) return i;
          if (e.bits > 16) [[unlikely]]
            return LongIndexOf(key, i);
          if (ShortBytesEqual(e.text.data(), key.data(), e.bits)) return i;
        }
      } else if (slot == 0) {
        return kAbsent;
      }
    }
  }
  // IndexOf for string keys over 16 bytes, going on with the probe at `i`.
  // Out of line (a tail call), so the common path calls nothing.
  [[gnu::noinline]] size_t LongIndexOf(const Key& key, size_t i) const noexcept;
  KeyTable& MoveFrom(KeyTable&& other) noexcept;  // frees this table's block first
  void Grow();
  size_t FreeSlotFor(uint64_t hash) const noexcept;
  // Destroys the entries and releases the block; leaves the table empty.
  void Free() noexcept;
  // The index of a stored entry equal to `e` (hash `h`), or kAbsent.
  size_t IndexOfEntry(uint64_t h, const Entry& e) const noexcept;
  // Inserts a copy of `e` (hash `h`, not present). May throw: nothing changed.
  void InsertCopy(uint64_t h, const Entry& e);
  // Copies the layer's unshadowed entries in and drops the layer.
  void Materialize();
  size_t BelowOnlyCount() const noexcept;
  // Calls f(hash, entry) for each of the layer's entries this table does not
  // shadow.
  template <class F>
  void ForEachBelowOnly(F&& f) const {
    for (size_t i = 0; below_ != nullptr && i <= below_->mask_ && below_->size_ != 0; ++i) {
      const uint64_t h = below_->hashes_[i];
      if (h != 0 && IndexOfEntry(h, below_->entries()[i]) == kAbsent) f(h, below_->entries()[i]);
    }
  }
  // Find in the layer: out of line, so Find stays small enough to inline.
  [[gnu::noinline]] const Data* FindBelow(const Key& key) const noexcept;

  // The block: capacity() hashes, then as many entries (derived, not stored:
  // every byte of a stub is paid once per live thread).
  Entry* entries() const noexcept { return reinterpret_cast<Entry*>(hashes_ + size_t{mask_} + 1); }

  uint64_t* hashes_ = nullptr;  // start of the block; capacity() slots
  uint32_t mask_ = 0;           // capacity() - 1 (tables never reach 2^32 entries)
  uint32_t size_ = 0;
  const KeyTable* below_ = nullptr;  // a snapshot's table, read through (task views)
};

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_KEY_TABLE_H_
