// Task-local storage (core/task.h): each test is named after the rule it
// checks; docs/semantics.md's tables point here.
#include <pthread.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/internal/stub.h"
#include "gtest/gtest.h"
#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

std::string StringAt(const tls::Key& key) {
  const tls::Data* d = tls::Find(key);
  return d ? d->Value<std::string>() : "<none>";
}

TEST(Task, SeesCapturedValues) {
  RunInThread([] {
    tls::Set("user", tls::MakeData(std::string("ada")));
    tls::Set(7, tls::MakeData(std::string("seven")));
    tls::Snapshot snap = tls::Capture();
    EXPECT_EQ(snap.size(), 2u);
    std::thread([&] {
      tls::Run(snap, [] {
        EXPECT_EQ(StringAt("user"), "ada");
        EXPECT_EQ(StringAt(7), "seven");
      });
    }).join();
  });
}

TEST(Task, CapturedHandlesAreSharedNotCopied) {
  RunInThread([] {
    tls::Set("v", tls::MakeData(std::string("x")));
    const tls::Data original = *tls::Get("v");
    tls::Snapshot snap = tls::Capture();
    std::thread([&] { tls::Run(snap, [&] { EXPECT_TRUE(*tls::Get("v") == original); }); }).join();
  });
}

TEST(Task, ThreadValuesHiddenInsideAndBackUnchangedAfter) {
  Log log;
  RunInThread([&] {
    tls::Set("own", tls::MakeData(Closer{&log, "own"}));
    tls::Set(1, tls::MakeData(std::string("one")));
    const tls::Data own = *tls::Get("own");
    const uint64_t id = tls::ID();
    tls::Run(tls::Snapshot(), [&] {
      EXPECT_EQ(tls::Find("own"), nullptr);
      EXPECT_EQ(tls::Find(1), nullptr);
      tls::Set("own", tls::MakeData(std::string("shadow")));  // the task's own "own"
    });
    EXPECT_TRUE(*tls::Get("own") == own);
    EXPECT_EQ(StringAt(1), "one");
    EXPECT_EQ(tls::ID(), id);
    EXPECT_TRUE(log.events().empty()) << "the thread's value was closed by the task";
  });
  EXPECT_EQ(log.events(), std::vector<std::string>{"close own"});
}

TEST(Task, SetDelResetUnloadActOnTheTasksViewOnly) {
  Log log;
  RunInThread([&] {
    tls::Set("kept", tls::MakeData(Closer{&log, "kept"}));
    tls::Snapshot snap = tls::Capture();
    tls::Run(snap, [&] {
      tls::Set("new", tls::MakeData(Closer{&log, "new"}));
      EXPECT_TRUE(tls::Del("kept"));
      tls::Reset();  // closes "new"; "kept" is no longer in the task's view
      EXPECT_EQ(tls::Find("new"), nullptr);
      tls::Set("after-reset", tls::MakeData(Closer{&log, "after-reset"}));
      tls::Unload();  // dropped without closing
      EXPECT_EQ(tls::Find("after-reset"), nullptr);
    });
    EXPECT_NE(tls::Find("kept"), nullptr);
    EXPECT_EQ(tls::Find("new"), nullptr);
    EXPECT_EQ(log.events(), std::vector<std::string>{"close new"});
  });
  EXPECT_EQ(log.events(), (std::vector<std::string>{"close new", "close kept"}));
}

TEST(Task, DelOfACapturedKeyHidesItAndASetShadowsIt) {
  RunInThread([] {
    tls::Set("a", tls::MakeData(std::string("captured a")));
    tls::Set("b", tls::MakeData(std::string("captured b")));
    tls::Set("c", tls::MakeData(std::string("captured c")));
    tls::Snapshot snap = tls::Capture();
    std::thread([&] {
      tls::Run(snap, [] {
        tls::Set("a", tls::MakeData(std::string("task a")));  // shadows
        EXPECT_EQ(StringAt("a"), "task a");
        EXPECT_TRUE(tls::Del("a"));  // the captured "a" must not show through
        EXPECT_EQ(tls::Find("a"), nullptr);
        EXPECT_TRUE(tls::Del("b"));
        EXPECT_FALSE(tls::Del("b"));
        EXPECT_EQ(tls::Find("b"), nullptr);
        EXPECT_EQ(StringAt("c"), "captured c");
        EXPECT_EQ(tls::Capture().size(), 1u);
      });
      tls::Run(snap, [] { EXPECT_EQ(StringAt("a"), "captured a"); });  // the snapshot is intact
    }).join();
    EXPECT_EQ(StringAt("b"), "captured b");
  });
}

