// File: core/key.h
//
// tls::Key names a value in a thread's store. A key is a string or an integer, and
// the two kinds never compare equal: as in go-tls, `1` and `"1"` are two keys.
// Integers compare by value whatever their C++ type (`int{1}`, `1L` and `1u` are
// one key), and negative and unsigned values never collide (`-1` is not
// `UINT64_MAX`).
//
// A Key is a cheap view: building one from a string literal, `std::string_view` or
// `std::string` copies nothing and allocates nothing; the store copies the text only
// when `tls::Set` inserts a new key. The hash is computed once, when the Key is
// built.
//
// The hash is keyed by a per-process secret (internal/hash_secret.h), so keys
// that come from outside (header names, user IDs) cannot be chosen to collide:
// `Set` and `Find` stay O(1) whatever the keys. It differs from run to run, so
// nothing may depend on a key's hash or on the order of a table's keys.
//
// Example:
//   tls::Set("request_id", tls::MakeData(42));   // string key, no allocation to look up
//   tls::Set(7, tls::MakeData(std::string("x"))); // integer key
//   tls::Get(std::string_view("request_id"));     // same key as the literal
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_KEY_H_
#define TLS_CORE_KEY_H_

#include <concepts>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tls/internal/abi.h"
#include "tls/internal/key_hash.h"

namespace tls::inline TLS_ABI_NAMESPACE {

namespace internal {
struct KeyAccess;  // core/internal/key_access.h: the store's view of a Key
}  // namespace internal

class Key {
 public:
  enum class Kind : uint8_t { kString = 1, kInteger = 2 };

  // String keys. Views the text; nothing is copied.
  // Inline, so a literal's words are computed at compile time, and its hash is
  // two multiplies with the secret.
  [[gnu::always_inline]] Key(std::string_view s) noexcept  // NOLINT(google-explicit-constructor)
      : text_(s.data()), bits_(s.size()), tag_(kTagString) {
    if (s.size() <= internal::kShortKeyBytes) {
      const internal::ShortWords w = internal::ShortKeyWords(s.data(), s.size());
      word0_ = w.a;
      word1_ = w.b;
      const internal::HashSecret k = internal::LoadHashSecret();
      hash_ = Stamp(internal::HashWords(w.a, w.b, k.k1 ^ s.size(), k),
                    internal::kStampShortString | s.size());
    } else {
      hash_ = Stamp(internal::HashLongBytes(s.data(), s.size()), internal::kStampLongString);
    }
  }
  [[gnu::always_inline]] Key(const std::string& s) noexcept  // NOLINT(google-explicit-constructor)
      : Key(std::string_view{s}) {}
  // Throws std::invalid_argument for a null pointer.
  [[gnu::always_inline]] Key(const char* s)  // NOLINT(google-explicit-constructor)
      : Key(s ? std::string_view(s) : NullString()) {}

  // Integer keys, compared by value whatever the C++ type.
  template <internal::IntegerKey I>
  [[gnu::always_inline]] Key(I i) noexcept  // NOLINT(google-explicit-constructor)
      : text_(nullptr),
        bits_(static_cast<uint64_t>(i)),
        word0_(bits_),
        tag_(i < 0 ? kTagNegative : kTagNonNegative) {
    hash_ = Stamp(internal::HashInteger(bits_, tag_), internal::kStampInteger | tag_);
  }
  // `true` as a key is almost always a mistake; say so at compile time.
  Key(bool) = delete;
  Key(std::nullptr_t) = delete;
  // A floating-point key would compare by rounding: refused, and the error
  // names the type ("use of deleted function Key::Key(F) [with F = double]")
  // and shows the next line.
  template <std::floating_point F>
  Key(F) = delete;  // a floating-point key is not allowed: use a string or an integer key

  Kind kind() const noexcept { return tag_ == kTagString ? Kind::kString : Kind::kInteger; }
  // The text of a string key (empty for an integer key).
  std::string_view text() const noexcept {
    return tag_ == kTagString ? std::string_view(text_, bits_) : std::string_view();
  }
  // The value of an integer key (0 for a string key). Unsigned values above
  // INT64_MAX read back as their two's-complement int64.
  int64_t integer() const noexcept { return tag_ == kTagString ? 0 : static_cast<int64_t>(bits_); }
  TLS_API std::string ToString() const;

  friend bool operator==(const Key& a, const Key& b) noexcept {
    return a.hash_ == b.hash_ && a.tag_ == b.tag_ && a.bits_ == b.bits_ &&
           (a.tag_ != kTagString || std::memcmp(a.text_, b.text_, a.bits_) == 0);
  }

 private:
  friend struct internal::KeyAccess;

  // The representation: read by the store through internal::KeyAccess
  // (core/internal/key_access.h), which says what each part means.
  static constexpr uint8_t kTagString = 1;
  static constexpr uint8_t kTagNonNegative = 2;
  static constexpr uint8_t kTagNegative = 3;

  static uint64_t Stamp(uint64_t h, uint64_t stamp) noexcept {
    return (h & ((uint64_t{1} << internal::kStampShift) - 1)) | (stamp << internal::kStampShift);
  }
  [[noreturn]] TLS_API static std::string_view NullString();

  const char* text_;
  uint64_t bits_;  // string length, or the integer's bits
  uint64_t hash_;
  uint64_t word0_ = 0;
  uint64_t word1_ = 0;
  uint8_t tag_;
};

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_KEY_H_
