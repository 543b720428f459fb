// Draws the key hash's per-process secret (hash_secret.h).
#include "tls/internal/hash_secret.h"

#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>

#include <cerrno>
#include <cstring>

namespace tls::inline TLS_ABI_NAMESPACE::internal {

constinit std::atomic<uint64_t> g_hash_secret_k0{0};
constinit std::atomic<uint64_t> g_hash_secret_k1{0};

namespace {

// splitmix64's finalizer: spreads a weak fallback seed over all 64 bits.
uint64_t Mix(uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// 16 random bytes: getrandom (never blocks: GRND_NONBLOCK; the kernel's pool
// is ready long before user programs run), else the 16 bytes the kernel gave
// this process at exec (AT_RANDOM), mixed with the clock and an address, so
// the secret never repeats a public constant.
void RandomWords(uint64_t out[2]) noexcept {
  size_t got = 0;
  auto* bytes = reinterpret_cast<unsigned char*>(out);
  while (got < 16) {
    const ssize_t n = getrandom(bytes + got, 16 - got, GRND_NONBLOCK);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  if (got == 16) return;
  uint64_t at_random[2] = {0, 0};
  // getauxval gives the kernel's address as an integer.
  const uintptr_t at = getauxval(AT_RANDOM);
  // NOLINTNEXTLINE(performance-no-int-to-ptr)
  if (at != 0) std::memcpy(at_random, reinterpret_cast<const void*>(at), 16);
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t salt = static_cast<uint64_t>(ts.tv_nsec) ^
                        (static_cast<uint64_t>(ts.tv_sec) << 30) ^
                        reinterpret_cast<uintptr_t>(&got);
  out[0] = Mix(at_random[0] ^ salt);
  out[1] = Mix(at_random[1] ^ Mix(salt));
}

}  // namespace

HashSecret DrawHashSecret() noexcept {
  uint64_t drawn[2];
  RandomWords(drawn);
  if (drawn[0] == 0) drawn[0] = 0x2545f4914f6cdd1dull;  // never the "not drawn" 0
  // k1 multiplies (integer keys take it as is): odd, and neither sparse nor
  // dense, redrawn from itself until so (a few tries at most).
  drawn[1] |= 1;
  while (__builtin_popcountll(drawn[1]) < 24 || __builtin_popcountll(drawn[1]) > 40) {
    drawn[1] = Mix(drawn[1]) | 1;
  }
  // k1 first: whoever publishes k0 has seen the one k1 that stays (its own, or
  // the one a faster thread published, read by the failed exchange), so a
  // reader that sees k0 sees that k1.
  uint64_t k1 = 0;
  if (g_hash_secret_k1.compare_exchange_strong(k1, drawn[1], std::memory_order_acq_rel,
                                               std::memory_order_acquire)) {
    k1 = drawn[1];
  }
  uint64_t k0 = 0;
  if (g_hash_secret_k0.compare_exchange_strong(k0, drawn[0], std::memory_order_acq_rel,
                                               std::memory_order_acquire)) {
    k0 = drawn[0];
  }
  return {k0, k1};
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
