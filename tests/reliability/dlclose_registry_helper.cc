// Run by dlclose_test: a program with its OWN engine (it links //core) loads
// a plugin that links another copy, and threads use one engine, the other,
// or both. Each engine keeps its own registry of stubs: the program's
// ListThreads lists only the threads that used the program's engine, with
// the program's keys; the plugin's lists only those that used the plugin's.
// Prints what each engine listed, then ends the threads, unloads the plugin
// and prints what its registry check at unload found (dlclose_plugin.h).
// Usage: dlclose_registry_helper <plugin.so>
#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/reliability/dlclose_plugin_loader.h"
#include "tests/reliability/test_util.h"
#include "tls/threads.h"
#include "tls/tls.h"

namespace {

TlsPluginRecord g_record;

void Say(const std::string& line) { tls_test::WriteLine(line); }

enum Group { kProgram, kPlugin, kBoth, kGroups };

// Which group of threads `native` belongs to; kGroups if none.
int GroupOf(const std::vector<pthread_t> (&natives)[kGroups], pthread_t native) {
  for (int g = 0; g < kGroups; ++g) {
    for (pthread_t n : natives[g]) {
      if (pthread_equal(n, native)) return g;
    }
  }
  return kGroups;
}

std::string Tally(const int (&count)[kGroups + 1]) {
  return "program=" + std::to_string(count[kProgram]) +
         " plugin=" + std::to_string(count[kPlugin]) + " both=" + std::to_string(count[kBoth]) +
         " other=" + std::to_string(count[kGroups]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string path = tls_test::ResolvedPath(argv[1]);
  std::vector<pthread_t> natives[kGroups];
  {
    tls_test::Plugin plugin(path, &g_record);
    if (!plugin.ok()) {
      Say("cannot load: " + plugin.error());
      return 2;
    }
    Say("plugin engine is its own: " + std::to_string(plugin.engine_is_own()));
    const TlsPluginUseFn use = plugin.use;
    // Two threads of each group, each with a value in the engine(s) it uses.
    constexpr int kPerGroup = 2;
    std::latch ready(kGroups * kPerGroup), release(1);
    std::mutex mu;
    std::vector<std::thread> threads;
    for (int g = 0; g < kGroups; ++g) {
      for (int i = 0; i < kPerGroup; ++i) {
        threads.emplace_back([&, g] {
          if (g != kPlugin) tls::Set("program-key", tls::MakeData(g));
          if (g != kProgram) use(3);  // keys 0, 1, 2, a handler and a Slot value
          {
            std::lock_guard<std::mutex> lock(mu);
            natives[g].push_back(pthread_self());
          }
          ready.count_down();
          release.wait();
        });
      }
    }
    ready.wait();

    int count[kGroups + 1] = {};
    std::set<std::string> keys;
    for (const tls::ThreadReport& t : tls::ListThreads()) {
      ++count[GroupOf(natives, t.native)];
      keys.insert(t.keys.begin(), t.keys.end());
    }
    std::string names;
    for (const std::string& k : keys) names += " " + k;
    Say("program engine lists: " + Tally(count) + "; keys:" + names);

    TlsPluginThread listed[32];
    const int n = plugin.list_threads(listed, 32);
    int plugin_count[kGroups + 1] = {};
    std::set<int> key_counts;
    for (int i = 0; i < std::min(n, 32); ++i) {
      ++plugin_count[GroupOf(natives, listed[i].native)];
      key_counts.insert(listed[i].keys);
    }
    std::string counts;
    for (int k : key_counts) counts += " " + std::to_string(k);
    Say("plugin engine lists: " + Tally(plugin_count) + "; keys per thread:" + counts);

    release.count_down();
    for (std::thread& t : threads) t.join();
    Say("program engine lists after the threads ended: " +
        std::to_string(tls::ListThreads().size()));
    Say("plugin engine lists after the threads ended: " +
        std::to_string(plugin.list_threads(listed, 32)));
  }  // dlclose
  Say(tls_test::UnloadIfUnused(path) ? "plugin unloaded" : "plugin still loaded");
  Say("record: " + tls_test::Counts(g_record));
  return 0;
}
