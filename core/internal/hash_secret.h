// The per-process secret that keys tls::Key's hash (core/key.h). Not API.
//
// The hash mixes a key's words with two secret 64-bit words drawn from the
// kernel when the process first hashes a key. Someone who has read the source
// but cannot read this process's memory cannot choose keys that share a hash
// or a table slot: before the secret, keys built to zero the first multiply
// all had one 64-bit hash; a table of 50,000 of them took 2.75 s
// to fill. Design: core/README.md, "The key hash".
//
// Two engines in one process (a plugin that links its own static copy) have
// two secrets; a fork child keeps its parent's, as it keeps the tables hashed
// with it.
#ifndef TLS_CORE_INTERNAL_HASH_SECRET_H_
#define TLS_CORE_INTERNAL_HASH_SECRET_H_

#include <atomic>
#include <cstdint>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

struct HashSecret {
  uint64_t k0;  // never 0 once drawn
  uint64_t k1;  // odd, with 24 to 40 of its 64 bits set: a well-formed multiplier
};

// Zero until drawn. Constant-initialized, so a Key built during static
// initialization of any translation unit finds them zero and draws them.
// k1 is published before k0 (k0 is the "drawn" flag).
TLS_API extern std::atomic<uint64_t> g_hash_secret_k0;
TLS_API extern std::atomic<uint64_t> g_hash_secret_k1;

// Called by LoadHashSecret while no secret is published: draws one, publishes
// it unless another thread did first, and returns the published one.
// Lock-free (two compare-exchanges, no thread waits on another, so a fork
// child or a signal handler cannot hang in it); every caller gets the same
// words.
TLS_API HashSecret DrawHashSecret() noexcept;

// The secret: two loads and a branch that is taken once per process.
[[gnu::always_inline]] inline HashSecret LoadHashSecret() noexcept {
  const uint64_t k0 = g_hash_secret_k0.load(std::memory_order_acquire);
  if (k0 == 0) [[unlikely]]
    return DrawHashSecret();
  return {k0, g_hash_secret_k1.load(std::memory_order_relaxed)};
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_HASH_SECRET_H_