TEST(Task, AtExitRunsAtTaskEndNewestFirstWithValuesReadable) {
  Log log;
  RunInThread([&] {
    tls::AtExit([&] { log.Add("thread handler"); });
    tls::Run(tls::Snapshot(), [&] {
      tls::Set("v", tls::MakeData(Closer{&log, "v"}));
      tls::AtExit([&] { log.Add("first, v=" + std::to_string(tls::Find("v") != nullptr)); });
      tls::AtExit([&] { log.Add("second, v=" + std::to_string(tls::Find("v") != nullptr)); });
    });
    EXPECT_EQ(log.events(), (std::vector<std::string>{"second, v=1", "first, v=1", "close v"}));
  });
  EXPECT_EQ(log.events().back(), "thread handler");
  EXPECT_EQ(log.events().size(), 4u) << "a task's handler ran again at thread exit";
}

TEST(Task, ValuesSetByTheTaskClosedAtTaskEndOnce) {
  Log log;
  RunInThread([&] {
    tls::Run(tls::Snapshot(), [&] {
      tls::Data d = tls::MakeData(Closer{&log, "d"});
      tls::Set("a", d);
      tls::Set("b", d);  // one value under two keys: closed once
      tls::Set("c", tls::MakeData(Closer{&log, "c"}));
    });
    std::vector<std::string> events = log.events();
    std::sort(events.begin(), events.end());
    EXPECT_EQ(events, (std::vector<std::string>{"close c", "close d"}));
  });
  EXPECT_EQ(log.events().size(), 2u);
}

TEST(Task, CapturedValuesNeverClosedByATask) {
  Log log;
  RunInThread([&] {
    tls::Set("shared", tls::MakeData(Closer{&log, "shared"}));
    tls::Snapshot snap = tls::Capture();
    std::thread([&] {
      tls::Run(snap, [&] {
        tls::Set("alias", *tls::Get("shared"));  // the captured value under a new key
        tls::Reset();                            // closes only what the task set itself
        EXPECT_EQ(tls::Find("shared"), nullptr);
      });
      tls::Run(snap, [] {});
      tls::Run(snap, [] { tls::Set("again", *tls::Get("shared")); });
    }).join();
    EXPECT_TRUE(log.events().empty());
    EXPECT_FALSE(tls::Get("shared")->closed());
  });
  EXPECT_EQ(log.events(), std::vector<std::string>{"close shared"});  // by its own thread
}

TEST(Task, ScopeMadeFromATemporarySnapshotKeepsItAlive) {
  RunInThread([] {
    tls::Set("k", tls::MakeData(std::string("kept")));
    tls::TaskScope task(tls::Capture({"k"}));  // the only owner of that snapshot
    EXPECT_EQ(StringAt("k"), "kept");
    tls::Set("other", tls::MakeData(1));
    EXPECT_EQ(StringAt("k"), "kept");
  });
}

TEST(Task, CaptureOnlySomeKeys) {
  RunInThread([] {
    tls::Set("a", tls::MakeData(1));
    tls::Set("b", tls::MakeData(2));
    tls::Snapshot snap = tls::Capture({"a", "missing"});
    EXPECT_EQ(snap.size(), 1u);
    tls::Run(snap, [] {
      EXPECT_NE(tls::Find("a"), nullptr);
      EXPECT_EQ(tls::Find("b"), nullptr);
    });
  });
}

TEST(Task, CaptureOfKeysKnownOnlyAtRunTime) {
  RunInThread([] {
    tls::Set("user", tls::MakeData(std::string("ada")));
    tls::Set(7, tls::MakeData(std::string("seven")));
    tls::Set("other", tls::MakeData(1));
    const std::vector<std::string> names = {"user", "missing"};
    std::vector<tls::Key> keys(names.begin(), names.end());
    keys.emplace_back(7);
    tls::Snapshot snap = tls::Capture(keys);
    EXPECT_EQ(snap.size(), 2u);
    tls::Run(snap, [] {
      EXPECT_EQ(StringAt("user"), "ada");
      EXPECT_EQ(StringAt(7), "seven");
      EXPECT_EQ(tls::Find("other"), nullptr);
    });
  });
}

TEST(Task, CaptureOnAThreadWithNoValuesIsEmptyAndCreatesNothing) {
  RunInThread([] {
    tls::Snapshot snap = tls::Capture();
    EXPECT_TRUE(snap.empty());
    EXPECT_EQ(tls::internal::t_thread.stub, nullptr);
    tls::Run(snap, [] { EXPECT_EQ(tls::internal::t_thread.stub, nullptr); });
    EXPECT_EQ(tls::internal::t_thread.stub, nullptr);
  });
}

