#include "core/internal/key_table.h"

#include <sys/mman.h>

#include <bit>
#include <cstring>
#include <new>
#include <utility>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

namespace {

// Blocks from this size up start on a cache line, so each line holds two
// whole slots. Smaller ones come from plain malloc (16-byte aligned: an
// aligned allocation costs a thread's start more than the few lines of a
// small table, which stay hot anyway, could save).
//
// Blocks from 4 MiB up (over ~90,000 keys) start on a 2 MiB boundary and ask
// for transparent huge pages: a random lookup in a big table otherwise misses
// the TLB as well as the cache. Where THP is off this changes nothing.
constexpr size_t kAlignedBlockBytes = 4096;
constexpr size_t kHugeBlockBytes = size_t{4} << 20;
constexpr size_t kHugePageBytes = size_t{2} << 20;

std::align_val_t BlockAlignment(size_t bytes) noexcept {
  return std::align_val_t{bytes >= kHugeBlockBytes ? kHugePageBytes : 64};
}

template <class Slot>
Slot* AllocateBlock(size_t cap) {
  const size_t bytes = cap * sizeof(Slot);
  void* block = bytes >= kAlignedBlockBytes ? ::operator new(bytes, BlockAlignment(bytes))
                                            : ::operator new(bytes);
  if (bytes >= kHugeBlockBytes) madvise(block, bytes, MADV_HUGEPAGE);  // advice only
  Slot* slots = static_cast<Slot*>(block);
  for (size_t i = 0; i < cap; ++i) new (slots + i) Slot();  // noexcept: zeroes
  return slots;
}

template <class Slot>
void FreeBlock(Slot* slots, size_t cap) noexcept {
  const size_t bytes = cap * sizeof(Slot);
  if (bytes >= kAlignedBlockBytes) {
    ::operator delete(slots, BlockAlignment(bytes));
  } else {
    ::operator delete(slots);
  }
}

// A short string's text from its two words and length (key.h ShortKeyWords).
std::string ShortText(uint64_t a, uint64_t b, size_t n) {
  char text[kShortKeyBytes];
  if (n >= 8) {
    std::memcpy(text, &a, 8);
    std::memcpy(text + n - 8, &b, 8);
  } else if (n >= 4) {
    std::memcpy(text, &a, 4);
    std::memcpy(text + n - 4, &b, 4);
  } else if (n > 0) {
    text[0] = static_cast<char>(a >> 16);
    text[n >> 1] = static_cast<char>(a >> 8);
    text[n - 1] = static_cast<char>(a);
  }
  return std::string(text, n);
}

uint64_t StampOf(uint64_t hash) noexcept { return hash >> kStampShift; }

// A heap copy of a long key's text, as a slot's word0 holds it. May throw.
uint64_t CopyText(const char* text, size_t n) {
  char* copy = new char[n];
  std::memcpy(copy, text, n);
  return std::bit_cast<uint64_t>(static_cast<const char*>(copy));
}

}  // namespace

void KeyTable::ForgetKey(Slot& s) noexcept {
  if (HoldsLongKey(s)) delete[] LongText(s);
  s.hash = 0;
  s.word0 = 0;
  s.word1 = 0;
}

void KeyTable::CopyKey(Slot& to, const Key& key) {
  if (KeyAccess::IsLongString(key)) {
    to.word0 =
        CopyText(KeyAccess::Text(key), KeyAccess::Bits(key));  // may throw: nothing changed yet
    to.word1 = KeyAccess::Bits(key);
  } else {
    to.word0 = KeyAccess::Word0(key);
    to.word1 = KeyAccess::Word1(key);
  }
  to.hash = KeyAccess::Hash(key);
}

void KeyTable::CopyKey(Slot& to, const Slot& from) {
  if (HoldsLongKey(from)) {
    to.word0 = CopyText(LongText(from), from.word1);  // may throw: nothing changed yet
  } else {
    to.word0 = from.word0;
  }
  to.word1 = from.word1;
  to.hash = from.hash;
}

