// Internal: the store's view of a tls::Key's representation (core/key.h keeps
// it private, as data.h keeps Data's). Not part of the API.
//
//   Hash(k): 56 bits of hash under a top byte that says the kind and, for a
//   string of up to 16 bytes, its length; never 0. Two keys with equal Hash
//   are equal if their words are (short strings and integers), or their
//   texts (longer strings).
#ifndef TLS_CORE_INTERNAL_KEY_ACCESS_H_
#define TLS_CORE_INTERNAL_KEY_ACCESS_H_

#include <cstdint>

#include "tls/internal/abi.h"
#include "tls/key.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

struct KeyAccess {
  static uint64_t Hash(const Key& k) noexcept { return k.hash_; }
  static bool IsLongString(const Key& k) noexcept {
    return (k.hash_ >> kStampShift) == kStampLongString;
  }
  static uint64_t Word0(const Key& k) noexcept {
    return k.word0_;
  }  // ShortKeyWords, or the integer
  static uint64_t Word1(const Key& k) noexcept { return k.word1_; }
  static uint8_t Tag(const Key& k) noexcept { return k.tag_; }
  static uint64_t Bits(const Key& k) noexcept { return k.bits_; }  // length, or the integer's bits
  static const char* Text(const Key& k) noexcept { return k.text_; }

  static constexpr uint8_t kTagString = Key::kTagString;
  static constexpr uint8_t kTagNonNegative = Key::kTagNonNegative;
  static constexpr uint8_t kTagNegative = Key::kTagNegative;
};

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_KEY_ACCESS_H_