struct Tracked {
  bool* destroyed;
  explicit Tracked(bool* d) : destroyed(d) {}
  Tracked(Tracked&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
  ~Tracked() {
    if (destroyed) *destroyed = true;
  }
};

TEST(Task, RepeatedCapturesShareOneSnapshotThatNeverKeepsARemovedValueAlive) {
  RunInThread([] {
    bool destroyed = false;
    tls::Set("v", tls::MakeData(Tracked(&destroyed)));
    tls::Set("w", tls::MakeData(1));
    { tls::Snapshot a = tls::Capture(); }
    tls::Snapshot b = tls::Capture();
    tls::Snapshot c = tls::Capture();
    // The table's handle, one for the snapshot b and c share, this copy.
    EXPECT_EQ(tls::Get("w")->use_count(), 3);
    b = tls::Snapshot();
    c = tls::Snapshot();
    tls::Del("v");  // a change: the cached snapshot goes, and with it the value
    EXPECT_TRUE(destroyed);
    EXPECT_EQ(tls::Get("w")->use_count(), 2);  // table + this copy
    tls::Snapshot d = tls::Capture();          // taken anew
    EXPECT_EQ(d.size(), 1u);
    tls::Set("w", tls::MakeData(2));
    tls::Run(tls::Capture(), [] { EXPECT_EQ(tls::Get("w")->Value<int>(), 2); });
  });
}

TEST(Task, CaptureInsideATaskCapturesTheTasksView) {
  RunInThread([] {
    tls::Set("outer", tls::MakeData(1));
    tls::Run(tls::Capture(), [] {
      tls::Set("inner", tls::MakeData(2));
      tls::Snapshot snap = tls::Capture();
      EXPECT_EQ(snap.size(), 2u);
    });
  });
}

TEST(Task, NestedScopesEndInnermostFirstAndRestoreEachView) {
  Log log;
  RunInThread([&] {
    tls::Set("level", tls::MakeData(std::string("thread")));
    {
      tls::TaskScope outer;
      tls::Set("level", tls::MakeData(std::string("outer")));
      tls::Set("outer-value", tls::MakeData(Closer{&log, "outer-value"}));
      tls::AtExit([&] { log.Add("outer handler"); });
      {
        tls::TaskScope inner(tls::Capture({"level"}));
        EXPECT_EQ(StringAt("level"), "outer");
        EXPECT_EQ(tls::Find("outer-value"), nullptr);
        tls::Set("level", tls::MakeData(std::string("inner")));
        tls::AtExit([&] { log.Add("inner handler"); });
      }
      EXPECT_EQ(StringAt("level"), "outer");
      EXPECT_EQ(log.events(), std::vector<std::string>{"inner handler"});
    }
    EXPECT_EQ(StringAt("level"), "thread");
    EXPECT_EQ(log.events(),
              (std::vector<std::string>{"inner handler", "outer handler", "close outer-value"}));
  });
}

TEST(Task, ValuesCapturedByAnOuterTaskAreNotClosedByAnInnerOne) {
  Log log;
  RunInThread([&] {
    tls::Set("shared", tls::MakeData(Closer{&log, "shared"}));
    tls::Run(tls::Capture(), [&] {
      const tls::Data shared = *tls::Get("shared");
      tls::Run(tls::Snapshot(), [&] { tls::Set("smuggled", shared); });
    });
    EXPECT_TRUE(log.events().empty());
  });
  EXPECT_EQ(log.events(), std::vector<std::string>{"close shared"});
}

TEST(Task, ExceptionLeavingTheTaskStillEndsItAndRestores) {
  Log log;
  RunInThread([&] {
    tls::Set("own", tls::MakeData(std::string("mine")));
    EXPECT_THROW(tls::Run(tls::Snapshot(),
                          [&] {
                            tls::Set("t", tls::MakeData(Closer{&log, "t"}));
                            tls::AtExit([&] { log.Add("task handler"); });
                            throw std::runtime_error("task failed");
                          }),
                 std::runtime_error);
    EXPECT_EQ(log.events(), (std::vector<std::string>{"task handler", "close t"}));
    EXPECT_EQ(StringAt("own"), "mine");
    EXPECT_EQ(tls::Find("t"), nullptr);
  });
}

TEST(Task, ErrorsInTheTasksExitAreReportedAndTheRestStillRuns) {
  static std::atomic<int> reports{0};
  reports = 0;
  tls::ErrorHandler previous = tls::SetErrorHandler([](const tls::ErrorInfo&) { ++reports; });
  Log log;
  RunInThread([&] {
    tls::Run(tls::Snapshot(), [&] {
      tls::Set("c", tls::MakeData(Closer{&log, "c"}));
      tls::AtExit([&] { log.Add("runs anyway"); });
      tls::AtExit([] { throw std::runtime_error("handler failed"); });
    });
  });
  tls::SetErrorHandler(previous);
  EXPECT_EQ(reports.load(), 1);
  EXPECT_EQ(log.events(), (std::vector<std::string>{"runs anyway", "close c"}));
}

TEST(Task, EndOnAnotherThreadThrowsAndEndsNothing) {
  RunInThread([] {
    tls::Set("own", tls::MakeData(1));
    auto scope = std::make_unique<tls::TaskScope>();
    tls::Set("task", tls::MakeData(2));
    std::thread([&] { EXPECT_THROW(scope->End(), std::logic_error); }).join();
    EXPECT_NE(tls::Find("task"), nullptr);  // still inside the task
    scope->End();
    EXPECT_NE(tls::Find("own"), nullptr);
    scope->End();  // a second End does nothing
    scope.reset();
  });
}

TEST(Task, EndingAnOuterScopeWhileAnInnerIsOpenThrows) {
  RunInThread([] {
    auto outer = std::make_unique<tls::TaskScope>();
    auto inner = std::make_unique<tls::TaskScope>();
    EXPECT_THROW(outer->End(), std::logic_error);
    inner.reset();
    outer.reset();
  });
}

TEST(TaskDeathTest, ScopeDestroyedOnAnotherThreadTerminatesWithAClearMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* scope = new tls::TaskScope();
        std::thread([scope] { delete scope; }).join();
      },
      "tls::TaskScope ended on another thread than the one that began it");
}

