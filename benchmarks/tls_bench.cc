// File: benchmarks/tls_bench.cc
//
// The engine and its peers side by side, in one binary and one run:
// absolute times drift on a shared machine, ratios within a run hold.
//
// Peers: a plain `thread_local` read through a non-inlined call (peers.cc),
// pthread_getspecific/setspecific, boost::thread_specific_ptr, a
// `thread_local std::unordered_map<std::string, int>`; for tls::Counter, a
// shared std::atomic<int64_t> and a sharded counter on boost (peers.h).
//
// Naming: BM_<who>_<operation>. tools/bench_table.py pairs them into the
// table in docs/benchmarks.md. On the engine side:
//   Get*  tls::Get: returns a copy of the shared handle (std::optional<Data>),
//         i.e. one atomic increment and one decrement per call;
//   Find* tls::Find: borrows the stored handle (const Data*), no refcount.
// Key forms: Literal = a string literal at the call site (`"key3"`),
// String = a std::string variable, Int = an integer key.
//
// Every single-threaded benchmark runs on Google Benchmark's main thread, so the
// thread's store is shared by all of them: Ensure*() below builds the state a
// benchmark needs and keeps it while consecutive benchmarks need the same one,
// so the 1,000,000-key store is filled once, not once per timing pass.
#include <pthread.h>
#include <sys/single_threaded.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/thread/thread.hpp>
#include <boost/thread/tss.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "benchmark/benchmark.h"
#include "benchmarks/peers.h"
#include "tls/tls.h"

namespace {

using benchmark::DoNotOptimize;

// ---------------------------------------------------------------------------
// Shared state.

std::string KeyName(size_t i) { return "key" + std::to_string(i); }

// The store of the calling thread holds exactly string keys key0..key{n-1}
// (plus integer keys 0..7 when n == 8), each with a handle to one shared int.
void EnsureTlsKeys(size_t n) {
  static size_t filled = ~size_t{0};
  static uint64_t filled_id = 0;
  // Same thread, same store (IDs are never reused): keep it.
  if (filled == n && tls::ID() == filled_id) return;
  tls::Unload();
  const tls::Data d = tls::MakeData(42);
  for (size_t i = 0; i < n; ++i) tls::Set(KeyName(i), d);
  for (int i = 0; i < 8; ++i) tls::Set(i, d);
  filled = n;
  filled_id = tls::ID();
}

thread_local std::unordered_map<std::string, int> t_map;

void EnsureMapKeys(size_t n) {
  if (t_map.size() == n) return;
  t_map.clear();
  t_map.rehash(0);
  t_map.reserve(n);
  for (size_t i = 0; i < n; ++i) t_map.emplace(KeyName(i), static_cast<int>(i));
}

// Keys key0..key{n-1} as std::strings, and a random sequence of indexes into
// them, for the random-key variants. Cached for the last n.
struct RandomKeys {
  size_t n = 0;
  std::vector<std::string> keys;
  std::vector<uint32_t> order;  // 64 Ki random indexes
};

const RandomKeys& GetRandomKeys(size_t n) {
  static RandomKeys r;
  if (r.n != n) {
    r.n = n;
    r.keys.clear();
    r.keys.reserve(n);
    for (size_t i = 0; i < n; ++i) r.keys.push_back(KeyName(i));
    std::mt19937 rng(12345);
    std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(n - 1));
    r.order.resize(size_t{1} << 16);
    for (uint32_t& i : r.order) i = pick(rng);
  }
  return r;
}

// ---------------------------------------------------------------------------
// Typed slot vs. the raw per-thread mechanisms.

tls::Slot<int> g_slot;

void BM_Slot_Get(benchmark::State& state) {
  g_slot.Emplace(1);
  for (auto _ : state) DoNotOptimize(g_slot.Get());
}
BENCHMARK(BM_Slot_Get);

void BM_Slot_SetInPlace(benchmark::State& state) {
  g_slot.Emplace(1);
  int i = 0;
  for (auto _ : state) {
    int* p = g_slot.Get();
    *p = ++i;
    DoNotOptimize(p);
  }
}
BENCHMARK(BM_Slot_SetInPlace);

