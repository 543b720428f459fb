// All threads at once: Slot<T>::ForEachThread, Slot retire functions,
// tls::Counter, tls::ListThreads and tls::GetStats. One test per rule of
// slot.h, counter.h and threads.h.
#include <gtest/gtest.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace {

using tls_test::Closer;
using tls_test::Log;
using tls_test::RunInThread;
using Events = std::vector<std::string>;
using namespace std::chrono_literals;

// Threads that run `setup`, then stay alive until Release() (or destruction).
class ParkedThreads {
 public:
  ParkedThreads(int n, const std::function<void(int)>& setup) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, i, setup] {
        setup(i);
        {
          std::unique_lock<std::mutex> lock(mu_);
          ++ready_;
          cv_.notify_all();
          cv_.wait(lock, [&] { return released_; });
        }
      });
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ready_ == n; });
  }
  ~ParkedThreads() { Release(); }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
      cv_.notify_all();
    }
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int ready_ = 0;
  bool released_ = false;
  std::vector<std::thread> threads_;
};

struct Shard {
  std::atomic<int> n{0};
};

// ---- Slot<T>::ForEachThread ----

TEST(ForEachThread, VisitsEveryLiveThreadsValueOnce) {
  tls::Slot<Shard> slot;
  ParkedThreads threads(8, [&](int i) { slot.GetOrEmplace().n = i + 1; });
  std::multiset<int> seen;
  slot.ForEachThread([&](Shard& s) { seen.insert(s.n.load()); });
  EXPECT_EQ(seen, (std::multiset<int>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(ForEachThread, SkipsThreadsWithoutAValueAndThreadsThatEnded) {
  tls::Slot<Shard> slot;
  RunInThread([&] { slot.GetOrEmplace().n = 100; });  // ended: not visited
  ParkedThreads with(2, [&](int) { slot.GetOrEmplace().n = 1; });
  ParkedThreads without(2, [&](int) { tls::Set("other", tls::MakeData(1)); });
  int visits = 0;
  slot.ForEachThread([&](Shard& s) {
    ++visits;
    EXPECT_EQ(s.n.load(), 1);
  });
  EXPECT_EQ(visits, 2);
}

TEST(ForEachThread, NamesTheThreadItVisits) {
  tls::Slot<Shard> slot;
  std::mutex mu;
  std::set<std::pair<uint64_t, pthread_t>> expected;
  ParkedThreads threads(3, [&](int) {
    slot.GetOrEmplace();
    std::lock_guard<std::mutex> lock(mu);
    expected.insert({tls::ID(), pthread_self()});
  });
  std::set<std::pair<uint64_t, pthread_t>> seen;
  slot.ForEachThread([&](const tls::ThreadInfo& who, Shard&) {
    EXPECT_FALSE(who.task);
    seen.insert({who.id, who.native});
  });
  EXPECT_EQ(seen, expected);
}

TEST(ForEachThread, VisitsOpenTasksAsTasks) {
  tls::Slot<Shard> slot;
  std::atomic<uint64_t> task_id{0};
  std::atomic<bool> done{false};
  std::thread t([&] {
    slot.GetOrEmplace().n = 1;  // the thread's own
    tls::TaskScope scope{tls::Snapshot()};
    slot.GetOrEmplace().n = 2;  // the task's
    task_id = tls::ID();
    while (!done) std::this_thread::yield();
  });
  while (task_id == 0) std::this_thread::yield();
  std::map<int, tls::ThreadInfo> by_value;
  slot.ForEachThread([&](const tls::ThreadInfo& who, Shard& s) { by_value[s.n.load()] = who; });
  done = true;
  t.join();
  ASSERT_EQ(by_value.size(), 2u);
  EXPECT_FALSE(by_value[1].task);
  EXPECT_TRUE(by_value[2].task);
  EXPECT_EQ(by_value[2].id, task_id.load());
  EXPECT_TRUE(pthread_equal(by_value[1].native, by_value[2].native));
}

// The owner's Del (and its exit) waits until the visitor is done with the value.
TEST(ForEachThread, ValueIsNeverDestroyedWhileVisited) {
  struct Watched {
    std::atomic<bool>* visiting;
    std::atomic<bool>* destroyed_while_visited;
    ~Watched() {
      if (visiting->load()) destroyed_while_visited->store(true);
    }
  };
  std::atomic<bool> visiting{false}, destroyed_while_visited{false}, deleted{false};
  std::atomic<bool> stored{false};
  tls::Slot<Watched> slot;
  std::thread owner([&] {
    slot.Emplace(Watched{&visiting, &destroyed_while_visited});
    stored = true;
    while (!visiting) std::this_thread::yield();
    slot.Del();  // must wait for the visitor
    deleted = true;
  });
  while (!stored) std::this_thread::yield();
  slot.ForEachThread([&](Watched&) {
    visiting = true;
    std::this_thread::sleep_for(100ms);
    EXPECT_FALSE(deleted.load()) << "Del returned while the value was being visited";
    visiting = false;
  });
  owner.join();
  EXPECT_TRUE(deleted);
  EXPECT_FALSE(destroyed_while_visited);
}

TEST(ForEachThread, ThreadEndingDuringTheVisitEndsAfterIt) {
  Log log;
  std::atomic<bool> stored{false}, visiting{false};
  tls::Slot<Closer> slot;
  std::thread owner([&] {
    slot.Emplace(Closer{&log, "v"});
    stored = true;
    while (!visiting) std::this_thread::yield();
  });  // exits while visited: its close waits
  while (!stored) std::this_thread::yield();
  slot.ForEachThread([&](Closer&) {
    visiting = true;
    std::this_thread::sleep_for(50ms);
    log.Add("visit done");
  });
  owner.join();
  EXPECT_EQ(log.events(), (Events{"visit done", "close v"}));
}

TEST(ForEachThread, VisitorMayCallTlsOnItsOwnThread) {
  tls::Slot<Shard> slot;
  tls::Slot<int> other;
  slot.GetOrEmplace().n = 1;  // this thread's own value is visited too
  ParkedThreads threads(2, [&](int) { slot.GetOrEmplace().n = 1; });
  int visits = 0, nested = 0;
  slot.ForEachThread([&](Shard& s) {
    ++visits;
    tls::Set("k", tls::MakeData(visits));  // a new key: a structural write of its own stub
    other.Emplace(visits);
    slot.GetOrEmplace().n += 0;
    slot.ForEachThread([&](Shard&) { ++nested; });  // nested walk
    EXPECT_EQ(s.n.load(), 1);
  });
  EXPECT_EQ(visits, 3);
  EXPECT_EQ(nested, 9);
  EXPECT_EQ(*other.Get(), 3);
  tls::Unload();
}

TEST(ForEachThread, VisitorMayEmplaceOverItsOwnThreadsValue) {
  tls::Slot<Shard> slot;
  slot.GetOrEmplace().n = 1;
  int visits = 0;
  slot.ForEachThread([&](Shard&) {
    ++visits;
    slot.Emplace();  // replaces the value being visited: its own thread's doing
  });
  EXPECT_EQ(visits, 1);
  EXPECT_EQ(slot.Get()->n.load(), 0);
  tls::Unload();
}

TEST(ForEachThread, AThrowingVisitorLeavesNoOwnerWaiting) {
  tls::Slot<Shard> slot;
  std::atomic<int> dels{0};
  {
    ParkedThreads threads(4, [&](int) { slot.GetOrEmplace(); });
    EXPECT_THROW(slot.ForEachThread([&](Shard&) { throw std::runtime_error("stop"); }),
                 std::runtime_error);
  }  // the threads exit (a write of their stubs): they would hang if still gated
  ParkedThreads again(2, [&](int) {
    slot.GetOrEmplace();
    slot.Del();
    ++dels;
  });
  EXPECT_EQ(dels.load(), 2);
}

// ---- Slot retire functions ----

TEST(SlotRetire, RunsAtThreadExitBeforeTheClose) {
  Log log;
  tls::Slot<Closer> slot([&](Closer& c) { log.Add("retire " + c.name); });
  RunInThread([&] {
    tls::AtExit([&] { log.Add("handler"); });
    slot.Emplace(Closer{&log, "v"});
  });
  EXPECT_EQ(log.events(), (Events{"handler", "retire v", "close v"}));
}

TEST(SlotRetire, RunsAtResetAndAtTaskEnd) {
  Log log;
  tls::Slot<Closer> slot([&](Closer& c) { log.Add("retire " + c.name); });
  RunInThread([&] {
    slot.Emplace(Closer{&log, "a"});
    tls::Reset();
    tls::Run(tls::Snapshot(), [&] { slot.Emplace(Closer{&log, "task"}); });
    log.Add("end");
  });
  EXPECT_EQ(log.events(), (Events{"retire a", "close a", "retire task", "close task", "end"}));
}

TEST(SlotRetire, NotForDelEmplaceOrUnload) {
  std::atomic<int> retired{0};
  tls::Slot<int> slot([&](int&) { ++retired; });
  RunInThread([&] {
    slot.Emplace(1);
    slot.Emplace(2);  // the 1 is dropped, not retired
    slot.Del();
    slot.Emplace(3);
    tls::Unload();
  });
  EXPECT_EQ(retired.load(), 0);
}

TEST(SlotRetire, AThrowingRetireIsReportedAndTheValueStillClosed) {
  static std::vector<tls::ErrorSource>* sources = nullptr;
  std::vector<tls::ErrorSource> seen;
  sources = &seen;
  tls::ErrorHandler previous =
      tls::SetErrorHandler([](const tls::ErrorInfo& e) { sources->push_back(e.source); });
  Log log;
  tls::Slot<Closer> slot([](Closer&) { throw std::runtime_error("no"); });
  RunInThread([&] { slot.Emplace(Closer{&log, "v"}); });
  tls::SetErrorHandler(previous);
  EXPECT_EQ(seen, (std::vector<tls::ErrorSource>{tls::ErrorSource::kRetire}));
  EXPECT_EQ(log.events(), (Events{"close v"}));
}

TEST(SlotRetire, NotCalledOnceTheSlotIsGone) {
  std::atomic<int> retired{0};
  std::atomic<bool> stored{false}, gone{false};
  auto slot = std::make_unique<tls::Slot<int>>([&](int&) { ++retired; });
  std::thread t([&] {
    slot->Emplace(1);
    stored = true;
    while (!gone) std::this_thread::yield();
  });  // its value is closed after the Slot was destroyed
  while (!stored) std::this_thread::yield();
  slot.reset();
  gone = true;
  t.join();
  EXPECT_EQ(retired.load(), 0);
}

TEST(SlotRetire, EmptyRetireFunctionIsRejected) {
  EXPECT_THROW(tls::Slot<int>(std::function<void(int&)>()), std::invalid_argument);
}

// ---- tls::Counter ----

TEST(Counter, ReadSumsLiveThreadsAndEndedOnes) {
  tls::Counter counter;
  for (int i = 0; i < 4; ++i) RunInThread([&] { counter.Add(10); });  // ended
  ParkedThreads live(3, [&](int i) { counter.Add(i + 1); });          // 1+2+3
  counter.Add(-5);
  EXPECT_EQ(counter.Read(), 40 + 6 - 5);
  EXPECT_EQ(counter.ReadLocal(), -5);
  tls::Reset();  // folds this thread's shard: the total stays
  EXPECT_EQ(counter.ReadLocal(), 0);
  EXPECT_EQ(counter.Read(), 41);
}

TEST(Counter, TasksFoldIntoTheTotalWhenTheyEnd) {
  tls::Counter counter;
  RunInThread([&] {
    tls::Run(tls::Snapshot(), [&] { counter.Add(7); });
    EXPECT_EQ(counter.ReadLocal(), 0);  // the task's shard was its own
    EXPECT_EQ(counter.Read(), 7);
  });
  EXPECT_EQ(counter.Read(), 7);
}

TEST(Counter, EveryAddCountedOnceUnderChurn) {
  tls::Counter counter;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> last{0};
  std::atomic<bool> went_down{false};
  std::thread reader([&] {
    while (!stop) {
      const int64_t now = counter.Read();
      if (now < last) went_down = true;
      last = now;
    }
  });
  std::vector<std::thread> adders;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 8; ++i) {
      adders.emplace_back([&] {
        for (int k = 0; k < 100; ++k) counter.Add(1);
      });
    }
    for (std::thread& t : adders) t.join();
    adders.clear();
  }
  stop = true;
  reader.join();
  EXPECT_EQ(counter.Read(), 20 * 8 * 100);
  EXPECT_FALSE(went_down);
}

// ---- tls::ListThreads and tls::GetStats ----

const tls::ThreadReport* FindReport(const std::vector<tls::ThreadReport>& all, uint64_t id) {
  for (const tls::ThreadReport& r : all) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

TEST(ListThreads, ListsEachThreadsKeysAndCountsNotValues) {
  tls::Slot<int> slot;
  std::vector<uint64_t> ids(2);
  ParkedThreads threads(2, [&](int i) {
    ids[i] = tls::ID();
    tls::Set("user", tls::MakeData(std::string("secret")));
    tls::Set(42, tls::MakeData(1));
    if (i == 1) {
      tls::Set(-7, tls::MakeData(1));
      slot.Emplace(1);
      tls::AtExit([] {});
    }
  });
  const std::vector<tls::ThreadReport> all = tls::ListThreads();
  const tls::ThreadReport* a = FindReport(all, ids[0]);
  const tls::ThreadReport* b = FindReport(all, ids[1]);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::vector<std::string> keys = a->keys;
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"\"user\"", "42"}));
  keys = b->keys;
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"\"user\"", "-7", "42"}));
  EXPECT_EQ(a->slot_values, 0u);
  EXPECT_EQ(b->slot_values, 1u);
  EXPECT_EQ(a->handlers, 0u);
  EXPECT_EQ(b->handlers, 1u);
  EXPECT_FALSE(a->task);
}

