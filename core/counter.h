// File: core/counter.h
//
// tls::Counter: a sharded counter for hot paths that many threads bump and
// something else reads now and then (request counts, bytes sent, cache hits).
// Add touches only the calling thread's own shard: no shared cache line, no
// atomic read-modify-write, so threads adding at once do not slow each other
// down. Read sums every live thread's shard plus what ended threads left
// (a thread's shard is folded into the total when it ends, or at Reset), so
// the total never drops when threads come and go. Modelled on folly's
// ThreadCachedInt; built on Slot<T>'s walk and retire (slot.h).
//
// Example:
//   tls::Counter requests;                  // a global, or a member
//   void Handle() { requests.Add(1); ... }  // on any number of threads
//   int64_t n = requests.Read();            // from any thread
//
// Guarantees (except for a thread that calls tls::Unload, which drops its
// shard uncounted, as Unload drops every value unclosed): every Add is counted
// exactly once by every Read that starts after it returns (on the adding thread's side: after its
// Add returned and before or after it ended). A Read is a consistent sum: with adds only (n >= 0),
// a later Read never returns less than an earlier one. A Read during concurrent Adds may or may not
// include those in flight. Costs: Add is a thread_local read, an index, a load and a store (the
// first Add on a thread allocates its shard); Read costs a walk of every live thread
// (Slot::ForEachThread) and holds off ending threads' folds meanwhile. A Counter is an object like
// any Slot: a member, made and destroyed any number of times; destroying it releases every thread's
// shard at once (slot.h). Not while another thread Adds to it or Reads it.
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_COUNTER_H_
#define TLS_CORE_COUNTER_H_

#include <atomic>
#include <cstdint>

#include "tls/internal/abi.h"
#include "tls/slot.h"

namespace tls::inline TLS_ABI_NAMESPACE {

class Counter {
 public:
  Counter() : shards_([this](Shard& s) { Retire(s); }) {}
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `n` (may be negative) on the calling thread's shard.
  void Add(int64_t n = 1) {
    Shard& shard = shards_.GetOrEmplace();
    // Only this thread writes its shard: a load and a store, no RMW. Relaxed:
    // Read needs each shard's value, not an order between shards.
    shard.value.store(shard.value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // The sum of every Add so far, on all threads, live or ended.
  int64_t Read() const {
    return shards_.Serialized([&] {
      int64_t sum = retired_.load(std::memory_order_relaxed);
      // Batched: the visitor only loads, so the walk may gate many threads
      // per system call (slot.h ForEachThread gates one at a time).
      shards_.Walk([&](const Shard& s) { sum += s.value.load(std::memory_order_relaxed); },
                   /*batched=*/true);
      return sum;
    });
  }

  // This thread's share: what it added and has not been folded yet (0 after
  // its Reset). A load; no walk.
  int64_t ReadLocal() const noexcept {
    const Shard* shard = shards_.Get();
    return shard == nullptr ? 0 : shard->value.load(std::memory_order_relaxed);
  }

 private:
  // One per thread; on a cache line of its own, so neighbours' Adds do not
  // bounce it.
  struct alignas(64) Shard {
    std::atomic<int64_t> value{0};
  };

  // Called under the Slot's lock as the shard leaves its thread.
  void Retire(Shard& s) noexcept {
    retired_.fetch_add(s.value.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
  }

  std::atomic<int64_t> retired_{0};
  Slot<Shard> shards_;
};

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_COUNTER_H_
