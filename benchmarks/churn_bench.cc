// File: benchmarks/churn_bench.cc
//
// Thread churn with and without the registry of stubs: the cost
// the registry adds to threads that start, store a few values, and end.
//
// The two engines cannot link into one binary (same symbols), so this source
// is built twice (BUILD): :churn_bench on //core, and
// :churn_bench_without_registry on //core:core_without_registry, the same
// engine compiled as it was before the registry. tools/run_benchmarks.sh runs
// the two alternately, one repetition each time, and tools/bench_table.py
// takes the ratio of their medians. Each binary names its benchmarks after
// its engine (…_WithRegistry / …_WithoutRegistry), so the results of both
// can be read together, and checks at start-up that it is linked with the
// engine its name says.
//
//   BM_Churn_Tls_*    one iteration starts 64 threads at once and joins them;
//                     each thread stores 4 values (copies of one handle made
//                     outside, as in BM_Thread_Stub and thread_cost), registers
//                     1 AtExit handler, and adds 1 to a tls::Counter, all
//                     closed, run and folded at its exit.
//   BM_Churn_Bare_*   the same 64 threads doing nothing: the floor, and, being
//                     identical in both binaries, a control for the alternation.
#include <sys/single_threaded.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "tls/tls.h"

#ifdef TLS_BENCH_WITHOUT_REGISTRY
#define ENGINE "WithoutRegistry"
constexpr bool kWithRegistry = false;
#else
#define ENGINE "WithRegistry"
constexpr bool kWithRegistry = true;
#endif

namespace {

constexpr int kThreads = 64;

tls::Counter g_ended;  // each churned thread adds 1
std::atomic<int64_t> g_handlers_run{0};

template <class Work>
void Churn(benchmark::State& state, Work work) {
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (auto _ : state) {
    for (int i = 0; i < kThreads; ++i) threads.emplace_back(work);
    for (std::thread& t : threads) t.join();
    threads.clear();
  }
  state.SetItemsProcessed(state.iterations() * kThreads);  // threads per second
}

void BM_Churn_Bare(benchmark::State& state) {
  Churn(state, [] { benchmark::ClobberMemory(); });
}

void BM_Churn_Tls(benchmark::State& state) {
  const tls::Data d = tls::MakeData(1);
  const int64_t counted = g_ended.Read(), run = g_handlers_run.load();
  Churn(state, [&d] {
    tls::Set("a", d);
    tls::Set("b", d);
    tls::Set("c", d);
    tls::Set("d", d);
    tls::AtExit([] { g_handlers_run.fetch_add(1, std::memory_order_relaxed); });
    g_ended.Add(1);
  });
  // Every thread's share folded at its exit, every handler run: the work was done.
  const int64_t threads = state.iterations() * kThreads;
  if (g_ended.Read() - counted != threads || g_handlers_run.load() - run != threads) {
    state.SkipWithError("a churned thread's Add or AtExit handler went missing");
  }
}

// The engine this binary is linked with: only with the registry does a walk
// see the calling thread's stub.
bool LinkedWithRegistry() {
  tls::Set("probe", tls::MakeData(1));
  const bool seen = tls::GetStats().threads > 0;
  tls::Unload();
  return seen;
}

}  // namespace

int main(int argc, char** argv) {
  // As tls_bench: a second thread first, so refcounts are atomic from the start.
  std::thread([] {}).join();
  if (__libc_single_threaded) {
    std::fprintf(stderr, "churn_bench: still single-threaded; refcounts are not atomic\n");
    return 1;
  }
  if (LinkedWithRegistry() != kWithRegistry) {
    std::fprintf(stderr, "churn_bench: built as %s but linked with the other engine\n", ENGINE);
    return 1;
  }
  benchmark::RegisterBenchmark("BM_Churn_Tls_" ENGINE, &BM_Churn_Tls)->UseRealTime();
  benchmark::RegisterBenchmark("BM_Churn_Bare_" ENGINE, &BM_Churn_Bare)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
