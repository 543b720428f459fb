// File: benchmarks/table_bench.cc
//
// The per-thread key table (core/internal/key_table.h) against its floor
// (docs/benchmarks.md). Four modes, one binary:
//
//   table_bench probes [MAX_N]   probe lengths: key=value lines (below)
//   table_bench memory [MAX_N]   heap bytes per key: key=value lines
//   table_bench flood [N]        crafted vs random keys, timed (below)
//   table_bench lines N LOOKUPS find|keys|load
//                                a workload to run under cachegrind (below)
//   table_bench [--table_keys=N] [--benchmark_*]
//                                Google Benchmark: lookups vs the memory floor
//
// Output lines are "name value", the format of tools/run_benchmarks.sh's extra
// file, which tools/bench_table.py reads.
//
// probes: keys "key0".."key{N-1}" (and, separately, integers 0..N-1) are put
// into a KeyTable in order; at N = 8, 16, ..., 2^20 and 100, 1000, ..., 10^6
// it prints the mean KeyTable::ProbesFor (slots a lookup examines, 1 = at
// home) over the N present keys and over N absent ones ("key{N}".."key{2N-1}",
// integers N..2N-1), and the worst mean over all N; and the worst ratio of the
// hit mean to what a uniformly random hash averages at the same load (linear
// probing at load a: (1 + 1/(1-a))/2, 1.5 at load 1/2), which is what the
// hash itself adds. No timing, but not deterministic: the hash is keyed by
// a secret each process draws (core/key.h), so each run measures one draw;
// at small N a uniformly random hash's own spread moves the worst ratio by
// ±0.3. tools/run_benchmarks.sh runs it 7 times and reports medians.
//
// memory: KeyTable::block_bytes() / size() at the same N (string keys); and
// at the largest N, the calling thread's store filled through the public API,
// tls::GetStats().bytes (its stub, table included) / values.
//
// lines: cache lines a random-key tls::Find touches, counted by cachegrind.
// Every variant first fills the store with N keys and allocates a buffer the
// size of the table (so that this set-up cancels out), then does LOOKUPS
// iterations of: draw a random index from a register-only generator, write
// "key<index>" into a stack buffer, build the tls::Key (hashing it), then
//   find: tls::Find(key)          keys: nothing more (the key material's cost)
//   load: one 8-byte load from a random word of the buffer (the floor)
// so (misses of find - misses of keys) / LOOKUPS is the table's lines per
// lookup, and (load - keys) / LOOKUPS the floor's (about 1). The key text is
// made on the stack, not read from a precomputed array: cachegrind simulates
// no prefetcher, so even a sequential key array would add its own misses.
//
// flood: the hash-flooding comparison, through the public API.
// N (50,000) keys built to collide under the hash's old public constants
// (the first 8 bytes equal kSeed1, the digits of i after them: one 64-bit
// hash for all before the secret), against N random 16-byte keys: the time
// to tls::Set all N then tls::Find each, then tls::Reset, in ABBA rounds, the
// median round of each. Prints flood.crafted_ns_per_key, flood.random_ns_per_key.
//
// Google Benchmark, at N = 1,000,000 keys (--table_keys), the store of the
// main thread holding "key0".."key{N-1}":
//   BM_Tls_FindIndependentAtN   tls::Find of random keys, each lookup
//                               independent of the last (they overlap);
//   BM_Floor_IndependentLoadsAtN  random 8-byte loads over a buffer of the
//                               table's block_bytes(): its floor;
//   BM_Tls_FindDependentAtN     the same keys, but the next key's index is
//                               this one's plus the found handle's non-null
//                               bit: one lookup after another (latency);
//   BM_Floor_DependentChaseAtN  a pointer chase along a random cycle through
//                               the lines of a buffer of the same size;
//   BM_Tls_FindValueChainAtN    the value under each key names the next key of
//                               a random cycle through all keys: a lookup,
//                               then a read of the value (what a user's
//                               dependent lookups pay; no target);
//   BM_Keys_*OnlyAtN            the key material alone, without lookups: what
//                               the engine benchmarks pay besides Find.
// Key material is laid out to add no cache misses of its own. Lookups read
// precomputed tls::Keys (hash included, text inline beside them) from one
// array in lookup order, a sequential stream the prefetcher hides; the floors
// read their random indexes the same way. The value chain's values are
// allocated in cycle order, so it reads them as a nearly sequential stream.
#include <sys/mman.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "benchmark/benchmark.h"
#include "benchmarks/abba.h"
#include "core/internal/key_access.h"
#include "core/internal/key_table.h"
#include "tls/tls.h"

