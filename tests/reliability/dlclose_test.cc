// dlclose: a plugin with its OWN copy of the engine is dlopen'ed, used from
// several threads, and dlclose'd while those threads are alive; then the
// threads exit. This is what crashed s2n-tls, sssd and boost.log users: an
// exit hook (a pthread key destructor) left pointing into a library that
// dlclose had unmapped.
//
// Two builds of the same plugin (BUILD):
//   libtls_plugin.so         exports every symbol (a plain linkshared build).
//                            GCC gives some C++ inline statics (libstdc++'s
//                            make_shared tag, to_chars digits) STB_GNU_UNIQUE
//                            binding, and glibc never unloads an object that
//                            defines one: dlclose leaves it mapped for good.
//   libtls_plugin_hidden.so  exports only its C API (version script), so it
//                            IS unloadable: the dangerous case.
//   libtls_plugin_late.so    the same as _hidden, for the late-hook tests.
//
// What glibc does with the unloadable one, pinned down below (evidence:
// /proc/self/maps, dlopen(RTLD_NOLOAD), the plugin's static destructors
// counting, the lowest free pthread key):
//   - The engine's hook is a thread_local destructor. While any thread has one
//     pending in the plugin, dlclose defers the unload: no static destructor
//     runs, the code stays mapped; the threads' exit sequences run in it when
//     they end, every handler and close included.
//   - After those threads have ended the plugin is still mapped; the next
//     dlclose in the process (of anything) unloads it: its static destructors
//     run (deleting the late hook's pthread key, dropping its fork handler)
//     and it is unmapped.
//   - A main thread that used the plugin pins it until the process exits.
//   - A late use (tls after a thread's exit sequence, run by a pthread key
//     destructor) pins the plugin for good: a key destructor does not keep
//     its library mapped, so without the pin a concurrent dlclose could unmap
//     the code it is about to run. libtls_plugin_late.so, a third copy of the
//     API-only build, takes those tests so the pin does not spill over.
//
// All threads at once: the plugin's engine keeps its own registry
// of stubs. Its ListThreads lists only the threads that used the plugin, and
// a program with an engine of its own (dlclose_registry_helper) lists only
// its own users, never the plugin's values. When the plugin is unloaded the
// engine frees its registry (the stub cache's static destructor), so nothing
// of it is left behind in the unmapped library's place: the plugin's last
// static destructor checks (TlsPluginRecord::registry_left), and under ASan
// LeakSanitizer would report the stubs.
//
// The test binary links no engine (see BUILD): the plugin's is the only one.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/reliability/dlclose_plugin.h"
#include "tests/reliability/dlclose_plugin_loader.h"
#include "tests/reliability/test_util.h"

#ifdef TLS_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace tls_test {
namespace {

// Threads that each run `use(i)` (on the plugin), then stay alive until
// released; then they end.
class Users {
 public:
  Users(int n, const std::function<void(int)>& use) : used_(n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, i, use] {
        use(i);
        used_.count_down();
        release_.wait();
      });
    }
    used_.wait();
  }
  Users(const Users&) = delete;
  Users& operator=(const Users&) = delete;
  ~Users() { EndAll(); }

  // Releases the threads and joins them: their exit sequences have run.
  void EndAll() {
    if (!released_) release_.count_down();
    released_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::latch used_;
  std::latch release_{1};
  bool released_ = false;
  std::vector<std::thread> threads_;
};

std::string PluginPath(const std::string& file) {
  return ResolvedPath(Runfile("tests/reliability/" + file));
}

class Dlclose : public ::testing::TestWithParam<const char*> {
 protected:
  const std::string path_ = PluginPath(GetParam());
  // glibc can unload this build at all (see the top of the file).
  const bool unloadable_ = !HasGnuUniqueSymbols(path_);
  // A late use pins the plugin for good (core/internal/exit_hook.cc), so the
  // late-hook tests of the API-only build use their own copy of it, which
  // leaves the other tests a plugin that can still be unloaded.
  const std::string late_path_ = std::string(GetParam()) == "libtls_plugin_hidden.so"
                                     ? PluginPath("libtls_plugin_late.so")
                                     : path_;

  // A plugin that stays loaded must not keep pointing at this test's record
  // (its static destructors count into it at process exit).
  void TearDown() override {
    DetachRecordIfLoaded(path_);
    DetachRecordIfLoaded(late_path_);
  }