void BM_Slot_Emplace(benchmark::State& state) {
  int i = 0;
  for (auto _ : state) DoNotOptimize(&g_slot.Emplace(++i));
}
BENCHMARK(BM_Slot_Emplace);

// A thread-scoped Slot (tls::ThreadSlot): one more thread_local read outside
// tasks; inside one, a walk of the open task frames to the thread's stub.
tls::ThreadSlot<int> g_thread_slot;

void BM_ThreadSlot_Get(benchmark::State& state) {
  g_thread_slot.Emplace(1);
  for (auto _ : state) DoNotOptimize(g_thread_slot.Get());
}
BENCHMARK(BM_ThreadSlot_Get);

void BM_ThreadSlot_GetInsideATask(benchmark::State& state) {
  g_thread_slot.Emplace(1);
  tls::TaskScope task(tls::Capture());
  for (auto _ : state) DoNotOptimize(g_thread_slot.Get());
}
BENCHMARK(BM_ThreadSlot_GetInsideATask);

pthread_key_t PthreadKey() {
  static pthread_key_t key = [] {
    pthread_key_t k;
    pthread_key_create(&k, nullptr);
    return k;
  }();
  return key;
}

int g_pthread_value = 1;

void BM_Pthread_Get(benchmark::State& state) {
  const pthread_key_t key = PthreadKey();
  pthread_setspecific(key, &g_pthread_value);
  for (auto _ : state) DoNotOptimize(pthread_getspecific(key));
}
BENCHMARK(BM_Pthread_Get);

void BM_Pthread_Set(benchmark::State& state) {
  const pthread_key_t key = PthreadKey();
  int values[2] = {1, 2};
  size_t i = 0;
  for (auto _ : state) {
    DoNotOptimize(pthread_setspecific(key, &values[++i & 1]));
  }
}
BENCHMARK(BM_Pthread_Set);

void BM_ThreadLocal_Get(benchmark::State& state) {
  for (auto _ : state) DoNotOptimize(tls_bench::ThreadLocalGet());
}
BENCHMARK(BM_ThreadLocal_Get);

void BM_ThreadLocal_Set(benchmark::State& state) {
  int i = 0;
  for (auto _ : state) tls_bench::ThreadLocalSet(++i);
}
BENCHMARK(BM_ThreadLocal_Set);

// Boost cleans up with a function that does nothing, so Set measures the
// store, not a `delete`.
void NoCleanup(int*) {}
boost::thread_specific_ptr<int> g_boost(&NoCleanup);

void BM_Boost_Get(benchmark::State& state) {
  static int v = 1;
  g_boost.reset(&v);
  for (auto _ : state) DoNotOptimize(g_boost.get());
}
BENCHMARK(BM_Boost_Get);

void BM_Boost_Set(benchmark::State& state) {
  static int values[2] = {1, 2};
  size_t i = 0;
  for (auto _ : state) g_boost.reset(&values[++i & 1]);
  DoNotOptimize(g_boost.get());
}
BENCHMARK(BM_Boost_Set);

// ---------------------------------------------------------------------------
// ID.

void BM_Tls_ID(benchmark::State& state) {
  tls::ID();
  for (auto _ : state) DoNotOptimize(tls::ID());
}
BENCHMARK(BM_Tls_ID);

void BM_ThreadLocal_Id(benchmark::State& state) {
  for (auto _ : state) DoNotOptimize(tls_bench::ThreadLocalId());
}
BENCHMARK(BM_ThreadLocal_Id);

// ---------------------------------------------------------------------------
// String keys, 8 stored. The hot key is "key3".

void BM_Tls_GetLiteralHit(benchmark::State& state) {
  EnsureTlsKeys(8);
  for (auto _ : state) DoNotOptimize(tls::Get("key3"));
}
BENCHMARK(BM_Tls_GetLiteralHit);