// bytes counts what a stub has reserved, and a thread may start on a stub
// recycled from an ended one (empty, but keeping up to 8 table entries, 8
// handlers and 64 slot cells of room). So a thread with one key more than
// another need not report more bytes; one whose table outgrew anything a
// recycled stub keeps must.
TEST(ListThreads, BytesGrowWithWhatTheThreadHolds) {
  constexpr int kManyKeys = 64;
  std::vector<uint64_t> ids(2);
  ParkedThreads threads(2, [&](int i) {
    ids[i] = tls::ID();
    tls::Set(1, tls::MakeData(1));
    if (i == 1) {
      for (int k = 2; k <= kManyKeys; ++k) tls::Set(k, tls::MakeData(k));
    }
  });
  const std::vector<tls::ThreadReport> all = tls::ListThreads();
  const tls::ThreadReport* few = FindReport(all, ids[0]);
  const tls::ThreadReport* many = FindReport(all, ids[1]);
  ASSERT_NE(few, nullptr);
  ASSERT_NE(many, nullptr);
  EXPECT_EQ(few->keys.size(), 1u);
  EXPECT_EQ(many->keys.size(), static_cast<size_t>(kManyKeys));
  EXPECT_GT(many->bytes, few->bytes);
}

TEST(ListThreads, EndedThreadsAreGoneAndTasksAreMarked) {
  uint64_t ended = 0;
  RunInThread([&] { ended = tls::ID(); });
  EXPECT_EQ(FindReport(tls::ListThreads(), ended), nullptr);
  tls::Run(tls::Snapshot(), [&] {
    tls::Set("in_task", tls::MakeData(1));
    const std::vector<tls::ThreadReport> all = tls::ListThreads();
    const tls::ThreadReport* me = FindReport(all, tls::ID());
    ASSERT_NE(me, nullptr);
    EXPECT_TRUE(me->task);
    EXPECT_EQ(me->keys, (std::vector<std::string>{"\"in_task\""}));
    EXPECT_TRUE(pthread_equal(me->native, pthread_self()));
  });
}

TEST(Stats, TotalsMatchTheListing) {
  ParkedThreads threads(3, [&](int i) {
    for (int k = 0; k <= i; ++k) tls::Set(k, tls::MakeData(k));
    tls::AtExit([] {});
  });
  const tls::Stats stats = tls::GetStats();
  const std::vector<tls::ThreadReport> all = tls::ListThreads();
  size_t values = 0, handlers = 0, bytes = 0, tasks = 0;
  for (const tls::ThreadReport& r : all) {
    values += r.keys.size();
    handlers += r.handlers;
    bytes += r.bytes;
    tasks += r.task;
  }
  EXPECT_GE(stats.threads, 3u);
  EXPECT_EQ(stats.threads + stats.tasks, all.size());
  EXPECT_EQ(stats.tasks, tasks);
  EXPECT_EQ(stats.values, values);
  EXPECT_EQ(stats.handlers, handlers);
  EXPECT_GE(stats.bytes, bytes);
  EXPECT_GE(values, 1u + 2u + 3u);
  EXPECT_GE(handlers, 3u);
}

}  // namespace