void KeyTable::MoveSlot(Slot& to, Slot& from) noexcept {
  to.hash = std::exchange(from.hash, 0);  // a long key's text moves with its pointer
  to.word0 = std::exchange(from.word0, 0);
  to.word1 = std::exchange(from.word1, 0);
  to.data = std::move(from.data);
}

bool KeyTable::SameKey(const Slot& a, const Slot& b) noexcept {
  if (a.hash != b.hash) return false;
  if (!HoldsLongKey(a)) return a.word0 == b.word0 && a.word1 == b.word1;
  return a.word1 == b.word1 && std::memcmp(LongText(a), LongText(b), a.word1) == 0;
}

void KeyTable::Free() noexcept {
  below_ = nullptr;
  if (slots_ == nullptr) return;
  for (size_t i = 0; i <= mask_; ++i) {
    ForgetKey(slots_[i]);
    slots_[i].~Slot();  // releases the handle
  }
  FreeBlock(slots_, size_t{mask_} + 1);
  slots_ = nullptr;
  mask_ = 0;
  size_ = 0;
}

KeyTable& KeyTable::MoveFrom(KeyTable&& other) noexcept {
  Free();
  return *this = std::move(other);  // now empty: the inline move
}

KeyTable KeyTable::Clone() const {
  KeyTable copy;
  if (size_ != 0) {
    copy.slots_ = AllocateBlock<Slot>(size_t{mask_} + 1);
    copy.mask_ = mask_;
    for (size_t i = 0; i <= mask_; ++i) {
      if (slots_[i].hash == 0) continue;
      CopyKey(copy.slots_[i], slots_[i]);  // may throw: `copy` frees what it holds
      copy.slots_[i].data = slots_[i].data;
      ++copy.size_;
    }
  }
  ForEachBelowOnly([&](const Slot& s) { copy.InsertCopy(s); });
  return copy;
}

size_t KeyTable::IndexOfSlot(const Slot& s) const noexcept {
  if (size_ == 0) return kAbsent;
  for (size_t i = Home(s.hash);; i = (i + 1) & mask_) {
    if (slots_[i].hash == 0) return kAbsent;
    if (SameKey(slots_[i], s)) return i;
  }
}

void KeyTable::InsertCopy(const Slot& s) {
  GrowIfFull();
  Slot& to = slots_[FreeSlotFor(s.hash)];
  CopyKey(to, s);  // may throw: the slot stays empty
  to.data = s.data;
  ++size_;
}

void KeyTable::Materialize() {
  if (below_ == nullptr) return;
  *this = Clone();  // this table's own handles move over with the copies: none is released
}

const Data* KeyTable::FindSlow(const Key& key) const noexcept {
  if (const size_t i = IndexOf(key); i != kAbsent) return &slots_[i].data;
  if (below_ == nullptr) return nullptr;
  const size_t i = below_->IndexOf(key);
  return i == kAbsent ? nullptr : &below_->slots_[i].data;
}

size_t KeyTable::BelowOnlyCount() const noexcept {
  size_t n = 0;
  ForEachBelowOnly([&](const Slot&) { ++n; });
  return n;
}

size_t KeyTable::LongIndexOf(const Key& key) const noexcept {
  if (size_ == 0) return kAbsent;
  const uint64_t h = KeyAccess::Hash(key);
  for (size_t i = Home(h);; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.hash == h && s.word1 == KeyAccess::Bits(key) &&
        std::memcmp(LongText(s), KeyAccess::Text(key), KeyAccess::Bits(key)) == 0) {
      return i;
    }
    if (s.hash == 0) return kAbsent;
  }
}

size_t KeyTable::FreeSlotFor(uint64_t hash) const noexcept {
  size_t i = Home(hash);
  while (slots_[i].hash != 0) i = (i + 1) & mask_;
  return i;
}

