#include "core/internal/key_table.h"

#include <utility>

namespace tls::internal {

KeyTable& KeyTable::operator=(KeyTable&& other) noexcept {
  hashes_ = std::move(other.hashes_);
  entries_ = std::move(other.entries_);
  mask_ = std::exchange(other.mask_, 0);
  size_ = std::exchange(other.size_, 0);
  return *this;
}

size_t KeyTable::LongIndexOf(const Key& key, size_t i) const noexcept {
  const uint64_t h = key.hash();
  for (;; i = (i + 1) & mask_) {
    const uint64_t slot = hashes_[i];
    if (slot == h && entries_[i].Matches(key)) return i;
    if (slot == 0) return kAbsent;
  }
}

size_t KeyTable::FreeSlotFor(uint64_t hash) const noexcept {
  size_t i = hash & mask_;
  while (hashes_[i] != 0) i = (i + 1) & mask_;
  return i;
}

void KeyTable::Grow() {
  const size_t old_cap = hashes_ ? mask_ + 1 : 0;
  const size_t new_cap = old_cap == 0 ? 8 : old_cap * 2;
  auto hashes = std::make_unique<uint64_t[]>(new_cap);  // zeroed: all empty
  auto entries = std::make_unique<Entry[]>(new_cap);
  std::swap(hashes_, hashes);
  std::swap(entries_, entries);
  mask_ = new_cap - 1;
  for (size_t i = 0; i < old_cap; ++i) {
    if (hashes[i] == 0) continue;
    const size_t j = FreeSlotFor(hashes[i]);
    hashes_[j] = hashes[i];
    entries_[j] = std::move(entries[i]);
  }
}

Data KeyTable::Put(const Key& key, Data data) {
  if (Data* existing = Find(key)) {
    std::swap(*existing, data);
    return data;  // the old value, for the caller to release
  }
  if (!hashes_ || (size_ + 1) * 4 > (mask_ + 1) * 3) Grow();
  const size_t i = FreeSlotFor(key.hash());
  Entry& e = entries_[i];
  if (key.tag() == Key::kTagString) e.text.assign(key.data(), key.bits());  // may throw: nothing changed yet
  e.tag = key.tag();
  e.bits = key.bits();
  e.data = std::move(data);
  hashes_[i] = key.hash();
  ++size_;
  return Data();
}

Data KeyTable::Erase(const Key& key) {
  size_t hole = IndexOf(key);
  if (hole == kAbsent) return Data();
  Data removed = std::move(entries_[hole].data);
  // Backward-shift deletion: move each later entry of the probe run into the
  // hole unless its home slot lies cyclically in (hole, j].
  for (size_t j = (hole + 1) & mask_; hashes_[j] != 0; j = (j + 1) & mask_) {
    const size_t home = hashes_[j] & mask_;
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    hashes_[hole] = hashes_[j];
    entries_[hole] = std::move(entries_[j]);
    hole = j;
  }
  hashes_[hole] = 0;
  entries_[hole] = Entry();
  --size_;
  return removed;
}

}  // namespace tls::internal
