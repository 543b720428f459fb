// File: core/counter.h
//
// tls::Counter: a sharded counter for hot paths that many threads bump and
// something else reads now and then (request counts, bytes sent, cache hits).
// Add touches only the calling thread's own shard: no shared cache line, no
// atomic read-modify-write, so threads adding at once do not slow each other
// down. Read sums every live thread's shard plus what ended threads left
// (a thread's shard is folded into the total when it ends, or at Reset), so
// the total never drops when threads come and go. Modelled on folly's
// ThreadCachedInt; built on Slot<T> and its retire function (slot.h).
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
// include those in flight. Costs: Add is a thread_local read, an index, two loads and a store
// (the first Add on a thread or task takes a shard, under the counter's lock); Read sums the
// counter's own shards under that lock, visiting no thread: its cost follows the most threads that
// held a shard at once, not the live ones. A Counter is an object like any Slot: a member, made and
// destroyed any number of times; destroying it releases every thread's shard at once (slot.h). Not
// while another thread Adds to it or Reads it.
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_COUNTER_H_
#define TLS_CORE_COUNTER_H_

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "tls/internal/abi.h"
#include "tls/slot.h"

namespace tls::inline TLS_ABI_NAMESPACE {

class Counter {
 public:
  Counter() : pool_(new Pool()), refs_([](ShardRef& r) { r.pool->Fold(*r.shard); }) {
    // The Slot's lock, which a fork child starts afresh (slot_retirements.cc).
    pool_->lock_ = &refs_.retirement_->lock;
  }
  ~Counter() {
    // refs_ is destroyed after this body: its values are gone by then
    // (slot.h), except at process exit, where they stay with their threads
    // and keep the pool alive, so it is freed by whoever lets go last.
    Pool::Release(pool_);
  }
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `n` (may be negative) on the calling thread's shard.
  void Add(int64_t n = 1) {
    ShardRef* ref = refs_.Get();
    if (ref == nullptr) [[unlikely]]
      ref = &Claim();
    std::atomic<int64_t>& value = ref->shard->value;
    // Only this thread writes its shard: a load and a store, no RMW. Relaxed:
    // Read needs each shard's value, not an order between shards.
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // The sum of every Add so far, on all threads, live or ended.
  int64_t Read() const { return pool_->Sum(); }

  // This thread's share: what it added and has not been folded yet (0 after
  // its Reset). A load; no walk.
  int64_t ReadLocal() const noexcept {
    const ShardRef* ref = refs_.Get();
    return ref == nullptr ? 0 : ref->shard->value.load(std::memory_order_relaxed);
  }

 private:
  // One per thread (or task) holding a share; on a cache line of its own, so
  // neighbours' Adds do not bounce it.
  struct alignas(64) Shard {
    std::atomic<int64_t> value{0};
    Shard* next_free = nullptr;
    pthread_t holder{};  // the thread it was taken on (a fork child drops others')
  };
  struct Chunk {
    static constexpr size_t kShards = 63;  // with the chunk's own line: 4 KiB
    Shard shards[kShards];
    Chunk* next = nullptr;
    size_t used = 0;
  };

  // The shards, in chunks that are never freed while a shard may be in use,
  // so Read sums them without visiting any thread; a shard is reused by the
  // next thread once its holder let go. Also what ended shares left
  // (`retired_`). One lock over all of it, taken by Read, by a thread's first
  // Add, and as a shard leaves its thread; never by Add after its first.
  // Freed by the last of the Counter and the ShardRefs to let go of it. The
  // lock is the Slot's (Slot(retire)), which lives as long as either: the
  // engine keeps a Slot's record while any of its values lives.
  class Pool {
   public:
    std::recursive_mutex* lock_ = nullptr;

    Pool() = default;
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    ~Pool() {
      while (Chunk* c = chunks_) {
        chunks_ = c->next;
        delete c;
      }
    }

    Shard& Take() {
      std::lock_guard<std::recursive_mutex> hold(*lock_);
      DropLostShardsAfterFork();  // before a new thread of a fork child takes one
      Shard* s = free_;
      if (s != nullptr) {
        free_ = s->next_free;
      } else {
        if (chunks_ == nullptr || chunks_->used == Chunk::kShards) {
          auto* c = new Chunk();  // may throw: nothing changed
          c->next = chunks_;
          chunks_ = c;
        }
        s = &chunks_->shards[chunks_->used++];
      }
      s->holder = pthread_self();
      ++holders_;
      return *s;
    }
    // Folds the shard's share into the total: at the end of its thread or
    // task, and at Reset (the Slot's retire function).
    void Fold(Shard& s) noexcept {
      std::lock_guard<std::recursive_mutex> hold(*lock_);
      retired_ += s.value.exchange(0, std::memory_order_relaxed);
    }
    // The shard's holder is gone; a share not folded is dropped (Del,
    // Unload). Frees the pool if the counter went first and this was last.
    static void Give(Pool* pool, Shard& s) noexcept {
      bool last;
      {
        std::lock_guard<std::recursive_mutex> hold(*pool->lock_);
        s.value.store(0, std::memory_order_relaxed);
        s.next_free = pool->free_;
        pool->free_ = &s;
        last = --pool->holders_ == 0 && pool->counter_gone_;
      }
      if (last) delete pool;
    }
    static void Release(Pool* pool) noexcept {
      bool last;
      {
        std::lock_guard<std::recursive_mutex> hold(*pool->lock_);
        pool->counter_gone_ = true;
        last = pool->holders_ == 0;
      }
      if (last) delete pool;
    }
    int64_t Sum() noexcept {
      std::lock_guard<std::recursive_mutex> hold(*lock_);
      DropLostShardsAfterFork();
      int64_t sum = retired_;
      for (const Chunk* c = chunks_; c != nullptr; c = c->next) {
        for (size_t i = 0; i < c->used; ++i) {
          sum += c->shards[i].value.load(std::memory_order_relaxed);
        }
      }
      return sum;
    }

   private:
    // In a fork child, other threads' shards end with them, uncounted (as
    // their values are abandoned); their holders never give them back. Runs
    // once per fork, under the lock.
    void DropLostShardsAfterFork() noexcept {
      if (generation_ == internal::ForkGeneration()) [[likely]]
        return;
      generation_ = internal::ForkGeneration();
      for (Chunk* c = chunks_; c != nullptr; c = c->next) {
        for (size_t i = 0; i < c->used; ++i) {
          if (internal::LostInForkChild(c->shards[i].holder)) {
            c->shards[i].value.store(0, std::memory_order_relaxed);
          }
        }
      }
    }

    uint64_t generation_ = internal::ForkGeneration();
    Chunk* chunks_ = nullptr;
    Shard* free_ = nullptr;
    int64_t retired_ = 0;
    size_t holders_ = 0;  // shards taken and not given back
    bool counter_gone_ = false;
  };

  // The Slot's value: which shard is this thread's. Gives it back when
  // destroyed (at the end of its thread or task after the fold, by Del or
  // Unload unfolded, at the counter's destruction after the fold).
  struct ShardRef {
    // Takes a shard; if that throws there is no ShardRef, and nothing to give
    // back (a ShardRef whose store fails gives its shard back once, here).
    explicit ShardRef(Pool* p) : pool(p), shard(&p->Take()) {}
    ShardRef(const ShardRef&) = delete;
    ShardRef& operator=(const ShardRef&) = delete;
    ~ShardRef() { Pool::Give(pool, *shard); }
    Pool* pool;
    Shard* shard;
  };

  ShardRef& Claim() { return refs_.Emplace(pool_); }

  Pool* const pool_;
  Slot<ShardRef> refs_;
};

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_COUNTER_H_
