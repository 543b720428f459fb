#include "benchmarks/peers.h"

#include <algorithm>

namespace tls_bench {
namespace {
thread_local int t_value = 0;
thread_local unsigned long t_id = 1;
}  // namespace

__attribute__((noinline, noipa)) int ThreadLocalGet() { return t_value; }
__attribute__((noinline, noipa)) void ThreadLocalSet(int v) { t_value = v; }
__attribute__((noinline, noipa)) unsigned long ThreadLocalId() { return t_id; }

int64_t BoostShardedCounter::Read() const {
  std::lock_guard<std::mutex> hold(lock_);
  int64_t sum = retired_;
  for (const Shard* s : shards_) sum += s->value.load(std::memory_order_relaxed);
  return sum;
}

BoostShardedCounter::Shard* BoostShardedCounter::Register() {
  auto* s = new Shard;
  s->owner = this;
  {
    std::lock_guard<std::mutex> hold(lock_);
    shards_.push_back(s);
  }
  shard_.reset(s);
  return s;
}

// boost calls it with the thread's shard as the thread ends.
void BoostShardedCounter::ThreadExit(Shard* s) {
  BoostShardedCounter& c = *s->owner;
  {
    std::lock_guard<std::mutex> hold(c.lock_);
    c.retired_ += s->value.load(std::memory_order_relaxed);
    c.shards_.erase(std::find(c.shards_.begin(), c.shards_.end(), s));
  }
  delete s;
}

}  // namespace tls_bench