  // After the users have ended: the plugin is still mapped and its static
  // destructors have not run (glibc unloads a deferred object only at a later
  // dlclose); a dlclose now unloads it if this build can be unloaded at all.
  void ExpectUnloadableNow(const TlsPluginRecord& rec) {
    EXPECT_TRUE(Mapped(path_));
    EXPECT_EQ(rec.unloads.load(), 0) << "unloaded with no dlclose after the users ended";
    EXPECT_EQ(UnloadIfUnused(path_), unloadable_);
    EXPECT_EQ(Mapped(path_), !unloadable_);
    EXPECT_EQ(rec.unloads.load(), unloadable_ ? 1 : 0);
    ExpectRegistryFreedIfUnloaded(rec);
  }

  // After a dlclose with no user alive: unloaded at once, if this build can
  // be unloaded at all.
  void ExpectUnloadedByTheClose(const TlsPluginRecord& rec) {
    EXPECT_EQ(Mapped(path_), !unloadable_);
    EXPECT_EQ(rec.unloads.load(), unloadable_ ? 1 : 0);
    ExpectRegistryFreedIfUnloaded(rec);
  }

  // The engine's registry of stubs was freed when the plugin was unloaded
  // (every stub had been given back: no thread held one).
  void ExpectRegistryFreedIfUnloaded(const TlsPluginRecord& rec) {
    EXPECT_EQ(rec.registry_checks.load(), unloadable_ ? 1 : 0) << Counts(rec);
    if (unloadable_) {
      EXPECT_EQ(rec.registry_left.load(), 0) << "stubs left in an unloaded plugin's registry";
    }
  }
};

INSTANTIATE_TEST_SUITE_P(Builds, Dlclose,
                         ::testing::Values("libtls_plugin.so", "libtls_plugin_hidden.so"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.index == 0 ? "ExportsAll" : "ApiOnly");
                         });

TEST_P(Dlclose, PluginRunsItsOwnEngine) {
  TlsPluginRecord rec;
  Plugin plugin(path_, &rec);
  ASSERT_TRUE(plugin.ok()) << plugin.error();
  // Otherwise this would not test unloading the engine's code.
  EXPECT_EQ(plugin.engine_is_own(), 1);
}

TEST(DlcloseBuilds, OnlyTheApiOnlyBuildCanBeUnloaded) {
  // What the two builds are for; if the first stops holding (another
  // compiler), the tests still check whatever unloading does happen.
  EXPECT_TRUE(HasGnuUniqueSymbols(PluginPath("libtls_plugin.so")));
  ASSERT_FALSE(HasGnuUniqueSymbols(PluginPath("libtls_plugin_hidden.so")));
  TlsPluginRecord rec;
  {
    Plugin plugin(PluginPath("libtls_plugin_hidden.so"), &rec);
    ASSERT_TRUE(plugin.ok()) << plugin.error();
  }
  // Nothing used it on any thread: the dlclose unloaded it at once.
  EXPECT_FALSE(Mapped(PluginPath("libtls_plugin_hidden.so")));
  EXPECT_EQ(rec.unloads.load(), 1);
}

// (a) dlclose while threads that used the plugin are alive; then they end.
TEST_P(Dlclose, WhileUsersAreAliveTheirExitSequencesStillRun) {
  constexpr int kThreads = 4, kValues = 3;
  TlsPluginRecord rec;
  Plugin plugin(path_, &rec);
  ASSERT_TRUE(plugin.ok()) << plugin.error();
  const TlsPluginUseFn use = plugin.use;
  Users users(kThreads, [use](int) { use(kValues); });
  plugin.Close();
  // Deferred: the threads' pending thread_local destructors pin the plugin.
  EXPECT_TRUE(Mapped(path_));
  EXPECT_EQ(rec.unloads.load(), 0) << "static destructors ran with users alive";
  EXPECT_EQ(rec.handlers.load(), 0);

  users.EndAll();
  // Every exit sequence ran, in the plugin's code, after the dlclose.
  EXPECT_EQ(rec.handlers.load(), kThreads) << Counts(rec);
  EXPECT_EQ(rec.handler_misses.load(), 0) << Counts(rec);
  EXPECT_EQ(rec.closes.load(), kThreads * kValues) << Counts(rec);
  EXPECT_EQ(rec.slot_closes.load(), kThreads) << Counts(rec);
  ExpectUnloadableNow(rec);
}

