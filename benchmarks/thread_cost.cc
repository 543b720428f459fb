// File: benchmarks/thread_cost.cc
//
// What a thread costs, bare and with the engine, in the two figures Google
// Benchmark cannot give (tools/run_benchmarks.sh runs it):
//
//   thread_cost loop <bare|stub|boost> <n>
//       creates and joins n std::threads one after the other. Run under
//       `valgrind --tool=callgrind` with two values of n, the difference of the
//       instruction totals divided by the difference of n is the user-space
//       instructions per thread create+join, start-up excluded.
//   thread_cost rss <bare|value|pthread|boost> <n>
//       starts n threads with 64 KiB stacks that each store one heap value (none
//       for bare) and wait; prints the growth of the process RSS per thread.
//
// Built twice (BUILD): :thread_cost on the engine, and
// :thread_cost_without_registry on the engine without the registry of stubs,
// so the two can be compared in one run.
//
// "stub" is the workload of BM_Thread_Stub: four values (copies of one handle)
// and one AtExit handler. "value" stores one tls::MakeData(int) per thread;
// "pthread" one `new int` under a pthread key whose destructor deletes it;
// "boost" one `new int` in a boost::thread_specific_ptr.
#include <pthread.h>

#include <atomic>
#include <boost/thread/thread.hpp>
#include <boost/thread/tss.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tls/tls.h"

namespace {

const tls::Data& SharedValue() {
  static const tls::Data d = tls::MakeData(1);
  return d;
}

pthread_key_t PthreadKey() {
  static pthread_key_t key = [] {
    pthread_key_t k;
    pthread_key_create(&k, [](void* p) { delete static_cast<int*>(p); });
    return k;
  }();
  return key;
}

boost::thread_specific_ptr<int>& BoostPtr() {
  static boost::thread_specific_ptr<int> p;
  return p;
}

void NoCleanup(int*) {}
boost::thread_specific_ptr<int> g_boost4[4] = {
    boost::thread_specific_ptr<int>(&NoCleanup), boost::thread_specific_ptr<int>(&NoCleanup),
    boost::thread_specific_ptr<int>(&NoCleanup), boost::thread_specific_ptr<int>(&NoCleanup)};
std::atomic<int> g_sink{0};

// The work a thread of each mode does before it ends (or waits).
void Work(const std::string& mode, int i) {
  if (mode == "stub") {
    const tls::Data& d = SharedValue();
    tls::Set("a", d);
    tls::Set("b", d);
    tls::Set("c", d);
    tls::Set("d", d);
    tls::AtExit([] { g_sink.fetch_add(1, std::memory_order_relaxed); });
  } else if (mode == "value") {
    tls::Set("v", tls::MakeData(i));
  } else if (mode == "pthread") {
    pthread_setspecific(PthreadKey(), new int(i));
  } else if (mode == "boost") {
    BoostPtr().reset(new int(i));
  } else if (mode == "boost4") {
    static int v = 1;
    for (auto& p : g_boost4) p.reset(&v);
    boost::this_thread::at_thread_exit([] { g_sink.fetch_add(1, std::memory_order_relaxed); });
  }
}

long RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

int Loop(const std::string& mode, int n) {
  const std::string work = mode == "boost" ? "boost4" : mode;
  for (int i = 0; i < n; ++i) std::thread([&work, i] { Work(work, i); }).join();
  return 0;
}

struct Live {
  std::string mode;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
};

void* LiveThread(void* arg) {
  auto* live = static_cast<Live*>(arg);
  Work(live->mode, live->ready.load(std::memory_order_relaxed));
  live->ready.fetch_add(1, std::memory_order_release);
  live->ready.notify_all();
  live->go.wait(false, std::memory_order_acquire);
  return nullptr;
}

int Rss(const std::string& mode, int n) {
  Live live;
  live.mode = mode;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  // One thread first, joined: one-time costs (key creation, the first arena,
  // lazy initialisation in the libraries) are not per-thread costs.
  {
    pthread_t t;
    Live warm;
    warm.mode = mode;
    warm.go = true;
    if (pthread_create(&t, &attr, &LiveThread, &warm) != 0) return 1;
    pthread_join(t, nullptr);
  }
  const long before = RssKiB();
  std::vector<pthread_t> threads(n);
  for (int i = 0; i < n; ++i) {
    if (int e = pthread_create(&threads[i], &attr, &LiveThread, &live); e != 0) {
      std::fprintf(stderr, "thread_cost: pthread_create #%d: %s\n", i, std::strerror(e));
      return 1;
    }
  }
  for (int r; (r = live.ready.load(std::memory_order_acquire)) < n;) live.ready.wait(r);
  const long after = RssKiB();
  live.go.store(true, std::memory_order_release);
  live.go.notify_all();
  for (pthread_t t : threads) pthread_join(t, nullptr);
  std::printf("rss_kib_per_thread %s %.3f\n", mode.c_str(),
              static_cast<double>(after - before) / n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr,
                 "usage: thread_cost loop <bare|stub|boost> <n>\n"
                 "       thread_cost rss <bare|value|pthread|boost> <n>\n");
    return 2;
  }
  const std::string what = argv[1], mode = argv[2];
  const int n = std::atoi(argv[3]);
  if (what == "loop") return Loop(mode, n);
  if (what == "rss") return Rss(mode, n);
  return 2;
}
