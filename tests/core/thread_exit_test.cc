// What happens when a thread ends: handlers, closes, rounds, re-entrancy.
// Includes ports of every go-tls test. Errors caught on the way (a throwing
// handler or close): errors_test.cc.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

// --- ports of go-tls's tests -------------------------------------------

TEST(GoTlsPort, AtExitRunsInFiloOrder) {
  Log log;
  RunInThread([&] {
    for (int i = 0; i < 5; ++i) tls::AtExit([&log, i] { log.Add(std::to_string(i)); });
  });
  EXPECT_EQ(log.events(), (Events{"4", "3", "2", "1", "0"}));
}

TEST(GoTlsPort, ResetClosesData) {
  Log log;
  RunInThread([&] {
    tls::Set("k", tls::MakeData(Closer{&log, "v"}));
    tls::Reset();
    EXPECT_EQ(log.events(), Events{"close v"});
  });
  EXPECT_EQ(log.events(), Events{"close v"});  // not closed again at exit
}

TEST(GoTlsPort, UniqueIdsOver1000Threads) {
  constexpr int kThreads = 1000;
  std::vector<uint64_t> ids(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&ids, i] { ids[i] = tls::ID(); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()).size(), static_cast<size_t>(kThreads));
}

TEST(GoTlsPort, UnloadChangesIdAndSuppressesHandlers) {
  Log log;
  RunInThread([&] {
    uint64_t id = tls::ID();
    tls::AtExit([&] { log.Add("must not run"); });
    tls::Unload();
    EXPECT_NE(tls::ID(), id);
  });
  EXPECT_TRUE(log.events().empty());
}

TEST(GoTlsPort, UnloadInsideAtExit) {
  Log log;
  RunInThread([&] {
    tls::Set("k", tls::MakeData(Closer{&log, "v"}));
    tls::AtExit([&] { log.Add("runs"); });
    tls::AtExit([&] {
      log.Add("unloading");
      tls::Unload();
    });
  });
  // Unload drops the rest of the round ("runs") and the value, unclosed.
  EXPECT_EQ(log.events(), Events{"unloading"});
}

// --- exit order ----------------------------------------------------------

TEST(ThreadExit, HandlersRunBeforeValuesCloseAndSeeThem) {
  Log log;
  RunInThread([&] {
    tls::Set("user", tls::MakeData(Closer{&log, "user"}));
    tls::AtExit([&] {
      auto d = tls::Get("user");
      log.Add(d ? "handler sees " + d->Value<Closer>().name : "handler sees nothing");
    });
  });
  EXPECT_EQ(log.events(), (Events{"handler sees user", "close user"}));
}

TEST(ThreadExit, EveryValueIsClosedOnce) {
  Log log;
  RunInThread([&] {
    tls::Data shared = tls::MakeData(Closer{&log, "shared"});
    tls::Set("a", shared);
    tls::Set("b", shared);
    tls::Set(1, tls::MakeData(Closer{&log, "one"}));
  });
  auto events = log.events();
  EXPECT_EQ(std::multiset<std::string>(events.begin(), events.end()),
            (std::multiset<std::string>{"close shared", "close one"}));
}

TEST(ThreadExit, WorksOnRawPthread) {
  Log log;
  RunInPthread([&] {
    tls::Set("k", tls::MakeData(Closer{&log, "v"}));
    tls::AtExit([&] { log.Add("handler"); });
  });
  EXPECT_EQ(log.events(), (Events{"handler", "close v"}));
}

TEST(ThreadExit, RunsOnPthreadExit) {
  Log log;
  pthread_t t;
  pthread_create(
      &t, nullptr,
      [](void* arg) -> void* {
        auto* log = static_cast<Log*>(arg);
        tls::AtExit([log] { log->Add("handler"); });
        pthread_exit(nullptr);
      },
      &log);
  pthread_join(t, nullptr);
  EXPECT_EQ(log.events(), Events{"handler"});
}

TEST(ThreadExit, WorksOnThreadsStartedByOtherLibraries) {
  // std::async's thread is created by the standard library, not by us.
  Log log;
  std::async(std::launch::async, [&] { tls::AtExit([&] { log.Add("async"); }); }).get();
  // get() returns when the task is done; the thread may still be exiting.
  for (int i = 0; i < 5000 && log.events().empty(); ++i) std::this_thread::yield();
  EXPECT_EQ(log.events(), Events{"async"});
}

TEST(ThreadExit, ThousandThreadsAtOnce) {
  constexpr int kThreads = 1000;
  std::atomic<int> handlers{0}, closes{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  struct Count {
    std::atomic<int>* n;
    void Close() { n->fetch_add(1); }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      tls::Set(i, tls::MakeData(Count{&closes}));
      tls::AtExit([&] { handlers.fetch_add(1); });
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();  // all 1000 alive together
    });
  }
  while (ready.load() < kThreads) std::this_thread::yield();
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(handlers.load(), kThreads);
  EXPECT_EQ(closes.load(), kThreads);
}

// --- re-entrancy -----------------------------------------------------------

