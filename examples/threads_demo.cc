// threads_demo: the library at work. Three worker threads each keep their own
// values under the same keys, register at-exit handlers, and hold a
// "connection" that is closed automatically when the thread ends. The main
// thread has an ID and handlers too; they run when main returns. Last, a
// sharded counter and a listing read every thread at once.
//
//   ./dev example        (or: bazel run //examples:threads_demo)
#include <algorithm>
#include <cstdio>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tls/tls.h"

namespace {

std::mutex g_print_mu;

// Bumped by every thread; read by main. Totals survive the threads that added.
tls::Counter g_requests;

template <class... A>
void Say(const char* fmt, A... args) {
  std::lock_guard<std::mutex> lock(g_print_mu);
  std::printf(fmt, args...);
}

// A per-thread resource: tls closes it at thread exit because it has Close().
struct Connection {
  std::string owner;
  void Close() { Say("  [%s] connection closed automatically\n", owner.c_str()); }
};

// Each thread's handlers and closes run when that thread ends; the workers run
// one after another here so the printed story reads top to bottom.
void Worker(const std::string& name, int requests) {
  tls::Set("name", tls::MakeData(name));          // same key in every thread,
  tls::Set("requests", tls::MakeData(requests));  // a different value in each
  tls::Set("conn", tls::MakeData(Connection{name}));
  g_requests.Add(requests);
  Say("[%s] thread id %llu, stores name=%s requests=%d\n", name.c_str(),
      static_cast<unsigned long long>(tls::ID()), name.c_str(), requests);

  tls::AtExit([] {
    Say("  [%s] at-exit handler 1 (registered first, runs last)\n",
        tls::Get("name")->Value<std::string>().c_str());
  });
  tls::AtExit([] {
    // Handlers run before values are closed, so they can still read them.
    Say("  [%s] at-exit handler 2 (registered last, runs first): served %d requests\n",
        tls::Get("name")->Value<std::string>().c_str(), tls::Get("requests")->Value<int>());
  });
  Say("[%s] returning from the thread function...\n", name.c_str());
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  Say("main thread id %llu (go-tls would say 0 here)\n\n",
      static_cast<unsigned long long>(tls::ID()));
  tls::AtExit([] { Say("\nmain thread's at-exit handler: runs when main returns\n"); });

  const std::vector<std::pair<std::string, int>> workers = {{"alice", 3}, {"bob", 5}, {"carol", 8}};
  for (const auto& [name, requests] : workers) {
    std::thread(Worker, name, requests).join();
    Say("\n");
  }

  // Many threads at once: every ID is distinct, and never reused.
  std::vector<uint64_t> ids(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i) threads.emplace_back([&ids, i] { ids[i] = tls::ID(); });
  for (auto& t : threads) t.join();
  std::string list;
  for (uint64_t id : ids) list += std::to_string(id) + " ";
  Say("8 concurrent threads got ids: %s(all distinct, never reused)\n", list.c_str());

  // The main thread's store is private too: the workers' values are not here.
  Say("main sees key \"name\"? %s\n", tls::Get("name") ? "yes" : "no");

  // All threads at once: two jobs still running hold values; main lists them
  // (keys and counts, never values) and reads the counter across threads.
  std::latch ready(2), done(1);
  std::vector<std::thread> jobs;
  for (int job = 1; job <= 2; ++job) {
    jobs.emplace_back([&, job] {
      tls::Set("job", tls::MakeData(job));
      g_requests.Add(10);
      ready.count_down();
      done.wait();
    });
  }
  ready.wait();
  Say("\nrequests counted, live and ended threads: %lld\n",
      static_cast<long long>(g_requests.Read()));
  for (const tls::ThreadReport& t : tls::ListThreads()) {
    if (std::find(t.keys.begin(), t.keys.end(), "\"job\"") == t.keys.end()) continue;
    Say("  live thread id %llu holds %zu key(s): %s\n", static_cast<unsigned long long>(t.id),
        t.keys.size(), t.keys.front().c_str());
  }
  done.count_down();
  for (auto& t : jobs) t.join();
  Say("after they ended, still: %lld\n", static_cast<long long>(g_requests.Read()));
  return 0;
}
