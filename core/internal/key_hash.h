// The keyed hash of tls::Key (core/key.h), inline so that a literal key's
// hash is folded at compile time. Not API: included by key.h only. Design in
// core/README.md "The key hash".
#ifndef TLS_CORE_INTERNAL_KEY_HASH_H_
#define TLS_CORE_INTERNAL_KEY_HASH_H_

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>

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
// then ignored the other word). The final Fold spreads every input
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

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_INTERNAL_KEY_HASH_H_