TEST(Reentrancy, AtExitAddedDuringExitRuns) {
  Log log;
  RunInThread([&] {
    tls::AtExit([&] {
      log.Add("outer");
      tls::AtExit([&] { log.Add("inner"); });
    });
  });
  EXPECT_EQ(log.events(), (Events{"outer", "inner"}));
}

TEST(Reentrancy, ValueSetInHandlerIsClosedInTheSameExit) {
  Log log;
  RunInThread([&] { tls::AtExit([&] { tls::Set("late", tls::MakeData(Closer{&log, "late"})); }); });
  EXPECT_EQ(log.events(), Events{"close late"});
}

TEST(Reentrancy, ValueSetInCloseIsClosedInTheSameExit) {
  Log log;
  struct SetsAnother {
    Log* log;
    void Close() {
      log->Add("close first");
      tls::Set("second", tls::MakeData(Closer{log, "second"}));
    }
  };
  RunInThread([&] { tls::Set("first", tls::MakeData(SetsAnother{&log})); });
  EXPECT_EQ(log.events(), (Events{"close first", "close second"}));
}

TEST(Reentrancy, AtExitAddedInCloseRuns) {
  Log log;
  struct AddsHandler {
    Log* log;
    void Close() {
      tls::AtExit([l = log] { l->Add("handler from close"); });
    }
  };
  RunInThread([&] { tls::Set("k", tls::MakeData(AddsHandler{&log})); });
  EXPECT_EQ(log.events(), Events{"handler from close"});
}

TEST(Reentrancy, CloseMayCallEveryFunction) {
  Log log;
  struct CallsEverything {
    Log* log;
    void Close() {
      tls::Set("x", tls::MakeData(1));
      log->Add(tls::Get("x") ? "get ok" : "get failed");
      tls::Del("x");
      log->Add(tls::ID() > 0 ? "id ok" : "id failed");
      tls::Reset();
      tls::Unload();
      tls::Set("y", tls::MakeData(Closer{log, "y"}));
    }
  };
  RunInThread([&] { tls::Set("k", tls::MakeData(CallsEverything{&log})); });
  EXPECT_EQ(log.events(), (Events{"get ok", "id ok", "close y"}));
}

TEST(Reentrancy, ResetInHandlerClosesValuesAndLaterHandlersStillRun) {
  Log log;
  RunInThread([&] {
    tls::Set("k", tls::MakeData(Closer{&log, "v"}));
    tls::AtExit([&] { log.Add(tls::Get("k") ? "sees value" : "sees none"); });
    tls::AtExit([&] { tls::Reset(); });
  });
  EXPECT_EQ(log.events(), (Events{"close v", "sees none"}));
}

TEST(Reentrancy, UnloadInHandlerThenNewUseGetsNewIdAndIsCleanedUp) {
  Log log;
  RunInThread([&] {
    uint64_t id = tls::ID();
    tls::AtExit([&, id] {
      tls::Unload();
      log.Add(tls::ID() != id ? "new id" : "same id");
      tls::Set("k", tls::MakeData(Closer{&log, "after unload"}));
      tls::AtExit([&] { log.Add("handler after unload"); });
    });
  });
  EXPECT_EQ(log.events(), (Events{"new id", "handler after unload", "close after unload"}));
}

TEST(Reentrancy, SelfReRegisteringHandlerIsBoundedAndReported) {
  static std::atomic<int> reports{0};
  static std::atomic<int> runs{0};
  reports = 0;
  runs = 0;
  auto previous = tls::SetErrorHandler([](const tls::ErrorInfo& e) {
    if (e.source == tls::ErrorSource::kExitRounds) reports.fetch_add(1);
  });
  struct Forever {
    static void Register() {
      tls::AtExit([] {
        runs.fetch_add(1);
        Register();
      });
    }
  };
  RunInThread([] { Forever::Register(); });
  tls::SetErrorHandler(previous);
  EXPECT_EQ(runs.load(), tls::kMaxExitRounds);
  EXPECT_EQ(reports.load(), 1);
}

// --- hooks ------------------------------------------------------------------

// A thread_local whose destructor was registered before tls's own hook runs
// after tls's exit sequence; if it uses tls then, the late hook still runs it.
struct UsesTlsInDestructor {
  Log* log = nullptr;
  ~UsesTlsInDestructor() {
    if (log == nullptr) return;
    Log* l = log;
    tls::AtExit([l] { l->Add("late handler"); });
    tls::Set("late", tls::MakeData(Closer{l, "late value"}));
  }
};
thread_local UsesTlsInDestructor t_early_registered;

TEST(ThreadExit, LateUseAfterExitSequenceStillRunsAndCloses) {
  Log log;
  RunInThread([&] {
    t_early_registered.log = &log;  // registers its destructor first
    tls::AtExit([&] { log.Add("normal handler"); });
  });
  EXPECT_EQ(log.events(), (Events{"normal handler", "late handler", "close late value"}));
}

TEST(ThreadExit, ThreadThatNeverUsesTlsCostsNothingAtExit) {
  // Nothing to observe but that it does not crash or create a stub.
  RunInThread([] { EXPECT_FALSE(tls::Get("x").has_value()); });
}

}  // namespace
}  // namespace tls_test