void BM_Tls_FindLiteralHit(benchmark::State& state) {
  EnsureTlsKeys(8);
  for (auto _ : state) DoNotOptimize(tls::Find("key3"));
}
BENCHMARK(BM_Tls_FindLiteralHit);

void BM_Tls_GetStringHit(benchmark::State& state) {
  EnsureTlsKeys(8);
  std::string key = "key3";
  for (auto _ : state) {
    DoNotOptimize(key);  // the key's text may have changed: hash it again
    DoNotOptimize(tls::Get(key));
  }
}
BENCHMARK(BM_Tls_GetStringHit);

void BM_Tls_FindStringHit(benchmark::State& state) {
  EnsureTlsKeys(8);
  std::string key = "key3";
  for (auto _ : state) {
    DoNotOptimize(key);
    DoNotOptimize(tls::Find(key));
  }
}
BENCHMARK(BM_Tls_FindStringHit);

void BM_Tls_GetLiteralMiss(benchmark::State& state) {
  EnsureTlsKeys(8);
  for (auto _ : state) DoNotOptimize(tls::Get("nokey"));
}
BENCHMARK(BM_Tls_GetLiteralMiss);

void BM_Tls_FindLiteralMiss(benchmark::State& state) {
  EnsureTlsKeys(8);
  for (auto _ : state) DoNotOptimize(tls::Find("nokey"));
}
BENCHMARK(BM_Tls_FindLiteralMiss);

void BM_Tls_GetStringMiss(benchmark::State& state) {
  EnsureTlsKeys(8);
  std::string key = "nokey";
  for (auto _ : state) {
    DoNotOptimize(key);
    DoNotOptimize(tls::Get(key));
  }
}
BENCHMARK(BM_Tls_GetStringMiss);

// Sets alternate between two handles made outside the loop, so each one
// replaces a different value (copy in: one atomic increment; release of the
// old: one decrement), for the engine and the handle-holding map alike.
struct TwoHandles {
  const tls::Data d[2] = {tls::MakeData(7), tls::MakeData(8)};
  size_t i = 0;
  const tls::Data& Next() { return d[++i & 1]; }
};

void BM_Tls_SetLiteral(benchmark::State& state) {
  EnsureTlsKeys(8);
  TwoHandles h;
  for (auto _ : state) tls::Set("key3", h.Next());
}
BENCHMARK(BM_Tls_SetLiteral);

void BM_Tls_SetString(benchmark::State& state) {
  EnsureTlsKeys(8);
  TwoHandles h;
  std::string key = "key3";
  for (auto _ : state) {
    DoNotOptimize(key);
    tls::Set(key, h.Next());
  }
}
BENCHMARK(BM_Tls_SetString);