namespace {

// The floor buffers get what the engine gives a big table (core/internal/
// key_table.cc): a 2 MiB-aligned block advised to use transparent huge pages,
// so the floor and the table pay the same TLB costs.
template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT
  static constexpr std::align_val_t kAlign{size_t{2} << 20};
  T* allocate(size_t n) {
    void* p = ::operator new(n * sizeof(T), kAlign);
    madvise(p, n * sizeof(T), MADV_HUGEPAGE);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p, kAlign); }
  friend bool operator==(const HugePageAllocator&, const HugePageAllocator&) { return true; }
};
template <class T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace

namespace {

using benchmark::DoNotOptimize;
using tls::internal::KeyAccess;
using tls::internal::KeyTable;

// "key<i>" into `out` (kTextBytes, of which it writes at most 16); returns its
// length. The 8 spare bytes quiet GCC's -Warray-bounds, which cannot tell that
// the hash's word loads stay within the text.
constexpr size_t kTextBytes = 24;
size_t KeyText(size_t i, char* out) {
  std::memcpy(out, "key", 3);
  return static_cast<size_t>(std::to_chars(out + 3, out + 16, i).ptr - out);
}

std::string KeyName(size_t i) { return "key" + std::to_string(i); }

// N at which the deterministic modes report: powers of two and a few others.
std::vector<size_t> Checkpoints(size_t max_n) {
  std::vector<size_t> ns;
  for (size_t n = 8; n <= max_n; n *= 2) ns.push_back(n);
  for (size_t n = 100; n <= max_n; n *= 10) ns.push_back(n);
  std::sort(ns.begin(), ns.end());
  return ns;
}

// Puts key(0)..key(max_n - 1) into `table` in order, calling at(n) when it
// holds n keys, for each checkpoint n. key(i) returns a std::string or an
// integer, made into a Key for the call.
template <class MakeKey>
void FillInOrder(KeyTable& table, size_t max_n, MakeKey key,
                 const std::function<void(size_t)>& at) {
  const tls::Data d = tls::MakeData(1);
  const std::vector<size_t> ns = Checkpoints(max_n);
  size_t next = 0;
  for (size_t i = 0; i < max_n && next < ns.size(); ++i) {
    table.Put(key(i), d);
    if (i + 1 == ns[next]) at(ns[next++]);
  }
}

template <class MakeKey>
double MeanProbes(const KeyTable& table, size_t from, size_t to, MakeKey key) {
  size_t total = 0;
  for (size_t i = from; i < to; ++i) total += table.ProbesFor(key(i));
  return static_cast<double>(total) / static_cast<double>(to - from);
}

template <class MakeKey>
void PrintProbes(const char* kind, size_t max_n, MakeKey key) {
  KeyTable table;
  double worst_hit = 0, worst_miss = 0, worst_vs_uniform = 0;
  size_t worst_hit_n = 0, worst_miss_n = 0, worst_vs_uniform_n = 0;
  FillInOrder(table, max_n, key, [&](size_t n) {
    const double hit = MeanProbes(table, 0, n, key);
    const double miss = MeanProbes(table, n, 2 * n, key);
    // What linear probing averages for a hit with a uniformly random hash at
    // this load (Knuth): the part of the probe length no hash can remove.
    const double load = static_cast<double>(n) / static_cast<double>(table.capacity());
    const double uniform = 0.5 * (1 + 1 / (1 - load));
    std::printf("probes_hit.%s.%zu %.4f\nprobes_miss.%s.%zu %.4f\nprobes_hit_uniform.%s.%zu %.4f\n",
                kind, n, hit, kind, n, miss, kind, n, uniform);
    if (hit > worst_hit) worst_hit = hit, worst_hit_n = n;
    if (miss > worst_miss) worst_miss = miss, worst_miss_n = n;
    if (hit / uniform > worst_vs_uniform) worst_vs_uniform = hit / uniform, worst_vs_uniform_n = n;
  });
  std::printf("probes_hit_vs_uniform_worst.%s %.4f\nprobes_hit_vs_uniform_worst_n.%s %zu\n", kind,
              worst_vs_uniform, kind, worst_vs_uniform_n);
  std::printf("probes_hit_worst.%s %.4f\nprobes_hit_worst_n.%s %zu\n", kind, worst_hit, kind,
              worst_hit_n);
  std::printf("probes_miss_worst.%s %.4f\nprobes_miss_worst_n.%s %zu\n", kind, worst_miss, kind,
              worst_miss_n);
}

int Probes(size_t max_n) {
  // The makers return what a Key is built from, not a Key: a Key views its
  // text, which must live until the call that takes the Key returns.
  PrintProbes("string", max_n, KeyName);
  PrintProbes("int", max_n, [](size_t i) { return i; });
  return 0;
}

// Fills the calling thread's store with key0..key{n-1}, one shared value.
void FillStore(size_t n) {
  tls::Unload();
  const tls::Data d = tls::MakeData(1);
  char text[kTextBytes];
  for (size_t i = 0; i < n; ++i) tls::Set(std::string_view(text, KeyText(i, text)), d);
}

// block_bytes() of a KeyTable holding key0..key{n-1}: the store's table.
size_t TableBytes(size_t n) {
  KeyTable table;
  const tls::Data d = tls::MakeData(1);
  for (size_t i = 0; i < n; ++i) table.Put(KeyName(i), d);
  return table.block_bytes();
}

int Memory(size_t max_n) {
  KeyTable table;
  FillInOrder(table, max_n, KeyName, [&](size_t n) {
    std::printf("table_bytes_per_key.%zu %.1f\n", n,
                static_cast<double>(table.block_bytes()) / static_cast<double>(n));
  });
  FillStore(max_n);
  const tls::Stats s = tls::GetStats();
  std::printf("store_bytes_per_key.%zu %.1f\n", max_n,
              static_cast<double>(s.bytes) / static_cast<double>(s.values));
  tls::Unload();
  return 0;
}

// xorshift64*: random numbers from a register, no memory.
struct Rng {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  uint64_t Below(uint64_t n) {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    return ((s * 0x2545f4914f6cdd1dull) >> 32) * n >> 32;
  }
};

int Lines(size_t n, size_t lookups, std::string_view what) {
  const bool find = what == "find", load = what == "load";
  if (!find && !load && what != "keys") return 2;
  FillStore(n);
  const size_t words = TableBytes(n) / 8;
  HugeVector<uint64_t> buffer(words, 1);
  Rng rng;
  uint64_t sum = 0;
  char text[kTextBytes];
  for (size_t i = 0; i < lookups; ++i) {
    if (load) {
      sum += buffer[rng.Below(words)];
      continue;
    }
    const tls::Key key(std::string_view(text, KeyText(rng.Below(n), text)));
    if (find) {
      sum += tls::Find(key) != nullptr;
    } else {
      sum += KeyAccess::Hash(key) >> 63;
    }
  }
  std::printf("lines %s: n %zu lookups %zu sum %llu\n", std::string(what).c_str(), n, lookups,
              static_cast<unsigned long long>(sum));
  return 0;
}

// ---------------------------------------------------------------------------
// Google Benchmark.

// A precomputed key: its text inline, and the Key viewing that text (so a
// copy would view the original's text: filled in place by Set).
struct InlineKey {
  char text[kTextBytes];
  tls::Key key{std::string_view()};
  void Set(size_t i) { key = tls::Key(std::string_view(text, KeyText(i, text))); }
};

// The value under each key in the dependent chain: the next key, and (for the
// keys-only baseline) a direct pointer to the next key's value.
struct NextKey {
  InlineKey next;
  const NextKey* next_value = nullptr;
};

// One cache line of the floor buffer: the chase follows `next`.
struct alignas(64) Line {
  const Line* next;
  uint64_t pad[7];
};

constexpr size_t kLookups = size_t{1} << 20;  // precomputed keys and indexes

// What the benchmarks at one N share, built once for that N.
struct World {
  size_t n = 0;
  uint64_t store_id = 0;
  std::vector<InlineKey> keys;     // kLookups random keys, in lookup order
  const NextKey* first = nullptr;  // the chain's start (values live in the store)
  HugeVector<Line> buffer;         // TableBytes(n) bytes
  std::vector<uint32_t> words;     // kLookups random word indexes into `buffer`
};

World& GetWorld(size_t n) {
  static World w;
  if (w.n == n && w.store_id == tls::ID()) return w;
  tls::Unload();
  std::mt19937_64 rng(12345);
  // A random cycle through all n keys (Sattolo), values allocated in its order.
  std::vector<uint32_t> next(n);
  for (size_t i = 0; i < n; ++i) next[i] = static_cast<uint32_t>(i);
  for (size_t i = n - 1; i > 0; --i) std::swap(next[i], next[rng() % i]);
  std::vector<tls::Data> values(n);
  std::vector<NextKey*> value_of(n);
  for (size_t k = 0, i = 0; k < n; ++k, i = next[i]) {
    values[i] = tls::MakeData(NextKey{});
    value_of[i] = values[i].TryValue<NextKey>();
    value_of[i]->next.Set(next[i]);
  }
  for (size_t i = 0; i < n; ++i) value_of[i]->next_value = value_of[next[i]];
  char text[kTextBytes];
  for (size_t i = 0; i < n; ++i) tls::Set(std::string_view(text, KeyText(i, text)), values[i]);
  w.first = value_of[0];

  std::uniform_int_distribution<size_t> pick(0, n - 1);
  w.keys = std::vector<InlineKey>(kLookups);
  for (InlineKey& k : w.keys) k.Set(pick(rng));

  // The floor: a buffer as big as the table, its lines in one random cycle.
  const size_t lines = TableBytes(n) / sizeof(Line);
  w.buffer = HugeVector<Line>(lines);
  std::vector<uint32_t> order(lines);
  for (size_t i = 0; i < lines; ++i) order[i] = static_cast<uint32_t>(i);
  for (size_t i = lines - 1; i > 0; --i) std::swap(order[i], order[rng() % i]);
  for (size_t i = 0; i < lines; ++i) w.buffer[i].next = &w.buffer[order[i]];
  std::uniform_int_distribution<uint32_t> word(0, static_cast<uint32_t>(lines * 8 - 1));
  w.words.resize(kLookups);
  for (uint32_t& i : w.words) i = word(rng);

  w.n = n;
  w.store_id = tls::ID();
  return w;
}

// A value the compiler must treat as unknown: `i += Opaque(x)` stays an add (a
// data dependency on x), never a branch the CPU could predict past.
inline size_t Opaque(size_t x) {
  asm("" : "+r"(x));
  return x;
}

void BM_Tls_FindIndependentAtN(benchmark::State& state) {
  const World& w = GetWorld(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) DoNotOptimize(tls::Find(w.keys[i++ & (kLookups - 1)].key));
}

void BM_Keys_IndependentOnlyAtN(benchmark::State& state) {
  const World& w = GetWorld(static_cast<size_t>(state.range(0)));
  uint64_t sum = 0;
  size_t i = 0;
  for (auto _ : state) {
    const tls::Key& k = w.keys[i++ & (kLookups - 1)].key;
    sum += KeyAccess::Hash(k) +
           static_cast<unsigned char>(*KeyAccess::Text(k));  // what Find reads of it
    DoNotOptimize(sum);
  }
}

void BM_Floor_IndependentLoadsAtN(benchmark::State& state) {
  const World& w = GetWorld(static_cast<size_t>(state.range(0)));
  const uint64_t* words = reinterpret_cast<const uint64_t*>(w.buffer.data());
  uint64_t sum = 0;  // DoNotOptimize(words[j]) alone could pass the address, not load
  size_t i = 0;
  for (auto _ : state) {
    sum += words[w.words[i++ & (kLookups - 1)]];
    DoNotOptimize(sum);
  }
}

// The same keys in the same order as the independent lookups, but the index of
// the next key is i + (the handle found is non-empty): the next lookup cannot
// start before this one has read its entry. A dependency through the returned
// pointer alone would not do: the CPU predicts the probe's branches and knows
// the entry's address before its loads return.
void BM_Tls_FindDependentAtN(benchmark::State& state) {
  const World& w = GetWorld(static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    const tls::Data* d = tls::Find(w.keys[i & (kLookups - 1)].key);
    i += Opaque(d->has_value());
  }
  DoNotOptimize(i);
}

// A chain through the values: the value under each key holds the next key of a
// random cycle through all N keys, so each step is a lookup and then a read of
// the value found (a user's dependent lookups: the value is what they wanted).
void BM_Tls_FindValueChainAtN(benchmark::State& state) {
  const World& w = GetWorld(static_cast<size_t>(state.range(0)));
  const NextKey* v = w.first;
  for (auto _ : state) {
    v = tls::Find(v->next.key)->TryValue<NextKey>();
    DoNotOptimize(v);
  }
}

// The value chain without the lookups: from each value straight to the next.
void BM_Keys_ValueChainOnlyAtN(benchmark::State& state) {
  const World& w = GetWorld(static_cast<size_t>(state.range(0)));
  const NextKey* v = w.first;
  for (auto _ : state) {
    DoNotOptimize(KeyAccess::Hash(v->next.key));
    v = v->next_value;
    DoNotOptimize(v);
  }
}

void BM_Floor_DependentChaseAtN(benchmark::State& state) {
  const World& w = GetWorld(static_cast<size_t>(state.range(0)));
  const Line* p = w.buffer.data();
  for (auto _ : state) {
    p = p->next;
    DoNotOptimize(p);
  }
}

void RegisterAll(int n) {
  for (auto [name, fn] : {
           std::pair{"BM_Keys_IndependentOnlyAtN", &BM_Keys_IndependentOnlyAtN},
           std::pair{"BM_Tls_FindIndependentAtN", &BM_Tls_FindIndependentAtN},
           std::pair{"BM_Floor_IndependentLoadsAtN", &BM_Floor_IndependentLoadsAtN},
           std::pair{"BM_Tls_FindDependentAtN", &BM_Tls_FindDependentAtN},
           std::pair{"BM_Keys_ValueChainOnlyAtN", &BM_Keys_ValueChainOnlyAtN},
           std::pair{"BM_Tls_FindValueChainAtN", &BM_Tls_FindValueChainAtN},
           std::pair{"BM_Floor_DependentChaseAtN", &BM_Floor_DependentChaseAtN},
       }) {
    benchmark::RegisterBenchmark(name, fn)->ArgName("keys")->Arg(n);
  }
}

std::vector<std::string> FloodKeys(size_t n, bool crafted) {
  std::vector<std::string> keys;
  constexpr uint64_t kOldPublicSeed1 = 0xd6e8feb86659fd93ull;
  std::mt19937_64 random(42);
  for (size_t i = 0; i < n; ++i) {
    char text[17];
    if (crafted) {
      std::memcpy(text, &kOldPublicSeed1, 8);
      std::snprintf(text + 8, 9, "%08zu", i % 100000000);
    } else {
      for (char& c : text) c = static_cast<char>('a' + random() % 26);
    }
    keys.emplace_back(text, 16);
  }
  return keys;
}

// Seconds to Set all keys, Find each, and Reset.
double SetFindReset(const std::vector<std::string>& keys) {
  const tls::Data d = tls::MakeData(1);
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& k : keys) tls::Set(k, d);
  size_t found = 0;
  for (const std::string& k : keys) found += tls::Find(k) != nullptr;
  tls::Reset();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (found != keys.size()) std::abort();
  return s;
}

