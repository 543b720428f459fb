// Internal: the per-thread key -> Data map. Not part of the API.
//
// Open addressing with linear probing over one array of 32-byte slots, two to
// a cache line: the key's hash (0 = empty; Key::hash() is never 0 and its top
// byte carries the kind of key and a short string's length), the key itself
// and the Data handle (one pointer). A string of up to 16 bytes is held in the
// slot as the two words Key computes for its hash (key.h ShortKeyWords), an
// integer as its bits; only a longer string's text is on the heap. So a hit
// on a short key or an integer compares three words in one slot and touches
// one cache line of the table (blocks of 4 KiB and up are 64-byte aligned; a
// probe that runs on crosses to the next line only from an odd slot), and a
// miss usually stops at an empty slot in the same line. Deletion shifts later
// entries back (no tombstones), so lookups never slow down after churn. Load
// factor <= 3/4; capacity is a power of two, starting at kInitialCapacity
// (small: most threads hold a few values, and every byte of a stub is paid
// once per live thread).
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

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/internal/key_access.h"
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
    if (slots_ != nullptr || below_ != nullptr) return MoveFrom(std::move(other));
    slots_ = std::exchange(other.slots_, nullptr);
    mask_ = std::exchange(other.mask_, 0);
    size_ = std::exchange(other.size_, 0);
    below_ = std::exchange(other.below_, nullptr);
    return *this;
  }
  ~KeyTable() { Free(); }

  static constexpr size_t kInitialCapacity = 2;  // one 64-byte block

  const Data* Find(const Key& key) const noexcept {
    // A long key never matches in ShortIndexOf (its slot holds a pointer where
    // its Key holds 0), so it is checked for only after a miss.
    const size_t i = ShortIndexOf(key);
    if (i != kAbsent) [[likely]]
      return &slots_[i].data;
    if (below_ == nullptr && !KeyAccess::IsLongString(key)) [[likely]]
      return nullptr;
    return FindSlow(key);  // a tail call: the common path saves no registers
  }

  // The handle this table itself holds under `key` (not the layer's), or
  // nullptr. Swapping it is not a structural change (registry.h).
  Data* FindOwn(const Key& key) noexcept {
    size_t i = ShortIndexOf(key);
    if (i == kAbsent && KeyAccess::IsLongString(key)) [[unlikely]]
      i = LongIndexOf(key);
    return i == kAbsent ? nullptr : &slots_[i].data;
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
  size_t capacity() const noexcept { return slots_ ? size_t{mask_} + 1 : 0; }

  // What a walker reads (core/threads.h): the entries this table holds itself,
  // their keys as Key::ToString writes them, and the heap bytes (the block and
  // long keys' text).
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
    for (size_t i = 0; slots_ && i <= mask_; ++i) {
      if (slots_[i].hash != 0) f(slots_[i].data);
    }
  }

 private:
  // An empty slot is all zero (hash 0, no text, an empty Data).
  struct Slot {
    uint64_t hash = 0;   // Key::hash(); 0 = empty
    uint64_t word0 = 0;  // Key::word0(); a long string: its heap text (char*)
    uint64_t word1 = 0;  // Key::word1(); a long string: its length
    Data data;
  };
  static_assert(sizeof(Data) == 8 && sizeof(Slot) == 32, "two slots to a cache line");

  static constexpr size_t kAbsent = ~size_t{0};

  // The slot holding `key`, or kAbsent. A short string's or an integer's key
  // is its hash and two words; a long string's slot holds a pointer where its
  // Key holds 0, so it never matches here.
  [[gnu::always_inline]] size_t ShortIndexOf(const Key& key) const noexcept {
    if (size_ == 0) return kAbsent;
    const uint64_t h = KeyAccess::Hash(key);
    for (size_t i = Home(h);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == h && s.word0 == KeyAccess::Word0(key) && s.word1 == KeyAccess::Word1(key))
        return i;
      if (s.hash == 0) return kAbsent;
    }
  }
  // Where a probe for hash `h` starts: the first slot of a cache line (the
  // low bit dropped), so the two slots of the line are read before the probe
  // moves on to the next line. Linear probing all the same (deletion is
  // unchanged); at 1M random keys it cuts cache lines per lookup from 1.23 to
  // 1.16 (cachegrind) for a few more slots examined, in lines already loaded.
  size_t Home(uint64_t h) const noexcept { return h & (mask_ - 1); }
  // For string keys over 16 bytes: the text compared.
  size_t LongIndexOf(const Key& key) const noexcept;
  size_t IndexOf(const Key& key) const noexcept {
    return KeyAccess::IsLongString(key) ? LongIndexOf(key) : ShortIndexOf(key);
  }
  // Find for long keys, and for keys the layer may hold.
  [[gnu::noinline]] const Data* FindSlow(const Key& key) const noexcept;
  static bool HoldsLongKey(const Slot& s) noexcept {
    return (s.hash >> kStampShift) == kStampLongString;
  }
  static const char* LongText(const Slot& s) noexcept {
    return std::bit_cast<const char*>(s.word0);
  }
  // Frees a long key's text, if the slot holds one; the slot is then empty
  // but for its Data.
  static void ForgetKey(Slot& s) noexcept;
  // Fills an empty slot's key with a copy of `key` / of `from`'s key. May
  // throw (a long key's text): nothing changed.
  static void CopyKey(Slot& to, const Key& key);
  static void CopyKey(Slot& to, const Slot& from);
  static bool SameKey(const Slot& a, const Slot& b) noexcept;
  // Moves a whole entry into the empty slot `to`; `from` is left empty.
  static void MoveSlot(Slot& to, Slot& from) noexcept;

  KeyTable& MoveFrom(KeyTable&& other) noexcept;  // frees this table's block first
  void Grow();
  // Grows if one more entry would pass the load factor (or there is no block).
  void GrowIfFull() {
    if (!slots_ || (size_t{size_} + 1) * 4 > (size_t{mask_} + 1) * 3) Grow();
  }
  size_t FreeSlotFor(uint64_t hash) const noexcept;
  // Releases every handle and key text and the block; leaves the table empty.
  void Free() noexcept;
  // The index of a stored slot with the key of `s`, or kAbsent.
  size_t IndexOfSlot(const Slot& s) const noexcept;
  // Inserts a copy of `s` (its key not present). May throw: nothing changed.
  void InsertCopy(const Slot& s);
  // Copies the layer's unshadowed entries in and drops the layer.
  void Materialize();
  size_t BelowOnlyCount() const noexcept;
  // Calls f(slot) for each of the layer's entries this table does not shadow.
  template <class F>
  void ForEachBelowOnly(F&& f) const {
    for (size_t i = 0; below_ != nullptr && i <= below_->mask_ && below_->size_ != 0; ++i) {
      const Slot& s = below_->slots_[i];
      if (s.hash != 0 && IndexOfSlot(s) == kAbsent) f(s);
    }
  }

  Slot* slots_ = nullptr;  // the block; capacity() slots
  uint32_t mask_ = 0;      // capacity() - 1 (tables never reach 2^32 entries)
  uint32_t size_ = 0;
  const KeyTable* below_ = nullptr;  // a snapshot's table, read through (task views)
};

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_KEY_TABLE_H_