TEST(Task, PthreadExitInsideATaskEndsTheTaskThenTheThread) {
  Log log;
  RunInPthread([&] {
    tls::Set("own", tls::MakeData(Closer{&log, "own"}));
    tls::AtExit([&] { log.Add("thread handler, own=" + std::to_string(!!tls::Find("own"))); });
    tls::Run(tls::Snapshot(), [&] {
      tls::Set("t", tls::MakeData(Closer{&log, "t"}));
      tls::AtExit([&] { log.Add("task handler"); });
      pthread_exit(nullptr);
    });
    ADD_FAILURE() << "pthread_exit returned";
  });
  EXPECT_EQ(log.events(), (std::vector<std::string>{"task handler", "close t",
                                                    "thread handler, own=1", "close own"}));
}

TEST(Task, IdInsideATaskIsTheTasksOwnNewAndNeverReused) {
  RunInThread([] {
    const uint64_t thread_id = tls::ID();
    uint64_t first = 0, second = 0;
    tls::Run(tls::Snapshot(), [&] {
      first = tls::ID();
      EXPECT_EQ(tls::ID(), first);  // stable within the task
    });
    tls::Run(tls::Snapshot(), [&] { second = tls::ID(); });
    EXPECT_NE(first, thread_id);
    EXPECT_NE(second, thread_id);
    EXPECT_GT(second, first);
    EXPECT_EQ(tls::ID(), thread_id);
  });
}

struct Counted {
  Log* log;
  void Close() { log->Add("slot close"); }
};

TEST(Task, SlotValuesAreTaskLocalAndNotCaptured) {
  static tls::Slot<Counted> slot;
  Log log;
  RunInThread([&] {
    slot.Emplace(Counted{&log});
    Counted* mine = slot.Get();
    tls::Run(tls::Capture(), [&] {
      EXPECT_EQ(slot.Get(), nullptr);
      slot.Emplace(Counted{&log});
    });
    EXPECT_EQ(log.events(), std::vector<std::string>{"slot close"});  // the task's
    EXPECT_EQ(slot.Get(), mine);
  });
  EXPECT_EQ(log.events().size(), 2u);
}

TEST(Task, SameSnapshotRunByManyTasksAtOnce) {
  tls::Set("shared", tls::MakeData(std::string("from main")));
  tls::Snapshot snap = tls::Capture();
  std::atomic<int> seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        tls::Run(snap, [&] {
          if (StringAt("shared") == "from main") seen.fetch_add(1);
          tls::Set("mine", tls::MakeData(t * 1000 + i));
          if (tls::Get("mine")->Value<int>() != t * 1000 + i) seen.fetch_sub(100000);
        });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(seen.load(), 8 * 500);
  tls::Del("shared");
}

TEST(Task, WrapCapturesWhenWrappedAndRunsAsATaskWhereCalled) {
  tls::Set("request", tls::MakeData(std::string("r-1")));
  auto task = tls::Wrap([](int n) { return StringAt("request") + "/" + std::to_string(n); });
  tls::Set("request", tls::MakeData(std::string("r-2")));  // after the capture
  EXPECT_EQ(std::async(std::launch::async, task, 1).get(), "r-1/1");
  std::string on_thread;
  std::thread([&] { on_thread = task(2); }).join();
  EXPECT_EQ(on_thread, "r-1/2");
  std::function<std::string(int)> copy = task;  // copyable, as executors need
  EXPECT_EQ(copy(3), "r-1/3");                  // here too: a task on this thread
  EXPECT_EQ(StringAt("request"), "r-2");
  tls::Del("request");
}

}  // namespace
}  // namespace tls_test
