// File: benchmarks/reset_bench.cc
//
// What `Add` + `tls::Reset` costs on a Counter made after many others (issue
// 19, part 4). counter.h gives Reset as the remedy when a Counter dies before
// its threads; but a thread's slot array is indexed by Slot index, which is
// never reused, so a store at index N makes the array N cells long (16 bytes
// each), Reset walks and drops the whole array, and the next store allocates
// and zero-fills it again.
//
//   reset_bench [SLOTS] [ROUNDS]
//
// One Counter is made first (index 0 or so), then SLOTS (default 100,000)
// others, then one more (index SLOTS). Two threads, each new, run one after
// the other in ABBA rounds (ROUNDS, default 6), each timing 200 iterations of
// { counter.Add(1); tls::Reset(); } after one untimed: `first` on the first Counter, `last` on
// the last. Prints "name value" lines (tools/run_benchmarks.sh's extra file):
// reset.slots, reset.first_ns, reset.last_ns (medians of the per-round mean).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "benchmarks/abba.h"
#include "tls/counter.h"
#include "tls/tls.h"

namespace {

constexpr int kIterations = 200;

double TimeAddReset(tls::Counter& counter) {
  double ns = 0;
  std::thread t([&] {
    // Once untimed: the thread's first store allocates its slot array, which
    // any thread using that Counter pays once; the rows are what each
    // Add + Reset after that costs.
    counter.Add(1);
    tls::Reset();
    const int64_t before = counter.Read();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kIterations; ++i) {
      counter.Add(1);
      tls::Reset();
    }
    ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
        kIterations;
    if (counter.Read() != before + kIterations) std::abort();
  });
  t.join();
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t slots = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 6;
  tls::Counter first;
  std::vector<std::unique_ptr<tls::Counter>> others(slots);
  for (auto& c : others) c = std::make_unique<tls::Counter>();
  tls::Counter last;
  const auto [first_ns, last_ns] = tls_bench::AbbaMedians(
      rounds, [&] { return TimeAddReset(first); }, [&] { return TimeAddReset(last); });
  std::printf("reset.slots %zu\nreset.first_ns %.1f\nreset.last_ns %.1f\n", slots, first_ns,
              last_ns);
  return 0;
}