// The unordered_map peer. ClobberMemory keeps the (inlined) lookup inside the
// loop; a std::string is built from the literal on every call, as it is for
// any caller of find() on a map without heterogeneous lookup.
void BM_Map_FindLiteralHit(benchmark::State& state) {
  EnsureMapKeys(8);
  for (auto _ : state) {
    auto it = t_map.find("key3");
    DoNotOptimize(it);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Map_FindLiteralHit);

void BM_Map_FindStringHit(benchmark::State& state) {
  EnsureMapKeys(8);
  std::string key = "key3";
  for (auto _ : state) {
    DoNotOptimize(key);
    auto it = t_map.find(key);
    DoNotOptimize(it);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Map_FindStringHit);

void BM_Map_FindLiteralMiss(benchmark::State& state) {
  EnsureMapKeys(8);
  for (auto _ : state) {
    auto it = t_map.find("nokey");
    DoNotOptimize(it);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Map_FindLiteralMiss);

void BM_Map_FindStringMiss(benchmark::State& state) {
  EnsureMapKeys(8);
  std::string key = "nokey";
  for (auto _ : state) {
    DoNotOptimize(key);
    auto it = t_map.find(key);
    DoNotOptimize(it);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Map_FindStringMiss);

// Like for like: a map whose values are tls::Data handles, so a get copies a
// handle (two atomic refcount operations) exactly as tls::Get does, and an
// assignment swaps handles exactly as tls::Set does.
thread_local std::unordered_map<std::string, tls::Data> t_data_map;

void EnsureDataMapKeys(size_t n) {
  if (t_data_map.size() == n) return;
  t_data_map.clear();
  const tls::Data d = tls::MakeData(42);
  for (size_t i = 0; i < n; ++i) t_data_map.emplace(KeyName(i), d);
}

void BM_DataMap_GetLiteralHit(benchmark::State& state) {
  EnsureDataMapKeys(8);
  for (auto _ : state) {
    std::optional<tls::Data> copy;
    if (auto it = t_data_map.find("key3"); it != t_data_map.end()) copy = it->second;
    DoNotOptimize(copy);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_DataMap_GetLiteralHit);

void BM_DataMap_AssignLiteral(benchmark::State& state) {
  EnsureDataMapKeys(8);
  TwoHandles h;
  for (auto _ : state) {
    t_data_map["key3"] = h.Next();
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_DataMap_AssignLiteral);

void BM_Map_AssignLiteral(benchmark::State& state) {
  EnsureMapKeys(8);
  int i = 0;
  for (auto _ : state) {
    t_map["key3"] = ++i;
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Map_AssignLiteral);

void BM_Map_AssignString(benchmark::State& state) {
  EnsureMapKeys(8);
  std::string key = "key3";
  int i = 0;
  for (auto _ : state) {
    DoNotOptimize(key);
    t_map[key] = ++i;
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Map_AssignString);

// ---------------------------------------------------------------------------
// Integer keys (8 stored next to the 8 string keys).

void BM_Tls_GetIntHit(benchmark::State& state) {
  EnsureTlsKeys(8);
  int key = 3;
  for (auto _ : state) {
    DoNotOptimize(key);
    DoNotOptimize(tls::Get(key));
  }
}
BENCHMARK(BM_Tls_GetIntHit);

void BM_Tls_FindIntHit(benchmark::State& state) {
  EnsureTlsKeys(8);
  int key = 3;
  for (auto _ : state) {
    DoNotOptimize(key);
    DoNotOptimize(tls::Find(key));
  }
}
BENCHMARK(BM_Tls_FindIntHit);

void BM_Tls_FindIntMiss(benchmark::State& state) {
  EnsureTlsKeys(8);
  int key = 1000;
  for (auto _ : state) {
    DoNotOptimize(key);
    DoNotOptimize(tls::Find(key));
  }
}
BENCHMARK(BM_Tls_FindIntMiss);

void BM_Tls_SetInt(benchmark::State& state) {
  EnsureTlsKeys(8);
  TwoHandles h;
  int key = 3;
  for (auto _ : state) {
    DoNotOptimize(key);
    tls::Set(key, h.Next());
  }
}
BENCHMARK(BM_Tls_SetInt);

// ---------------------------------------------------------------------------
// Cost against the number of keys: 1, 8, 1,000, 1,000,000. "Hot" looks one key
// up again and again (it stays in cache); "Random" looks up keys in a random
// order (at 1,000,000 keys every lookup misses the caches, for both sides).

void ScaleArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("keys");
  for (int n : {1, 8, 1000, 1000000}) b->Arg(n);
}

void BM_Tls_FindHotAtN(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EnsureTlsKeys(n);
  std::string key = KeyName(0);
  for (auto _ : state) {
    DoNotOptimize(key);
    DoNotOptimize(tls::Find(key));
  }
}
BENCHMARK(BM_Tls_FindHotAtN)->Apply(ScaleArgs);

void BM_Tls_GetHotAtN(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EnsureTlsKeys(n);
  std::string key = KeyName(0);
  for (auto _ : state) {
    DoNotOptimize(key);
    DoNotOptimize(tls::Get(key));
  }
}
BENCHMARK(BM_Tls_GetHotAtN)->Apply(ScaleArgs);

void BM_Tls_FindRandomAtN(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EnsureTlsKeys(n);
  const RandomKeys& r = GetRandomKeys(n);
  size_t i = 0;
  for (auto _ : state) {
    const std::string& key = r.keys[r.order[i++ & 0xffff]];
    DoNotOptimize(tls::Find(key));
  }
}
BENCHMARK(BM_Tls_FindRandomAtN)->Apply(ScaleArgs);

void BM_Map_FindHotAtN(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EnsureMapKeys(n);
  std::string key = KeyName(0);
  for (auto _ : state) {
    DoNotOptimize(key);
    auto it = t_map.find(key);
    DoNotOptimize(it);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Map_FindHotAtN)->Apply(ScaleArgs);

void BM_Map_FindRandomAtN(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  EnsureMapKeys(n);
  const RandomKeys& r = GetRandomKeys(n);
  size_t i = 0;
  for (auto _ : state) {
    const std::string& key = r.keys[r.order[i++ & 0xffff]];
    auto it = t_map.find(key);
    DoNotOptimize(it);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Map_FindRandomAtN)->Apply(ScaleArgs);

// ---------------------------------------------------------------------------
// Thread create + join, wall time. "Stub" gives the thread a stub holding four
// values (copies of one handle made outside, so the figure is the engine's, not
// the values' construction) and one AtExit handler, all closed/run at exit.

void BM_Thread_Bare(benchmark::State& state) {
  for (auto _ : state) {
    std::thread t([] { benchmark::ClobberMemory(); });
    t.join();
  }
}
BENCHMARK(BM_Thread_Bare)->UseRealTime();

void BM_Thread_Stub(benchmark::State& state) {
  const tls::Data d = tls::MakeData(1);
  for (auto _ : state) {
    std::thread t([&d] {
      tls::Set("a", d);
      tls::Set("b", d);
      tls::Set("c", d);
      tls::Set("d", d);
      tls::AtExit([] { benchmark::ClobberMemory(); });
    });
    t.join();
  }
}
BENCHMARK(BM_Thread_Stub)->UseRealTime();

// The same with boost: four thread_specific_ptr values and one
// boost::this_thread::at_thread_exit (a peer, for reference).
boost::thread_specific_ptr<int> g_boost4[4] = {
    boost::thread_specific_ptr<int>(&NoCleanup), boost::thread_specific_ptr<int>(&NoCleanup),
    boost::thread_specific_ptr<int>(&NoCleanup), boost::thread_specific_ptr<int>(&NoCleanup)};

void BM_Thread_Boost(benchmark::State& state) {
  static int v = 1;
  for (auto _ : state) {
    std::thread t([] {
      for (auto& p : g_boost4) p.reset(&v);
      boost::this_thread::at_thread_exit([] { benchmark::ClobberMemory(); });
    });
    t.join();
  }
}
BENCHMARK(BM_Thread_Boost)->UseRealTime();

// ---------------------------------------------------------------------------
// tls::Counter against a shared std::atomic<int64_t> and the boost
// sharded counter of peers.h, with 1 and 2 threads adding at once. With
// ->Threads(n), Google Benchmark runs the loop on n threads together and
// reports CPU time per Add summed over them: the time per Add on each thread,
// so total throughput is n over it, and a ratio of times is the inverse
// ratio of throughputs.

// On a cache line of its own, so that only the adders share it.
alignas(64) std::atomic<int64_t> g_atomic_count{0};
tls::Counter g_counter;
tls_bench::BoostShardedCounter g_boost_counter;

void BM_Atomic_FetchAdd(benchmark::State& state) {
  for (auto _ : state) g_atomic_count.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_Atomic_FetchAdd)->Threads(1)->Threads(2);

void BM_Counter_Add(benchmark::State& state) {
  for (auto _ : state) g_counter.Add(1);
}
BENCHMARK(BM_Counter_Add)->Threads(1)->Threads(2);

void BM_BoostCounter_Add(benchmark::State& state) {
  for (auto _ : state) g_boost_counter.Add(1);
}
BENCHMARK(BM_BoostCounter_Add)->Threads(1)->Threads(2);

// Read with `threads` parked threads (64 KiB stacks) that have each added
// once to both counters, so the two Reads run over the same process: a walk
// of every live stub for tls::Counter, the mutex and the list for boost. The
// threads are started before the timed loop and joined after it.
class ParkedAdders {
 public:
  // `also` runs on each parked thread after its Adds.
  explicit ParkedAdders(int n, void (*also)() = nullptr) : threads_(n), also_(also) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (pthread_t& t : threads_) {
      if (pthread_create(&t, &attr, &Park, this) != 0) std::abort();
    }
    pthread_attr_destroy(&attr);
    for (int r; (r = ready_.load(std::memory_order_acquire)) < n;) ready_.wait(r);
  }
  ~ParkedAdders() {
    go_.store(true, std::memory_order_release);
    go_.notify_all();
    for (pthread_t t : threads_) pthread_join(t, nullptr);
  }

 private:
  static void* Park(void* arg) {
    auto* self = static_cast<ParkedAdders*>(arg);
    g_counter.Add(1);
    g_boost_counter.Add(1);
    if (self->also_ != nullptr) self->also_();
    self->ready_.fetch_add(1, std::memory_order_release);
    self->ready_.notify_all();
    self->go_.wait(false, std::memory_order_acquire);
    return nullptr;
  }

  std::vector<pthread_t> threads_;
  void (*also_)();
  std::atomic<int> ready_{0};
  std::atomic<bool> go_{false};
};

template <class C>
void CounterRead(benchmark::State& state, C& counter) {
  const int64_t before = counter.Read();
  ParkedAdders parked(static_cast<int>(state.range(0)));
  if (counter.Read() != before + state.range(0)) {  // every parked thread counted once
    state.SkipWithError("Read missed a parked thread's Add");
    return;
  }
  for (auto _ : state) DoNotOptimize(counter.Read());
}

void ReadArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("threads");
  for (int n : {1, 64, 1000}) b->Arg(n);
}

void BM_Counter_Read(benchmark::State& state) { CounterRead(state, g_counter); }
BENCHMARK(BM_Counter_Read)->Apply(ReadArgs);

void BM_BoostCounter_Read(benchmark::State& state) { CounterRead(state, g_boost_counter); }
BENCHMARK(BM_BoostCounter_Read)->Apply(ReadArgs);

// Slot::ForEachThread summing one value per parked thread, vs the boost
// peer's Read above (a mutex and a list of every thread's shard): the same
// sum over the same threads. Each parked thread holds a value in the Slot.
tls::Slot<std::atomic<int64_t>> g_walked;

void BM_Slot_ForEachThreadSum(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  ParkedAdders parked(n, [] { g_walked.Emplace(1); });
  int64_t sum = 0;
  g_walked.ForEachThread(
      [&](std::atomic<int64_t>& v) { sum += v.load(std::memory_order_relaxed); });
  if (sum != n) {
    state.SkipWithError("the walk missed a parked thread's value");
    return;
  }
  for (auto _ : state) {
    int64_t total = 0;
    g_walked.ForEachThread(
        [&](std::atomic<int64_t>& v) { total += v.load(std::memory_order_relaxed); });
    DoNotOptimize(total);
  }
}
BENCHMARK(BM_Slot_ForEachThreadSum)->Apply(ReadArgs);

// A Slot as an object: made, given a value on this thread, destroyed, with
// `threads` parked threads alive (the destruction walks them all to release
// their values; none has one here). The peer row is a pthread key made, set
// and deleted, which releases no other thread's value at all.
void BM_Slot_MakeSetDestroy(benchmark::State& state) {
  ParkedAdders parked(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    tls::Slot<int> slot;
    DoNotOptimize(&slot.Emplace(1));
  }
}
BENCHMARK(BM_Slot_MakeSetDestroy)->Apply(ReadArgs);

void BM_PthreadKey_MakeSetDelete(benchmark::State& state) {
  ParkedAdders parked(static_cast<int>(state.range(0)));
  static int value = 1;
  for (auto _ : state) {
    pthread_key_t key;
    if (pthread_key_create(&key, nullptr) != 0) std::abort();
    pthread_setspecific(key, &value);
    pthread_key_delete(key);
  }
}
BENCHMARK(BM_PthreadKey_MakeSetDelete)->Apply(ReadArgs);

// ---------------------------------------------------------------------------
// Tasks (core/task.h): what Wrap adds to a task, with 0, 4 and 16 values
// captured, on the calling thread and through a real pool.

// The calling thread's store holds exactly `n` values (keys ctx0...).
void EnsureTaskValues(int64_t n) {
  static int64_t filled = -1;
  static uint64_t filled_id = 0;
  if (filled == n && tls::ID() == filled_id) return;
  tls::Unload();
  for (int64_t i = 0; i < n; ++i) tls::Set("ctx" + std::to_string(i), tls::MakeData(i));
  filled = n;
  filled_id = tls::ID();
}

int g_task_sink = 0;
[[gnu::noinline]] void TaskBody() { DoNotOptimize(++g_task_sink); }

// Wrap's whole cost without a pool: capture on this thread (a fan-out: the
// values do not change between captures), then run the task here (begin, body,
// the task's end, the thread's state back), then drop the wrapper.
void BM_Task_WrapAndCall(benchmark::State& state) {
  EnsureTaskValues(state.range(0));
  for (auto _ : state) {
    auto task = tls::Wrap(&TaskBody);
    task();
  }
}
BENCHMARK(BM_Task_WrapAndCall)->ArgName("values")->Arg(0)->Arg(4)->Arg(16);

// The same when every task captures changed values (a Set between captures).
void BM_Task_SetWrapAndCall(benchmark::State& state) {
  EnsureTaskValues(state.range(0));
  const tls::Data d = tls::MakeData(int64_t{0});
  for (auto _ : state) {
    tls::Set("ctx0", d);
    auto task = tls::Wrap(&TaskBody);
    task();
  }
}
BENCHMARK(BM_Task_SetWrapAndCall)->ArgName("values")->Arg(4);

void BM_Task_SetAndBareCall(benchmark::State& state) {
  EnsureTaskValues(4);
  const tls::Data d = tls::MakeData(int64_t{0});
  for (auto _ : state) {
    tls::Set("ctx0", d);
    auto task = &TaskBody;
    DoNotOptimize(task);
    task();
  }
}
BENCHMARK(BM_Task_SetAndBareCall);

void BM_Task_BareCall(benchmark::State& state) {
  for (auto _ : state) {
    auto task = &TaskBody;
    DoNotOptimize(task);
    task();
  }
}
BENCHMARK(BM_Task_BareCall);

// Tasks through a one-thread boost::asio::thread_pool, two ways:
//   RoundTrip: post one task, wait until it has run (the pool thread wakes up
//              for each: what one request's hop to a pool costs);
//   Batch:     post kPoolBatch tasks, then wait for all (one wake-up per batch:
//              the per-task cost on a busy pool, where the poster and the pool
//              thread share the snapshot's reference count).
constexpr int kPoolBatch = 256;

boost::asio::thread_pool& TaskPool() {
  static boost::asio::thread_pool pool(1);
  return pool;
}

template <class MakeTask>
void PoolRoundTrips(benchmark::State& state, MakeTask make_task) {
  std::atomic<bool> done{false};
  for (auto _ : state) {
    done.store(false, std::memory_order_relaxed);
    boost::asio::post(TaskPool(), make_task([&done] {
                        TaskBody();
                        done.store(true, std::memory_order_release);
                      }));
    while (!done.load(std::memory_order_acquire)) {
    }
  }
}

template <class MakeTask>
void PoolBatches(benchmark::State& state, MakeTask make_task) {
  std::atomic<int> left{0};
  for (auto _ : state) {
    left.store(kPoolBatch, std::memory_order_relaxed);
    for (int i = 0; i < kPoolBatch; ++i) {
      boost::asio::post(TaskPool(), make_task([&left] {
                          TaskBody();
                          left.fetch_sub(1, std::memory_order_release);
                        }));
    }
    while (left.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }
  state.SetItemsProcessed(state.iterations() * kPoolBatch);
}

auto Bare() {
  return [](auto f) { return f; };
}
auto Wrapped() {
  return [](auto f) { return tls::Wrap(std::move(f)); };
}

void BM_Pool_RoundTripBare(benchmark::State& state) { PoolRoundTrips(state, Bare()); }
BENCHMARK(BM_Pool_RoundTripBare)->UseRealTime();

void BM_Pool_RoundTripWrap(benchmark::State& state) {
  EnsureTaskValues(state.range(0));
  PoolRoundTrips(state, Wrapped());
}
BENCHMARK(BM_Pool_RoundTripWrap)->ArgName("values")->Arg(0)->Arg(4)->Arg(16)->UseRealTime();

void BM_Pool_BatchBare(benchmark::State& state) { PoolBatches(state, Bare()); }
BENCHMARK(BM_Pool_BatchBare)->UseRealTime();

void BM_Pool_BatchWrap(benchmark::State& state) {
  EnsureTaskValues(state.range(0));
  PoolBatches(state, Wrapped());
}
BENCHMARK(BM_Pool_BatchWrap)->ArgName("values")->Arg(4)->UseRealTime();

// The same walk with one parked thread, after `ended` threads that held a
// value in the Slot and a Counter share have ended: what a walk costs in a
// process whose thread count once peaked. Last in the file, so the ended
// threads' stubs weigh on no other row. The peer row is the same boost read.
void EndThreadsWithValues(int n) {
  static int ended_so_far = 0;
  for (; ended_so_far < n; ended_so_far += 100) {
    std::vector<std::thread> batch;
    for (int i = 0; i < 100; ++i)
      batch.emplace_back([] {
        g_walked.Emplace(1);
        g_counter.Add(1);
        g_boost_counter.Add(1);
      });
    for (std::thread& t : batch) t.join();
  }
}

void BM_Slot_ForEachThreadSumAfterEnded(benchmark::State& state) {
  EndThreadsWithValues(static_cast<int>(state.range(0)));
  ParkedAdders parked(1, [] { g_walked.Emplace(1); });
  for (auto _ : state) {
    int64_t total = 0;
    g_walked.ForEachThread(
        [&](std::atomic<int64_t>& v) { total += v.load(std::memory_order_relaxed); });
    DoNotOptimize(total);
  }
}
BENCHMARK(BM_Slot_ForEachThreadSumAfterEnded)->ArgName("ended")->Arg(1000);

template <class C>
void CounterReadAfterEnded(benchmark::State& state, C& counter) {
  EndThreadsWithValues(static_cast<int>(state.range(0)));
  ParkedAdders parked(1);
  for (auto _ : state) DoNotOptimize(counter.Read());
}

void BM_Counter_ReadAfterEnded(benchmark::State& state) { CounterReadAfterEnded(state, g_counter); }
BENCHMARK(BM_Counter_ReadAfterEnded)->ArgName("ended")->Arg(1000);

void BM_BoostCounter_ReadAfterEnded(benchmark::State& state) {
  CounterReadAfterEnded(state, g_boost_counter);
}
BENCHMARK(BM_BoostCounter_ReadAfterEnded)->ArgName("ended")->Arg(1000);

}  // namespace

int main(int argc, char** argv) {
  // A TLS library lives in multithreaded programs. Start (and join) one thread
  // first: while a process has never had a second thread, libstdc++ skips the
  // atomic instructions of shared_ptr's refcount (__libc_single_threaded), which
  // would flatter tls::Get and tls::Set. glibc never turns the flag back.
  std::thread([] {}).join();
  if (__libc_single_threaded) {
    std::fprintf(stderr, "tls_bench: still single-threaded; refcounts are not atomic\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