void KeyTable::Grow() {
  const size_t old_cap = capacity();
  const size_t new_cap = old_cap == 0 ? kInitialCapacity : old_cap * 2;
  Slot* slots = AllocateBlock<Slot>(new_cap);  // may throw: nothing changed yet
  const KeyTable* below = below_;
  KeyTable old = std::move(*this);  // frees the old block when it goes
  below_ = below;
  slots_ = slots;
  mask_ = static_cast<uint32_t>(new_cap - 1);
  size_ = old.size_;
  for (size_t i = 0; i < old_cap; ++i) {
    Slot& from = old.slots_[i];
    if (from.hash == 0) continue;
    MoveSlot(slots_[FreeSlotFor(from.hash)], from);
  }
}

Data KeyTable::Put(const Key& key, Data data) {
  if (const size_t existing = IndexOf(key); existing != kAbsent) {
    std::swap(slots_[existing].data, data);
    return data;  // the old value, for the caller to release
  }
  Insert(key, std::move(data));
  return Data();
}

void KeyTable::Insert(const Key& key, Data&& data) {
  GrowIfFull();
  Slot& s = slots_[FreeSlotFor(KeyAccess::Hash(key))];
  CopyKey(s, key);  // may throw: the slot stays empty
  s.data = std::move(data);
  ++size_;
}

void KeyTable::AppendKeyNames(std::vector<std::string>& out) const {
  for (size_t i = 0; slots_ != nullptr && i <= mask_; ++i) {
    const Slot& s = slots_[i];
    if (s.hash == 0) continue;
    const uint64_t stamp = StampOf(s.hash);
    if (stamp == kStampLongString) {
      out.push_back(Key(std::string_view(LongText(s), s.word1)).ToString());
    } else if (stamp >= kStampInteger) {
      out.push_back(stamp == (kStampInteger | KeyAccess::kTagNegative)
                        ? Key(static_cast<int64_t>(s.word0)).ToString()
                        : Key(s.word0).ToString());
    } else {
      out.push_back(Key(ShortText(s.word0, s.word1, stamp - kStampShortString)).ToString());
    }
  }
}

size_t KeyTable::block_bytes() const noexcept {
  size_t bytes = capacity() * sizeof(Slot);
  for (size_t i = 0; slots_ != nullptr && i <= mask_; ++i) {
    if (HoldsLongKey(slots_[i])) bytes += slots_[i].word1;
  }
  return bytes;
}

size_t KeyTable::ProbesFor(const Key& key) const noexcept {
  if (size_ == 0) return 1;
  const size_t found = IndexOf(key);
  size_t probes = 1;
  for (size_t i = Home(KeyAccess::Hash(key));; i = (i + 1) & mask_, ++probes) {
    if (i == found || slots_[i].hash == 0) return probes;
  }
}

void KeyTable::Clear() noexcept {
  for (size_t i = 0; slots_ != nullptr && i <= mask_; ++i) {
    Slot& s = slots_[i];
    if (s.hash == 0) continue;
    ForgetKey(s);
    --size_;
    Data released = std::move(s.data);
  }
  below_ = nullptr;
}

Data KeyTable::Erase(const Key& key) {
  // The layer's copy would show through once this table's is gone.
  if (below_ != nullptr && below_->IndexOf(key) != kAbsent) Materialize();
  size_t hole = IndexOf(key);
  if (hole == kAbsent) return Data();
  Data removed = std::move(slots_[hole].data);
  ForgetKey(slots_[hole]);
  // Backward-shift deletion: move each later entry of the probe run into the
  // hole unless its home slot lies cyclically in (hole, j].
  for (size_t j = (hole + 1) & mask_; slots_[j].hash != 0; j = (j + 1) & mask_) {
    const size_t home = Home(slots_[j].hash);
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    MoveSlot(slots_[hole], slots_[j]);
    hole = j;
  }
  --size_;
  return removed;
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
