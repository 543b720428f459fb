// tls::Slot<T> (core/slot.h): the typed fast path follows the keyed values'
// rules; Slot<T>::ForEachThread reads every thread's value; retire functions
// run where the close runs.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/internal/stub.h"
#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

using namespace std::chrono_literals;

TEST(Slot, GetNeverCreatesAndIsPerThread) {
  tls::Slot<int> slot;
  RunInThread([&] {
    EXPECT_EQ(slot.Get(), nullptr);
    slot.Set(5);
    EXPECT_EQ(*slot.Get(), 5);
  });
  EXPECT_EQ(slot.Get(), nullptr);
}

TEST(Slot, GetOrEmplaceCreatesOnce) {
  tls::Slot<std::string> slot;
  RunInThread([&] {
    slot.GetOrEmplace() += "a";
    slot.GetOrEmplace() += "b";
    EXPECT_EQ(*slot.Get(), "ab");
  });
}

TEST(Slot, ClosedAtThreadExitAfterHandlers) {
  Log log;
  tls::Slot<Closer> slot;
  RunInThread([&] {
    slot.Emplace(Closer{&log, "slot"});
    tls::AtExit([&] { log.Add(slot.Get() ? "handler sees slot" : "handler sees nothing"); });
  });
  EXPECT_EQ(log.events(), (Events{"handler sees slot", "close slot"}));
}

TEST(Slot, ResetClosesSlotValues) {
  Log log;
  tls::Slot<Closer> slot;
  RunInThread([&] {
    slot.Emplace(Closer{&log, "slot"});
    tls::Reset();
    EXPECT_EQ(slot.Get(), nullptr);
    EXPECT_EQ(log.events(), Events{"close slot"});
  });
  EXPECT_EQ(log.events(), Events{"close slot"});
}

// A Slot made while many others are alive stores far into a thread's slot
// array. Reset visits only the range that holds values and
// keeps the array, so the next store neither allocates nor zero-fills it
// (0.4 ms per Add + Reset on a Counter made after 100,000 others).
TEST(Slot, ResetKeepsTheSlotArrayAndEmptiesOnlyTheUsedRange) {
  std::vector<std::unique_ptr<tls::Slot<int>>> earlier(1000);
  for (auto& s : earlier) s = std::make_unique<tls::Slot<int>>();
  tls::Slot<int> late;
  RunInThread([&] {
    late.Emplace(1);
    const tls::internal::SlotArray& cells = tls::internal::t_thread.stub->slots;
    ASSERT_GT(cells.size(), late.index());
    EXPECT_EQ(cells.begin_used(), late.index());
    EXPECT_EQ(cells.end_used(), late.index() + 1);
    const tls::internal::SlotCell* array = &cells[0];
    tls::Reset();
    EXPECT_EQ(late.Get(), nullptr);
    EXPECT_EQ(&tls::internal::t_thread.stub->slots[0], array) << "Reset dropped the array";
    EXPECT_GE(cells.begin_used(), cells.end_used()) << "the used range is empty after Reset";
    late.Emplace(2);
    EXPECT_EQ(&tls::internal::t_thread.stub->slots[0], array) << "the next store reallocated";
    EXPECT_EQ(*late.Get(), 2);
  });
}

TEST(Slot, ResetClosesValuesAtEveryIndexOnce) {
  Log log;
  tls::Slot<Closer> low;
  std::vector<std::unique_ptr<tls::Slot<int>>> between(500);
  for (auto& s : between) s = std::make_unique<tls::Slot<int>>();
  tls::Slot<Closer> high;
  RunInThread([&] {
    for (int round = 0; round < 3; ++round) {
      high.Emplace(Closer{&log, "high"});
      low.Emplace(Closer{&log, "low"});
      between[250]->Emplace(round);
      tls::Reset();
      EXPECT_EQ(low.Get(), nullptr);
      EXPECT_EQ(high.Get(), nullptr);
      EXPECT_EQ(between[250]->Get(), nullptr);
    }
  });
  // Closed in index order, each once per round.
  EXPECT_EQ(log.events(), (Events{"close low", "close high", "close low", "close high", "close low",
                                  "close high"}));
}

TEST(Slot, EmplaceOverAndDelDoNotClose) {
  Log log;
  tls::Slot<Closer> slot;
  RunInThread([&] {
    slot.Emplace(Closer{&log, "first"});
    slot.Emplace(Closer{&log, "second"});
    EXPECT_TRUE(slot.Del());
    EXPECT_FALSE(slot.Del());
  });
  EXPECT_TRUE(log.events().empty());
}

TEST(Slot, UnloadDropsSlotValuesUnclosed) {
  Log log;
  tls::Slot<Closer> slot;
  RunInThread([&] {
    slot.Emplace(Closer{&log, "v"});
    tls::Unload();
    EXPECT_EQ(slot.Get(), nullptr);
  });
  EXPECT_TRUE(log.events().empty());
}

