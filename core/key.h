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
#include "tls/internal/hash_secret.h"

namespace tls::inline TLS_ABI_NAMESPACE {

namespace internal {

// The compilers' 128-bit integer. It is an extension, so `__extension__`
// keeps -Wpedantic quiet about it in a consumer's own build.
__extension__ typedef unsigned __int128 Uint128;

// 64x64->128 multiply folded to 64 bits: the mixing step of our hash.
inline uint64_t Fold(uint64_t a, uint64_t b) noexcept {
  const Uint128 m = static_cast<Uint128>(a) * b;
  return static_cast<uint64_t>(m) ^ static_cast<uint64_t>(m >> 64);
}

inline uint64_t Load64(const char* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint64_t Load32(const char* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Public constants of the finishing step; the secret words are what an
// attacker does not know (HashSecret).
inline constexpr uint64_t kSeed2 = 0xa0761d6478bd642full;
inline constexpr uint64_t kSeed3 = 0x9fb21c651e98df25ull;

// The top byte of Key::hash(): always >= 0x80, so a hash is never 0 (the
// store's "empty slot"), and it tells the kind of key and a short string's length.
inline constexpr uint64_t kStampShortString = 0x80;  // | length (0..16)
inline constexpr uint64_t kStampLongString = 0xa0;
inline constexpr uint64_t kStampInteger = 0xc0;  // | Key's tag
inline constexpr int kStampShift = 56;

// Strings up to this long are held in the table's slot itself (core/internal/
// key_table.h), as the two words below; longer ones on the heap.
inline constexpr size_t kShortKeyBytes = 16;

// The two words that identify a string of n <= 16 bytes, given n: at most two
// (possibly overlapping) loads, so a short key hashes and compares in a few
// instructions and a literal's length picks the branch at compile time.
struct ShortWords {
  uint64_t a = 0, b = 0;
};
[[gnu::always_inline]] inline ShortWords ShortKeyWords(const char* p, size_t n) noexcept {
  if (n >= 8) return {Load64(p), Load64(p + n - 8)};
  if (n >= 4) return {Load32(p), Load32(p + n - 4)};
  if (n == 0) return {};
  return {(uint64_t{static_cast<unsigned char>(p[0])} << 16) |
              (uint64_t{static_cast<unsigned char>(p[n >> 1])} << 8) |
              static_cast<unsigned char>(p[n - 1]),
          0};
}

// The secret words are xored into both factors of the first multiply, so no
// key can zero it (a word equal to a public seed once did, and the product
// then ignored the other word: issue 19). The final Fold spreads every input
// bit over the low bits the table indexes with: without it sequential keys
// ("key0", "key1", ...) cluster at some table sizes (mean probes 1.9x a
// random hash's at 64 keys).
[[gnu::always_inline]] inline uint64_t HashWords(uint64_t a, uint64_t b, uint64_t chain,
                                                 HashSecret k) noexcept {
  return Fold(Fold(a ^ k.k0, b ^ chain) ^ kSeed2, kSeed3);
}

// Strings over 16 bytes: out of line, so the inline Key constructor stays
// small where the length is not known at compile time.
// Each 16-byte block is folded into a chain that starts from the secret, so
// the chain after any prefix is unknown too: no two prefixes can be built to
// meet, and collisions cannot be multiplied block by block.
[[gnu::noinline]] inline uint64_t HashLongBytes(const char* p, size_t n) noexcept {
  const HashSecret k = LoadHashSecret();
  uint64_t chain = k.k1 ^ n;
  for (size_t i = 0; i + 16 < n; i += 16) {
    chain = Fold(Load64(p + i) ^ k.k0, Load64(p + i + 8) ^ chain) + chain;
  }
  return HashWords(Load64(p + n - 16), Load64(p + n - 8), chain, k);
}

// Any integer type but bool (Key(bool) is deleted below).
template <class I>
concept IntegerKey = std::integral<I> && !std::same_as<I, bool>;

// Keyed like strings, by the same steps (HashWords with no second word): a
// table of IDs chosen by a client cannot be flooded. The inner multiplier
// stays odd (k1 is drawn odd, the tag moves bits 1-2 only): an even one maps
// sequential integers onto fewer low bits (a random k1 gave 11.7x a uniform
// hash's probes in one run of table_bench probes). Without the final Fold,
// sequential integers still clustered at large N under some secrets (1.30x
// at N = 32,768); it costs Find(3) ~0.35 ns.
[[gnu::always_inline]] inline uint64_t HashInteger(uint64_t bits, uint8_t tag) noexcept {
  const HashSecret k = LoadHashSecret();
  return HashWords(bits, 0, k.k1 ^ (uint64_t{tag} << 1), k);
}

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

  // Internal representation, used by the store (core/internal/key_table.h).
  // hash(): 56 bits of hash under a top byte that says the kind and, for a
  // string of up to 16 bytes, its length; never 0. Two keys with equal hash()
  // are equal if their words are (short strings and integers), or their texts
  // (longer strings).
  uint64_t hash() const noexcept { return hash_; }
  bool is_long_string() const noexcept {
    return (hash_ >> internal::kStampShift) == internal::kStampLongString;
  }
  uint64_t word0() const noexcept { return word0_; }  // ShortKeyWords, or the integer
  uint64_t word1() const noexcept { return word1_; }
  uint8_t tag() const noexcept { return tag_; }
  uint64_t bits() const noexcept { return bits_; }
  const char* data() const noexcept { return text_; }

  static constexpr uint8_t kTagString = 1;
  static constexpr uint8_t kTagNonNegative = 2;
  static constexpr uint8_t kTagNegative = 3;

 private:
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
