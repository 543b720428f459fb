// The baselines the engine is measured against. The thread_local accessors
// are compiled in their own translation unit and marked noipa so every call
// is a real call: the "non-inlined thread_local read" of the table, not a value
// the optimiser keeps in a register across the loop.
#ifndef TLS_BENCHMARKS_PEERS_H_
#define TLS_BENCHMARKS_PEERS_H_

#include <atomic>
#include <boost/thread/tss.hpp>
#include <cstdint>
#include <mutex>
#include <vector>

namespace tls_bench {

// A plain `thread_local int`, read and written through a non-inlined call.
int ThreadLocalGet();
void ThreadLocalSet(int v);

// A `thread_local uint64_t` id, as ID()'s baseline.
unsigned long ThreadLocalId();

// tls::Counter's peer: a sharded counter on boost::thread_specific_ptr,
// written the way a user would. Each thread's shard is registered in a
// mutex-protected list on its first Add; Read sums the list under the mutex;
// a thread's exit folds its shard into `retired_` and unregisters it. Add is
// inline, as tls::Counter::Add is, and updates the shard exactly as Counter
// does (a relaxed load and store: only its thread writes it), so the two
// differ only in how the shard is found and kept.
class BoostShardedCounter {
 public:
  BoostShardedCounter() : shard_(&BoostShardedCounter::ThreadExit) {}
  BoostShardedCounter(const BoostShardedCounter&) = delete;
  BoostShardedCounter& operator=(const BoostShardedCounter&) = delete;

  void Add(int64_t n = 1) {
    Shard* s = shard_.get();
    if (s == nullptr) s = Register();
    s->value.store(s->value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  int64_t Read() const;

 private:
  struct alignas(64) Shard {  // a cache line each, as tls::Counter's
    std::atomic<int64_t> value{0};
    BoostShardedCounter* owner = nullptr;
  };

  Shard* Register();
  static void ThreadExit(Shard* s);

  mutable std::mutex lock_;
  std::vector<Shard*> shards_;  // under lock_
  int64_t retired_ = 0;         // under lock_
  // Last: destroyed first, and its destructor retires the destroying thread's
  // shard, which needs the members above.
  boost::thread_specific_ptr<Shard> shard_;
};

}  // namespace tls_bench

#endif  // TLS_BENCHMARKS_PEERS_H_