TEST(Slot, ManySlotsIndependent) {
  std::vector<std::unique_ptr<tls::Slot<int>>> slots;
  for (int i = 0; i < 100; ++i) slots.push_back(std::make_unique<tls::Slot<int>>());
  RunInThread([&] {
    for (int i = 0; i < 100; i += 3) slots[i]->Set(i);
    for (int i = 0; i < 100; ++i) {
      if (i % 3 == 0) {
        ASSERT_NE(slots[i]->Get(), nullptr);
        EXPECT_EQ(*slots[i]->Get(), i);
      } else {
        EXPECT_EQ(slots[i]->Get(), nullptr);
      }
    }
  });
}

TEST(Slot, ValueSetInSlotCloseIsClosedInTheSameExit) {
  Log log;
  static tls::Slot<Closer> second;
  struct SetsSlot {
    Log* log;
    void Close() { second.Emplace(Closer{log, "second"}); }
  };
  tls::Slot<SetsSlot> first;
  RunInThread([&] { first.Emplace(SetsSlot{&log}); });
  EXPECT_EQ(log.events(), Events{"close second"});
}

struct Shard {
  std::atomic<int> n{0};
};

// ---- Slot<T>::ForEachThread ----

TEST(SlotForEachThread, VisitsEveryLiveThreadsValueOnce) {
  tls::Slot<Shard> slot;
  ParkedThreads threads(8, [&](int i) { slot.GetOrEmplace().n = i + 1; });
  std::multiset<int> seen;
  slot.ForEachThread([&](Shard& s) { seen.insert(s.n.load()); });
  EXPECT_EQ(seen, (std::multiset<int>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(SlotForEachThread, SkipsThreadsWithoutAValueAndThreadsThatEnded) {
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

TEST(SlotForEachThread, NamesTheThreadItVisits) {
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

TEST(SlotForEachThread, VisitsOpenTasksAsTasks) {
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
TEST(SlotForEachThread, ValueIsNeverDestroyedWhileVisited) {
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

// A walk holds only the batch of threads it is reading (32 places of the
// engine's thread table): while the visitor is on the first thread's value,
// the thread it visits last, many places further, writes its own Slot values
// without waiting for the walk.
TEST(SlotForEachThread, ThreadsOutsideTheBatchBeingReadDoNotWaitForTheVisitor) {
  constexpr int kThreads = 100;  // more than three batches
  tls::Slot<int> slot;
  std::atomic<uint64_t> writer{0};  // the owner told to write, by id
  std::atomic<int> ready{0};
  std::atomic<bool> wrote{false}, stop{false};
  std::vector<std::thread> owners;
  for (int n = 0; n < kThreads; ++n) {
    owners.emplace_back([&, n] {
      slot.Emplace(n);
      ++ready;
      while (!stop) {
        if (writer.load() == tls::ID() && !wrote) {
          slot.Del();       // a write section on its own stub...
          slot.Emplace(n);  // ...and another
          wrote = true;
        }
        std::this_thread::yield();
      }
    });
  }
  while (ready != kThreads) std::this_thread::yield();
  std::vector<uint64_t> order;  // the walk's order (the table's), learnt first
  slot.ForEachThread([&](const tls::ThreadInfo& who, int&) { order.push_back(who.id); });
  ASSERT_EQ(order.size(), static_cast<size_t>(kThreads));
  int visits = 0;
  slot.ForEachThread([&](const tls::ThreadInfo& who, int&) {
    if (visits++ != 0) return;
    EXPECT_EQ(who.id, order.front());
    writer = order.back();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!wrote && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    EXPECT_TRUE(wrote.load()) << "a thread of another batch waited for the visitor";
  });
  stop = true;
  for (auto& t : owners) t.join();
  EXPECT_EQ(visits, kThreads);
}

TEST(SlotForEachThread, ThreadEndingDuringTheVisitEndsAfterIt) {
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

TEST(SlotForEachThread, VisitorMayCallTlsOnItsOwnThread) {
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

TEST(SlotForEachThread, VisitorMayEmplaceOverItsOwnThreadsValue) {
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

TEST(SlotForEachThread, AThrowingVisitorLeavesNoOwnerWaiting) {
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

// The Slot's destruction retires every thread's value (slot_lifetime_test);
// the thread's later end has nothing left to retire.
TEST(SlotRetire, CalledAtTheSlotsDestructionAndNotAgainAtThreadEnd) {
  std::atomic<int> retired{0};
  std::atomic<bool> stored{false}, gone{false};
  auto slot = std::make_unique<tls::Slot<int>>([&](int&) { ++retired; });
  std::thread t([&] {
    slot->Emplace(1);
    stored = true;
    while (!gone) std::this_thread::yield();
  });
  while (!stored) std::this_thread::yield();
  slot.reset();
  EXPECT_EQ(retired.load(), 1);
  gone = true;
  t.join();
  EXPECT_EQ(retired.load(), 1);
}

TEST(SlotRetire, EmptyRetireFunctionIsRejected) {
  EXPECT_THROW(tls::Slot<int>(std::function<void(int&)>()), std::invalid_argument);
}

}  // namespace
}  // namespace tls_test
