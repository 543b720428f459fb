#include "core/internal/key_table.h"

#include <cstring>
#include <new>
#include <utility>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

namespace {

// One block: `cap` hashes (zeroed: all empty), then `cap` entries. Entry's
// alignment is at most 8, so the entries right after the hashes are aligned.
template <class Entry>
void AllocateBlock(size_t cap, uint64_t** hashes, Entry** entries) {
  static_assert(alignof(Entry) <= alignof(uint64_t));
  void* block = ::operator new(cap*(sizeof(uint64_t) + sizeof(Entry)));
  *hashes = static_cast<uint64_t*>(block);
  std::memset(*hashes, 0, cap * sizeof(uint64_t));
  *entries = reinterpret_cast<Entry*>(*hashes + cap);
  for (size_t i = 0; i < cap; ++i) new (*entries + i) Entry();  // noexcept
}

}  // namespace

void KeyTable::Free() noexcept {
  below_ = nullptr;
  if (hashes_ == nullptr) return;
  for (size_t i = 0; i <= mask_; ++i) entries()[i].~Entry();
  ::operator delete(hashes_);
  hashes_ = nullptr;
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
    Entry* unused;
    AllocateBlock(size_t{mask_} + 1, &copy.hashes_, &unused);
    copy.mask_ = mask_;
    for (size_t i = 0; i <= mask_; ++i) {
      if (hashes_[i] == 0) continue;
      copy.entries()[i] = entries()[i];  // may throw (a long key's text): `copy` frees
      copy.hashes_[i] = hashes_[i];
      ++copy.size_;
    }
  }
  ForEachBelowOnly([&](uint64_t h, const Entry& e) { copy.InsertCopy(h, e); });
  return copy;
}

size_t KeyTable::IndexOfEntry(uint64_t h, const Entry& e) const noexcept {
  if (size_ == 0) return kAbsent;
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const uint64_t slot = hashes_[i];
    if (slot == 0) return kAbsent;
    const Entry& mine = entries()[i];
    if (slot == h && mine.tag == e.tag && mine.bits == e.bits &&
        (e.tag != Key::kTagString || mine.text == e.text)) {
      return i;
    }
  }
}

void KeyTable::InsertCopy(uint64_t h, const Entry& e) {
  if (!hashes_ || (size_t{size_} + 1) * 4 > (size_t{mask_} + 1) * 3) Grow();
  const size_t i = FreeSlotFor(h);
  entries()[i] = e;  // may throw (a long key's text): the slot stays empty
  hashes_[i] = h;
  ++size_;
}

void KeyTable::Materialize() {
  if (below_ == nullptr) return;
  *this = Clone();  // this table's own handles move over with the copies: none is released
}

const Data* KeyTable::FindBelow(const Key& key) const noexcept {
  const size_t i = below_->IndexOf(key);
  return i == kAbsent ? nullptr : &below_->entries()[i].data;
}

size_t KeyTable::BelowOnlyCount() const noexcept {
  size_t n = 0;
  ForEachBelowOnly([&](uint64_t, const Entry&) { ++n; });
  return n;
}

size_t KeyTable::LongIndexOf(const Key& key, size_t i) const noexcept {
  const uint64_t h = key.hash();
  for (;; i = (i + 1) & mask_) {
    const uint64_t slot = hashes_[i];
    if (slot == h && entries()[i].Matches(key)) return i;
    if (slot == 0) return kAbsent;
  }
}

size_t KeyTable::FreeSlotFor(uint64_t hash) const noexcept {
  size_t i = hash & mask_;
  while (hashes_[i] != 0) i = (i + 1) & mask_;
  return i;
}

void KeyTable::Grow() {
  const size_t old_cap = capacity();
  const size_t new_cap = old_cap == 0 ? kInitialCapacity : old_cap * 2;
  uint64_t* hashes;
  Entry* unused;
  AllocateBlock(new_cap, &hashes, &unused);  // may throw: nothing changed yet
  const KeyTable* below = below_;
  KeyTable old = std::move(*this);  // frees the old block when it goes
  below_ = below;
  hashes_ = hashes;
  mask_ = static_cast<uint32_t>(new_cap - 1);
  size_ = old.size_;
  for (size_t i = 0; i < old_cap; ++i) {
    if (old.hashes_[i] == 0) continue;
    const size_t j = FreeSlotFor(old.hashes_[i]);
    hashes_[j] = old.hashes_[i];
    entries()[j] = std::move(old.entries()[i]);
  }
}

