// A Slot's scope (core/slot.h SlotScope): a task-scoped Slot (the default)
// gives each task its own empty view; a thread-scoped one (tls::ThreadSlot)
// keeps one value per thread that every task on the thread sees, closed at
// the thread's end only.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

TEST(SlotScope, AThreadSlotIsSeenAndSetByEveryTaskOnTheThread) {
  tls::ThreadSlot<int> cache;
  RunInThread([&] {
    cache.Emplace(1);
    const tls::Snapshot snap = tls::Capture();
    tls::Run(snap, [&] {
      ASSERT_NE(cache.Get(), nullptr) << "the thread's value, visible in the task";
      EXPECT_EQ(*cache.Get(), 1);
      cache.Emplace(2);  // the thread's value, not the task's
    });
    ASSERT_NE(cache.Get(), nullptr);
    EXPECT_EQ(*cache.Get(), 2) << "a task's store outlives the task";
    tls::Run(snap, [&] { EXPECT_EQ(*cache.Get(), 2) << "the next task sees it"; });
  });
}

TEST(SlotScope, ATaskScopedSlotStaysTheDefault) {
  tls::Slot<int> context;  // SlotScope::kTask
  static_assert(std::is_same_v<tls::Slot<int>, tls::Slot<int, tls::SlotScope::kTask>>);
  RunInThread([&] {
    context.Emplace(1);
    tls::Run(tls::Capture(), [&] {
      EXPECT_EQ(context.Get(), nullptr) << "hidden in the task";
      context.Emplace(2);
    });
    EXPECT_EQ(*context.Get(), 1) << "the task's own value went with it";
  });
}

TEST(SlotScope, AThreadSlotValueIsClosedAtThreadEndNotAtTaskEnd) {
  Log log;
  tls::ThreadSlot<Closer> cache;
  RunInThread([&] {
    // The thread has no stub yet: the task's store makes the thread's.
    tls::Run(tls::Capture(), [&] { cache.Emplace(Closer{&log, "conn"}); });
    EXPECT_EQ(log.events(), Events{}) << "not closed by the task's end";
    ASSERT_NE(cache.Get(), nullptr);
    EXPECT_NE(tls::ID(), 0u);
  });
  EXPECT_EQ(log.events(), Events{"close conn"}) << "closed once, at the thread's end";
}

TEST(SlotScope, AThreadSlotMadeInsideATaskGivesTheThreadItsOwnId) {
  tls::ThreadSlot<int> cache;
  RunInThread([&] {
    uint64_t task_id = 0;
    tls::Run(tls::Capture(), [&] {
      task_id = tls::ID();
      cache.Emplace(1);
      EXPECT_EQ(tls::ID(), task_id) << "the task keeps its own ID";
    });
    const uint64_t thread_id = tls::ID();
    EXPECT_NE(thread_id, task_id);
    EXPECT_EQ(*cache.Get(), 1);
    tls::Run(tls::Capture(), [&] { EXPECT_EQ(*cache.Get(), 1); });
    EXPECT_EQ(tls::ID(), thread_id) << "stable across tasks";
  });
}

TEST(SlotScope, ResetAndUnloadInsideATaskLeaveAThreadSlotAlone) {
  Log log;
  tls::ThreadSlot<Closer> cache;
  RunInThread([&] {
    cache.Emplace(Closer{&log, "conn"});
    tls::Run(tls::Capture(), [&] {
      tls::Reset();
      tls::Unload();
      ASSERT_NE(cache.Get(), nullptr) << "the task's view was reset, not the thread";
    });
    EXPECT_EQ(log.events(), Events{});
    tls::Reset();  // the thread's own Reset closes it
    EXPECT_EQ(log.events(), Events{"close conn"});
    EXPECT_EQ(cache.Get(), nullptr);
  });
}

TEST(SlotScope, NestedTasksSeeTheThreadsValue) {
  tls::ThreadSlot<std::string> cache;
  RunInThread([&] {
    tls::Run(tls::Capture(), [&] {
      tls::Run(tls::Capture(), [&] { cache.Emplace("inner"); });
      ASSERT_NE(cache.Get(), nullptr);
      EXPECT_EQ(*cache.Get(), "inner");
    });
    EXPECT_EQ(*cache.Get(), "inner");
  });
}

TEST(SlotScope, DelInsideATaskDeletesTheThreadsValue) {
  tls::ThreadSlot<int> cache;
  RunInThread([&] {
    cache.Emplace(1);
    tls::Run(tls::Capture(), [&] { EXPECT_TRUE(cache.Del()); });
    EXPECT_EQ(cache.Get(), nullptr);
  });
}

// A walk reports the value once, as the thread's, also while a task hides
// the thread's state; destroying the Slot then releases it.
TEST(SlotScope, WalksAndDestructionReachAThreadSlotHiddenByATask) {
  auto cache = std::make_unique<tls::ThreadSlot<int>>();
  std::atomic<int> step{0};
  uint64_t thread_id = 0;
  std::thread worker([&] {
    cache->Emplace(7);
    thread_id = tls::ID();
    tls::Run(tls::Capture(), [&] {
      step = 1;
      while (step != 2) std::this_thread::yield();
    });
    EXPECT_EQ(cache, nullptr);
  });
  while (step != 1) std::this_thread::yield();
  std::vector<std::pair<uint64_t, bool>> seen;
  cache->ForEachThread([&](const tls::ThreadInfo& who, int& v) {
    EXPECT_EQ(v, 7);
    seen.emplace_back(who.id, who.task);
  });
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, thread_id);
  EXPECT_FALSE(seen[0].second) << "the thread's value, not a task's";
  cache.reset();
  step = 2;
  worker.join();
}

// A pool thread's thread-scoped value is made by its first task and reused
// by every later one: made once per thread, not once per task.
TEST(SlotScope, APerWorkerCacheIsMadeOncePerThreadAcrossTasks) {
  std::atomic<int> made{0};
  struct Conn {
    explicit Conn(std::atomic<int>* m) { m->fetch_add(1); }
  };
  tls::ThreadSlot<Conn> conn;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      for (int task = 0; task < 100; ++task) {
        tls::Run(tls::Capture(), [&] {
          if (conn.Get() == nullptr) conn.Emplace(&made);
        });
      }
    });
  }
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(made.load(), 4);
}

}  // namespace
}  // namespace tls_test