// (b) The late hook: on each thread a thread_local destructor of the plugin
// uses tls after the exit sequence, so that stub is run by the plugin's
// pthread key, after all thread_local destructors. The plugin is dlclose'd
// while the threads are alive. A key destructor does not keep its library
// mapped, so arming it pins the plugin for good: it must still be mapped, and
// impossible to unload, after the threads end.
TEST_P(Dlclose, LateHookRunsAfterDlcloseAndPinsThePlugin) {
  constexpr int kThreads = 4;
  TlsPluginRecord rec;
  Plugin plugin(late_path_, &rec);
  ASSERT_TRUE(plugin.ok()) << plugin.error();
  const TlsPluginUseLateFn use_late = plugin.use_late;
  Users users(kThreads, [use_late](int) { use_late(); });
  plugin.Close();
  EXPECT_TRUE(Mapped(late_path_));

  users.EndAll();
  EXPECT_EQ(rec.closes.load(), kThreads) << Counts(rec);         // the exit sequence
  EXPECT_EQ(rec.late_handlers.load(), kThreads) << Counts(rec);  // then the late hook
  EXPECT_EQ(rec.late_closes.load(), kThreads) << Counts(rec);
  EXPECT_FALSE(UnloadIfUnused(late_path_)) << "a plugin whose late hook was armed was unloaded";
  EXPECT_TRUE(Mapped(late_path_));
  EXPECT_EQ(rec.unloads.load(), 0);
  // Threads that end now, with keys of their own set, do not trip on it.
  for (int i = 0; i < 8; ++i) {
    std::thread([] {
      pthread_key_t k{};
      if (pthread_key_create(&k, [](void*) {}) == 0) pthread_setspecific(k, &k);
    }).join();
  }
}

// (c) Load, use from threads, dlclose while they are alive, let them end,
// unload; repeated. (No late use here: that pins the plugin, see (b).)
TEST_P(Dlclose, RepeatedLoadUseCloseCycles) {
  const long cycles = Scaled("TLS_DLCLOSE_CYCLES", 20, 10, 8);
  constexpr int kThreads = 4;
  for (long cycle = 0; cycle < cycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    TlsPluginRecord rec;
    Plugin plugin(path_, &rec);
    ASSERT_TRUE(plugin.ok()) << plugin.error();
    const TlsPluginUseFn use = plugin.use;
    std::vector<uint64_t> ids(kThreads);
    Users users(kThreads, [&](int i) { ids[i] = use(2); });
    plugin.Close();
    users.EndAll();
    EXPECT_EQ(rec.handlers.load(), kThreads) << Counts(rec);
    EXPECT_EQ(rec.closes.load(), kThreads * 2) << Counts(rec);
    EXPECT_EQ(rec.slot_closes.load(), kThreads) << Counts(rec);
    EXPECT_EQ(rec.retires.load(), kThreads) << Counts(rec);
    const std::set<uint64_t> unique(ids.begin(), ids.end());
    EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads));
    ExpectUnloadableNow(rec);
    if (unloadable_) {
      // Each load is a new engine: IDs are unique per copy of the engine,
      // and a fresh copy starts again at 1.
      EXPECT_EQ(*unique.begin(), 1u);
    }
    // The engine registers a fork handler (its stub cache) in the plugin;
    // unloading must drop it, or a fork would call into unmapped code.
    const ChildResult r = RunForked([] { return 0; }, 30);
    EXPECT_TRUE(r.exited_ok()) << r.Describe();
    if (unloadable_) {
      // The plugin's Counter, read by its last static destructor: every
      // thread's Add, folded in as the thread ended.
      EXPECT_EQ(rec.counter_total.load(), kThreads) << Counts(rec);
    }
  }
#ifdef TLS_TEST_ASAN
  // Each cycle's engine made records for the plugin's Counter and retiring
  // Slot (104 bytes each); an unload frees them.
  if (unloadable_) {
    EXPECT_EQ(__lsan_do_recoverable_leak_check(), 0) << "a leak after " << cycles << " cycles";
  }
#endif
}