Data KeyTable::Put(const Key& key, Data data) {
  if (const size_t existing = IndexOf(key); existing != kAbsent) {
    std::swap(entries()[existing].data, data);
    return data;  // the old value, for the caller to release
  }
  Insert(key, std::move(data));
  return Data();
}

void KeyTable::Insert(const Key& key, Data&& data) {
  if (!hashes_ || (size_t{size_} + 1) * 4 > (size_t{mask_} + 1) * 3) Grow();
  const size_t i = FreeSlotFor(key.hash());
  Entry& e = entries()[i];
  if (key.tag() == Key::kTagString) {
    // A reused table often gets the same keys in the same slots (threads of
    // one program set the same keys): keep the text if it is already right.
    const size_t n = key.bits();
    const bool kept =
        e.text.size() == n && (n <= 16 ? ShortBytesEqual(e.text.data(), key.data(), n)
                                       : std::memcmp(e.text.data(), key.data(), n) == 0);
    if (!kept) e.text.assign(key.data(), n);  // may throw: nothing changed yet
  }
  e.tag = key.tag();
  e.bits = key.bits();
  e.data = std::move(data);
  hashes_[i] = key.hash();
  ++size_;
}

void KeyTable::AppendKeyNames(std::vector<std::string>& out) const {
  for (size_t i = 0; hashes_ != nullptr && i <= mask_; ++i) {
    if (hashes_[i] == 0) continue;
    const Entry& e = entries()[i];
    if (e.tag == Key::kTagString) {
      out.push_back(Key(std::string_view(e.text.data(), e.bits)).ToString());
    } else if (e.tag == Key::kTagNegative) {
      out.push_back(Key(static_cast<int64_t>(e.bits)).ToString());
    } else {
      out.push_back(Key(e.bits).ToString());
    }
  }
}

size_t KeyTable::block_bytes() const noexcept {
  size_t bytes = capacity() * (sizeof(uint64_t) + sizeof(Entry));
  for (size_t i = 0; hashes_ != nullptr && i <= mask_; ++i) {
    if (entries()[i].text.capacity() > 15) bytes += entries()[i].text.capacity() + 1;
  }
  return bytes;
}

size_t KeyTable::ProbesFor(const Key& key) const noexcept {
  if (size_ == 0) return 1;
  const uint64_t h = key.hash();
  size_t probes = 1;
  for (size_t i = h & mask_;; i = (i + 1) & mask_, ++probes) {
    const uint64_t slot = hashes_[i];
    if (slot == 0 || (slot == h && entries()[i].Matches(key))) return probes;
  }
}

void KeyTable::Clear() noexcept {
  for (size_t i = 0; hashes_ != nullptr && i <= mask_; ++i) {
    if (hashes_[i] == 0) continue;
    hashes_[i] = 0;
    --size_;
    Entry& e = entries()[i];
    // Only the text and the handle need resetting: a slot whose hash is 0
    // is empty, whatever its tag and bits say.
    if (e.text.capacity() > 15) std::string().swap(e.text);  // a long key's heap text
    Data released = std::move(e.data);
  }
  below_ = nullptr;
}

Data KeyTable::Erase(const Key& key) {
  // The layer's copy would show through once this table's is gone.
  if (below_ != nullptr && below_->IndexOf(key) != kAbsent) Materialize();
  size_t hole = IndexOf(key);
  if (hole == kAbsent) return Data();
  Data removed = std::move(entries()[hole].data);
  // Backward-shift deletion: move each later entry of the probe run into the
  // hole unless its home slot lies cyclically in (hole, j].
  for (size_t j = (hole + 1) & mask_; hashes_[j] != 0; j = (j + 1) & mask_) {
    const size_t home = hashes_[j] & mask_;
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    hashes_[hole] = hashes_[j];
    entries()[hole] = std::move(entries()[j]);
    hole = j;
  }
  hashes_[hole] = 0;
  entries()[hole] = Entry();
  --size_;
  return removed;
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