int Flood(size_t n) {
  const std::vector<std::string> crafted = FloodKeys(n, true), random = FloodKeys(n, false);
  SetFindReset(random);  // warm the allocator
  const auto [a, b] = tls_bench::AbbaMedians(
      10, [&] { return SetFindReset(crafted); }, [&] { return SetFindReset(random); });
  std::printf("flood.keys %zu\nflood.crafted_ns_per_key %.2f\nflood.random_ns_per_key %.2f\n", n,
              a * 1e9 / double(n), b * 1e9 / double(n));
  return 0;
}

size_t ArgOr(int argc, char** argv, int i, size_t fallback) {
  return argc > i ? std::strtoull(argv[i], nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "probes") return Probes(ArgOr(argc, argv, 2, 1 << 20));
  if (mode == "memory") return Memory(ArgOr(argc, argv, 2, 1000000));
  if (mode == "flood") return Flood(ArgOr(argc, argv, 2, 50000));
  if (mode == "lines") {
    if (argc != 5) {
      std::fprintf(stderr, "usage: %s lines N LOOKUPS find|keys|load\n", argv[0]);
      return 2;
    }
    return Lines(ArgOr(argc, argv, 2, 0), ArgOr(argc, argv, 3, 0), argv[4]);
  }
  // --table_keys=N (default 1,000,000): the one N of the timed benchmarks, so
  // that one world serves them all, in any order (random interleaving).
  int n = 1000000;
  if (argc > 1 && std::string_view(argv[1]).starts_with("--table_keys=")) {
    n = std::atoi(argv[1] + std::strlen("--table_keys="));
    argv[1] = argv[0];
    --argc, ++argv;
  }
  RegisterAll(n);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