// The plugin's ListThreads lists exactly the threads that used the plugin
// (not the test's other threads, which use no engine), with what they hold;
// once they end, none.
TEST_P(Dlclose, PluginsRegistryListsOnlyTheThreadsThatUsedIt) {
  constexpr int kUsers = 3;
  TlsPluginRecord rec;
  Plugin plugin(path_, &rec);
  ASSERT_TRUE(plugin.ok()) << plugin.error();
  TlsPluginThread listed[16];
  EXPECT_EQ(plugin.list_threads(listed, 16), 0);
  const TlsPluginUseFn use = plugin.use;
  std::vector<uint64_t> ids(kUsers);
  std::vector<pthread_t> natives(kUsers);
  Users users(kUsers, [&](int i) {
    ids[i] = use(2);
    natives[i] = pthread_self();
  });
  Users bystanders(2, [](int) {});
  const int n = plugin.list_threads(listed, 16);
  ASSERT_EQ(n, kUsers);
  std::set<uint64_t> listed_ids;
  for (int i = 0; i < n; ++i) {
    listed_ids.insert(listed[i].id);
    const bool a_user = std::any_of(natives.begin(), natives.end(), [&](pthread_t t) {
      return pthread_equal(t, listed[i].native) != 0;
    });
    EXPECT_TRUE(a_user) << "listed a thread that never used the plugin";
    EXPECT_EQ(listed[i].keys, 2);
    EXPECT_EQ(listed[i].slot_values, 3);  // g_slot, the Counter's shard, g_retiring_slot
    EXPECT_EQ(listed[i].task, 0);
  }
  EXPECT_EQ(listed_ids, std::set<uint64_t>(ids.begin(), ids.end()));
  users.EndAll();
  EXPECT_EQ(plugin.list_threads(listed, 16), 0);
  bystanders.EndAll();
  plugin.Close();
  ExpectUnloadedByTheClose(rec);
}

// Unloading frees the plugin's registry: stubs that many threads used (more
// than the stub cache keeps, so some are cached and some are shells), given
// back at their threads' ends and at the cache's destruction. Under ASan,
// LeakSanitizer checks too: the stubs of an unloaded plugin's registry are
// reachable from nowhere.
TEST_P(Dlclose, UnloadFreesThePluginsRegistry) {
  TlsPluginRecord rec;
  Plugin plugin(path_, &rec);
  ASSERT_TRUE(plugin.ok()) << plugin.error();
  const TlsPluginUseFn use = plugin.use;
  // 40 stubs at once, then fewer: more than the stub cache keeps (32), so at
  // their threads' ends some are cached and the rest become shells.
  for (int threads : {40, 6, 6}) {
    Users users(threads, [use](int) { use(1); });
  }
  TlsPluginThread listed[16];
  EXPECT_EQ(plugin.list_threads(listed, 16), 0);
  plugin.Close();
  EXPECT_EQ(rec.handlers.load(), 52) << Counts(rec);
  ExpectUnloadedByTheClose(rec);
#ifdef TLS_TEST_ASAN
  if (unloadable_) {
    EXPECT_EQ(__lsan_do_recoverable_leak_check(), 0) << "a leak after the unload";
  }
#endif
}

// A program with its own engine (dlclose_registry_helper) and the plugin's:
// two registries. Each engine lists only the threads that used it (a thread
// that used both is in both), and the program's listing shows none of the
// plugin's keys; then the plugin unloads and frees its registry.
//
// Unless the plugin exports its engine and the program exports one too (a
// CMake BUILD_SHARED_LIBS build, where the helper links libtls-core.so): the
// dynamic linker then binds the plugin's engine calls to the program's, and
// there is one engine, listing every thread. A plugin that exports only its
// API (the hidden build) always keeps its own.
TEST_P(Dlclose, ProgramAndPluginEnginesKeepSeparateRegistries) {
  const ChildResult r =
      RunWithTimeout({Runfile("tests/reliability/dlclose_registry_helper"), path_}, 60);
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  const std::vector<std::string> lines = Lines(r.out);
  if (Count(lines, "plugin engine is its own: 0") == 1) {
    ASSERT_EQ(std::string(GetParam()), "libtls_plugin.so")
        << "an API-only plugin's engine calls went to the program's engine:\n"
        << r.out;
    EXPECT_EQ(Count(lines,
                    "program engine lists: program=2 plugin=2 both=2 other=0; keys: "
                    "\"program-key\" 0 1 2"),
              1)
        << r.out;
    GTEST_SKIP() << "the exports-all plugin shares the program's exported engine here";
  }
  EXPECT_EQ(Count(lines, "plugin engine is its own: 1"), 1) << r.out;
  EXPECT_EQ(Count(lines,
                  "program engine lists: program=2 plugin=0 both=2 other=0; keys: "
                  "\"program-key\""),
            1)
      << r.out;
  EXPECT_EQ(Count(lines,
                  "plugin engine lists: program=0 plugin=2 both=2 other=0; keys per "
                  "thread: 3"),
            1)
      << r.out;
  EXPECT_EQ(Count(lines, "program engine lists after the threads ended: 0"), 1) << r.out;
  EXPECT_EQ(Count(lines, "plugin engine lists after the threads ended: 0"), 1) << r.out;
  if (unloadable_) {
    EXPECT_EQ(Count(lines, "plugin unloaded"), 1) << r.out;
    EXPECT_NE(r.out.find("registry_checks=1 registry_left=0"), std::string::npos) << r.out;
  }
}

ChildResult RunHelper(const std::string& plugin, const std::string& mode,
                      const std::vector<std::string>& env = {}) {
  return RunWithTimeout({Runfile("tests/reliability/dlclose_helper"), PluginPath(plugin), mode}, 60,
                        env);
}

// The main thread used the plugin: its thread_local destructor pins the
// plugin until the process exits, and exit() runs its sequence in the
// plugin's (still mapped) code.
TEST_P(Dlclose, MainThreadUsePinsThePluginUntilExit) {
  const ChildResult r = RunHelper(GetParam(), "exit");
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_NE(r.out.find("mapped after dlclose\nstill loaded\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("at exit: handlers=1 misses=0 closes=2 slot_closes=1 retires=1 "
                       "counter_total=-1 late_handlers=0 late_closes=0 unloads=0"),
            std::string::npos)
      << r.out;
}

// A main thread that used the plugin and ends with pthread_exit: glibc runs
// no thread_local destructor then, only pthread key destructors, so its
// sequence runs through the plugin's key; the plugin is still pinned.
TEST_P(Dlclose, MainThreadPthreadExitRunsThroughTheKeyOfThePinnedPlugin) {
  if (kTsan) {
    // TSan's own background thread counts as a thread for glibc, so the
    // process never ends after its last thread does (the helper hangs).
    GTEST_SKIP() << "a main-thread pthread_exit process never ends under TSan";
  }
  // glibc never frees the main thread's thread_local destructor list when it
  // calls pthread_exit (its leak, not ours): LeakSanitizer would report it.
  const ChildResult r = RunHelper(GetParam(), "pthread_exit", {"ASAN_OPTIONS=detect_leaks=0"});
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_NE(r.out.find("mapped after dlclose\nstill loaded\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("at exit: handlers=1 misses=0 closes=2 slot_closes=1"), std::string::npos)
      << r.out;
}

// A late-hook thread ends while another thread unloads the plugin. After the
// thread's last thread_local destructor glibc stops pinning the plugin, but
// the late hook, a pthread key destructor, runs only after that: a dlclose in
// that window used to unload the plugin and the thread then ran unmapped code
// (SIGSEGV called from __nptl_deallocate_tsd, within a few hundred tries).
// The late hook now pins the plugin when it is armed. Each try runs in a
// fresh child, where the plugin has never been pinned, so every try really
// races; a crash is reported, not suffered.
TEST(DlcloseRace, LateHookThreadEndsWhileAnotherThreadUnloads) {
  if (kTsan) {
    // Under TSan a fork child of a multi-threaded process cannot start threads
    // ("dup thread with used id"), and every try needs two.
    GTEST_SKIP() << "fork children cannot start threads under TSan";
  }
  const long tries = Scaled("TLS_DLCLOSE_RACE", 2000, 300, 0);
  const std::string path = PluginPath("libtls_plugin_late.so");
  for (long t = 0; t < tries; ++t) {
    const ChildResult r = RunForked(
        [&] {
          TlsPluginRecord rec;
          Plugin plugin(path, &rec);
          if (!plugin.ok()) return 2;
          const TlsPluginUseLateFn use_late = plugin.use_late;
          Users users(1, [use_late](int) { use_late(); });
          plugin.Close();
          std::atomic<bool> ended{false};
          std::thread ender([&] {
            users.EndAll();
            ended.store(true);
          });
          // Unload the moment nothing pins it any more, until the user ended.
          while (!ended.load()) {
            if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD)) dlclose(h);
          }
          ender.join();
          const bool ok = rec.late_handlers.load() == 1 && rec.late_closes.load() == 1;
          if (!ok) std::printf("lost: %s\n", Counts(rec).c_str());
          std::fflush(stdout);
          _exit(ok ? 0 : 1);  // the plugin (pinned) still points at `rec`
        },
        30);
    ASSERT_TRUE(r.exited_ok()) << "try " << t << ": " << r.Describe();
  }
}

}  // namespace
}  // namespace tls_test
