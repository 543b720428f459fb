// fork: a multi-threaded process forks while its other threads are busy in
// the engine (every function; closers and handlers that call tls; threads
// starting and ending, so exit sequences are in flight). Each child checks
// itself and reports on a pipe: it keeps only the forking thread's stub (its
// values, handlers and ID), can use every function and start threads (new
// unique IDs, their handlers and closes run), and ends before a deadline. The
// parent's threads check all along that their own state is untouched.
//
// All threads at once: a walker thread reads a tls::Counter the
// busy threads add to, walks a Slot and lists the threads without pause, so
// forks happen during walks and folds. In the child the registry shows only
// the forking thread's stubs (its own and its open tasks'), walks and Counter
// reads work and never hang, and the Counter keeps what was folded into it
// before the fork plus the forking thread's own shards: the other threads'
// unfolded shards are lost with their threads (their stubs are abandoned in
// the child, as their values are). Deterministic cases fork from inside an
// open task while another thread is inside a visitor: a walk in progress,
// gating the forking thread's stub, of a Slot made with a retire function,
// whose lock it then holds.
//
// Children end deliberately: with exit(), the forking thread's exit sequence
// must run in the child (it is the child's only thread); with _exit(),
// nothing runs. Forking from inside an AtExit handler or a close during
// thread exit is defined too: the child finishes that thread's exit sequence
// from the same point, then, its only thread having ended, exits with 0.
//
// Sanitizers cannot follow everything into such children (details at
// kChildStartsThreads, kParkForFork and in ForkRepeatedly): under TSan the
// children start no threads and end with _exit; under ASan the busy threads
// park outside malloc for each fork. The plain build does it all.
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/reliability/test_util.h"
#include "tls/counter.h"
#include "tls/threads.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

// Set in a forked child as its first act.
std::atomic<bool> g_in_child{false};

}  // namespace
}  // namespace tls_test

#ifdef TLS_TEST_ASAN
// LeakSanitizer must not check a child at exit(): the stubs of the parent's
// other threads are unreachable there by design (their threads do not exist
// in the child, and the engine keeps no registry of threads). The parent,
// where every stub is accounted for, is still checked.
extern "C" int __lsan_is_turned_off() { return tls_test::g_in_child.load() ? 1 : 0; }
#endif

namespace tls_test {
namespace {

constexpr double kChildTimeoutS = 60;

// Under TSan a child of a multi-threaded fork cannot start threads: TSan
// still lists the vanished threads, and a new thread that reuses one's
// pthread_t (glibc recycles their stacks) kills the child ("dup thread with
// used id"). TSan checks nothing in such a child anyway; it still checks the
// parent, where the forks race the busy threads.
constexpr bool kChildStartsThreads = !kTsan;

// GCC 12's ASan does not take its allocator's locks around fork: a child can
// inherit a size-class lock held by a busy thread and hang in its first
// malloc (seen: SizeClassAllocator64::GetFromAllocator). So under ASan the
// busy threads park at a point outside malloc and the engine for each fork;
// the plain and TSan builds fork while they are busy.
constexpr bool kParkForFork = kAsan;

// ---------------------------------------------------------------------------
// What a process says. Lines are kept in memory (so a child can show what its
// parent said before the fork); a child also prints them, one write each.

std::mutex g_log_mu;
std::vector<std::string> g_log;

void Say(const std::string& line) {
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log.push_back(line);
  }
  if (g_in_child.load()) WriteLine(line);
}

std::vector<std::string> TakeLog() {
  std::lock_guard<std::mutex> lock(g_log_mu);
  return std::exchange(g_log, {});
}

// Called first in a child: from now on lines are printed. With
// `show_inherited`, the parent's lines up to the fork are printed first,
// prefixed "inherited: ".
void EnterChild(bool show_inherited) {
  if (show_inherited) {
    std::lock_guard<std::mutex> lock(g_log_mu);
    for (const std::string& l : g_log) WriteLine("inherited: " + l);
  }
  g_in_child.store(true);
}

// A value that says "<name> closed" when closed.
tls::Data Loud(const std::string& name) {
  return tls::MakeData(name, [](std::string& n) { Say(n + " closed"); });
}

// ---------------------------------------------------------------------------
// IDs: every thread publishes the IDs it gets, so a child knows a bound that
// every ID handed out before the fork stays under.

std::atomic<uint64_t> g_max_id{0};

uint64_t PublishedId() {
  const uint64_t id = tls::ID();
  uint64_t seen = g_max_id.load();
  while (seen < id && !g_max_id.compare_exchange_weak(seen, id)) {
  }
  return id;
}

// A slot value that counts its closes (a Slot is one per program: global).
struct SlotValue {
  std::atomic<int>* closes = nullptr;
  void Close() {
    if (closes != nullptr) closes->fetch_add(1);
  }
};
tls::Slot<SlotValue> g_slot;
tls::Slot<uint64_t> g_busy_slot;
// Added to by the busy threads and the forking thread, read by the walker.
tls::Counter g_counter;

// ---------------------------------------------------------------------------
// The parent's load: threads inside every engine function until stopped.

class BusyLoad {
 public:
  // `walkers` threads walk without pause (Counter::Read, Slot::ForEachThread,
  // ListThreads, GetStats), so forks happen during walks.
  BusyLoad(int busy_threads, int churn_threads, int walkers = 0)
      : churn_threads_(churn_threads), started_(busy_threads + churn_threads + walkers) {
    for (int i = 0; i < busy_threads; ++i) threads_.emplace_back([this, i] { Busy(i); });
    for (int i = 0; i < churn_threads; ++i) threads_.emplace_back([this] { Churn(); });
    for (int i = 0; i < walkers; ++i) threads_.emplace_back([this] { Walk(); });
    started_.wait();
  }
  BusyLoad(const BusyLoad&) = delete;
  BusyLoad& operator=(const BusyLoad&) = delete;
  ~BusyLoad() { Stop(); }

  // Parks every thread at the top of its loop (outside the engine and
  // malloc) until Resume.
  void Park() {
    park_.store(true);
    while (parked_.load() < static_cast<int>(threads_.size())) usleep(50);
  }
  void Resume() {
    park_.store(false);
    while (parked_.load() > 0) usleep(50);
  }

  // Stops and joins the threads; their exit sequences have run after this.
  void Stop() {
    Resume();
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  int busy_threads() const { return busy_threads_; }
  int churn_threads() const { return churn_threads_; }
  // Times a busy thread found its own value or ID changed (must stay 0).
  int disturbed() const { return disturbed_.load(); }
  // Busy threads whose final handler saw their own value, unclosed, at exit.
  int final_ok() const { return final_ok_.load(); }
  int churned() const { return churned_.load(); }
  int churn_handlers() const { return churn_handlers_.load(); }
  int churn_closes() const { return churn_closes_.load(); }
  long walks() const { return walks_.load(); }

 private:
  // Stores this thread's own value and the handler that checks it at exit;
  // returns the (new) ID.
  uint64_t Arm(const std::string& own) {
    tls::Set("busy-own", tls::MakeData(own));
    tls::AtExit([this, own] {
      auto d = tls::Get("busy-own");
      if (d && !d->closed() && d->Value<std::string>() == own) final_ok_.fetch_add(1);
    });
    return PublishedId();
  }

  void ParkHereIfAsked() {
    if (!park_.load(std::memory_order_relaxed)) return;
    parked_.fetch_add(1);
    while (park_.load()) usleep(50);
    parked_.fetch_sub(1);
  }

  void Busy(int n) {
    ++busy_threads_;
    const std::string own = "busy-" + std::to_string(n);
    uint64_t id = Arm(own);
    started_.count_down();
    for (uint64_t i = 1; !stop_.load(std::memory_order_relaxed); ++i) {
      ParkHereIfAsked();
      const int key = static_cast<int>(i % 16);
      tls::Set(key, tls::MakeData(i, [](uint64_t& v) {
                 tls::Set("from-close", tls::MakeData(v));  // closed in the next round
                 (void)tls::ID();
               }));
      (void)tls::Get(static_cast<int>((i * 7) % 16));
      if (i % 5 == 0) tls::Del(key);
      if (i % 3 == 0) g_busy_slot.Emplace(i);
      g_counter.Add(1);
      if (i % 256 == 0) {
        tls::AtExit([] {
          (void)tls::Get("busy-own");
          tls::Set("from-handler", tls::MakeData(1));
        });
      }
      if (i % 64 == 0) {
        tls::Reset();  // closes busy-own too: store it again
        tls::Set("busy-own", tls::MakeData(own));
      }
      if (i % 4096 == 0) {
        tls::Unload();
        id = Arm(own);
      }
      const tls::Data* d = tls::Find("busy-own");
      if (d == nullptr || d->Value<std::string>() != own || tls::ID() != id) {
        disturbed_.fetch_add(1);
      }
    }
  }

  // Walks the registry without pause: a Counter read (holding its Slot's
  // lock, racing the busy threads' folds at Reset), a Slot walk, a listing.
  void Walk() {
    started_.count_down();
    while (!stop_.load(std::memory_order_relaxed)) {
      ParkHereIfAsked();
      (void)g_counter.Read();  // not monotonic here: a busy thread's Unload drops its shard
      g_busy_slot.ForEachThread([](const uint64_t& v) { (void)v; });
      (void)tls::ListThreads();
      (void)tls::GetStats();
      walks_.fetch_add(1);
    }
  }

  // Starts and joins short-lived threads with values and handlers, so some
  // thread is usually being created or running its exit sequence.
  void Churn() {
    started_.count_down();
    while (!stop_.load(std::memory_order_relaxed)) {
      ParkHereIfAsked();
      std::thread([this] {
        PublishedId();
        tls::Set("c", tls::MakeData(0, [this](int&) {
                   churn_closes_.fetch_add(1);
                   (void)tls::ID();
                 }));
        tls::AtExit([this] {
          if (tls::Get("c")) churn_handlers_.fetch_add(1);
        });
      }).join();
      churned_.fetch_add(1);
    }
  }

  const int churn_threads_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> park_{false};
  std::atomic<int> parked_{0};
  std::latch started_;
  std::atomic<int> busy_threads_{0};
  std::atomic<int> disturbed_{0};
  std::atomic<int> final_ok_{0};
  std::atomic<int> churned_{0};
  std::atomic<int> churn_handlers_{0};
  std::atomic<int> churn_closes_{0};
  std::atomic<long> walks_{0};
  std::vector<std::thread> threads_;
};

// Checks the parent's threads came through the forks untouched: each kept
// its value and ID, and each ran its handlers and closes exactly once.
void ExpectParentUnaffected(BusyLoad& load) {
  load.Stop();
  EXPECT_EQ(load.disturbed(), 0) << "a busy parent thread saw its own value or ID change";
  EXPECT_EQ(load.final_ok(), load.busy_threads());
  if (load.churn_threads() > 0) {
    EXPECT_GT(load.churned(), 0);
  }
  EXPECT_EQ(load.churn_handlers(), load.churned());
  EXPECT_EQ(load.churn_closes(), load.churned());
}

// The same, for a load with walkers: they walked all along.
void ExpectParentUnaffectedAndWalked(BusyLoad& load) {
  ExpectParentUnaffected(load);
  EXPECT_GT(load.walks(), 0);
}

// ---------------------------------------------------------------------------
// The child.

// What the parent knew when it forked.
struct ForkPoint {
  uint64_t forker_id = 0;
  uint64_t max_id = 0;  // every ID handed out before the fork is <= this
};

// How a child ends, cycled through by the fork loop.
enum class ChildEnd {
  kExit,                // exit(): the forking thread's handlers and closes run
  kUnderscoreExit,      // _exit(): nothing runs
  kResetUnloadAndExit,  // Reset closes "mine", Unload drops its handler, exit()
};

class ChildChecks {
 public:
  void Expect(bool ok, const std::string& what) {
    if (!ok) {
      Say("FAIL: " + what);
      ++failures_;
    }
  }
  int failures() const { return failures_; }

 private:
  int failures_ = 0;
};

// New threads in the child: fresh unique IDs, and their handlers and closes
// (values set in the thread and in its handler, and a Slot value) run.
void CheckChildThreads(const ForkPoint& at, ChildChecks& c) {
  constexpr int kThreads = 3;
  std::atomic<int> handlers{0}, closes{0}, slot_closes{0};
  std::vector<uint64_t> ids(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ids[i] = tls::ID();
      tls::Set("t", tls::MakeData(i, [&](int&) {
                 closes.fetch_add(1);
                 (void)tls::Get("t");
               }));
      tls::AtExit([&] {
        if (tls::Get("t")) handlers.fetch_add(1);
        tls::Set("from-handler", tls::MakeData(0, [&](int&) { closes.fetch_add(1); }));
      });
      g_slot.Emplace().closes = &slot_closes;
    });
  }
  for (std::thread& t : threads) t.join();
  c.Expect(handlers.load() == kThreads, "child threads' handlers: " + std::to_string(handlers));
  c.Expect(closes.load() == 2 * kThreads, "child threads' closes: " + std::to_string(closes));
  c.Expect(slot_closes.load() == kThreads, "child threads' slot closes");
  std::set<uint64_t> unique(ids.begin(), ids.end());
  c.Expect(unique.size() == kThreads, "child threads' IDs not unique");
  c.Expect(*unique.begin() > at.max_id, "a child thread got an ID the parent had handed out");
  c.Expect(!unique.count(at.forker_id), "a child thread got the forking thread's ID");
}

// What the forking thread adds to g_counter (HoldMine).
constexpr int64_t kMineAdds = 5;

std::string Describe(const std::vector<tls::ThreadReport>& listed) {
  std::string s = std::to_string(listed.size()) + " listed:";
  for (const tls::ThreadReport& t : listed) {
    s += " {id " + std::to_string(t.id) + (t.task ? " task" : "") +
         (pthread_equal(t.native, pthread_self()) ? " this thread" : " another thread") + ",";
    for (const std::string& k : t.keys) s += " " + k;
    s += "}";
  }
  return s;
}

// The registry in a child forked from a busy process: only the forking
// thread's stub is live (the others are abandoned with their threads), and
// walks and Counter reads work, although walks, folds and reads were in
// progress on other threads at the fork.
void CheckChildRegistry(const ForkPoint& at, ChildChecks& c) {
  const std::vector<tls::ThreadReport> listed = tls::ListThreads();
  c.Expect(listed.size() == 1 && listed[0].id == at.forker_id && !listed[0].task &&
               pthread_equal(listed[0].native, pthread_self()) &&
               listed[0].keys == std::vector<std::string>{"\"mine\""},
           "ListThreads in the child: " + Describe(listed));
  const tls::Stats stats = tls::GetStats();
  c.Expect(stats.threads == 1 && stats.tasks == 0 && stats.values == 1 && stats.handlers == 1,
           "GetStats in the child: threads " + std::to_string(stats.threads) + ", tasks " +
               std::to_string(stats.tasks) + ", values " + std::to_string(stats.values));
  int visited = 0;
  g_busy_slot.ForEachThread([&](const uint64_t&) { ++visited; });
  c.Expect(visited == 0, "a walk in the child visited another thread's value");
  // The Counter: what was folded before the fork, plus this thread's shard.
  c.Expect(g_counter.ReadLocal() == kMineAdds, "Counter::ReadLocal in the child");
  const int64_t read = g_counter.Read();
  c.Expect(read >= kMineAdds && g_counter.Read() == read, "Counter::Read in the child");
  g_counter.Add(1);
  c.Expect(g_counter.Read() == read + 1, "Counter::Add then Read in the child");
}

// Runs in the child, on the forking thread; ends the child.
[[noreturn]] void ChildMain(const ForkPoint& at, ChildEnd end) {
  ChildChecks c;
  // The forking thread's stub came along: its ID, its value, unclosed.
  c.Expect(tls::ID() == at.forker_id, "the forking thread's ID changed");
  auto mine = tls::Get("mine");
  c.Expect(mine && mine->Value<std::string>() == "mine" && !mine->closed(),
           "the forking thread's value was not kept");
  // The other threads' values live in their stubs, unreachable here.
  c.Expect(!tls::Get("busy-own") && !tls::Get("c"), "another thread's value is visible");
  CheckChildRegistry(at, c);
  // Every function works on the forking thread.
  tls::Set("c1", Loud("c1"));
  const tls::Data* c1 = tls::Find("c1");
  c.Expect(c1 != nullptr && c1->Value<std::string>() == "c1", "Set/Find");
  c.Expect(tls::Del("c1") && !tls::Get("c1"), "Del");
  tls::Set("c1", Loud("c1"));
  std::atomic<int> slot_closes{0};
  g_slot.Emplace().closes = &slot_closes;
  c.Expect(g_slot.Get() != nullptr, "Slot");
  if (kChildStartsThreads) CheckChildThreads(at, c);
  if (end == ChildEnd::kResetUnloadAndExit) {
    tls::Reset();  // closes "mine" and "c1" here, keeps the ID and handlers
    c.Expect(mine->closed() && !tls::Get("mine") && tls::ID() == at.forker_id, "Reset");
    c.Expect(slot_closes.load() == 1, "Reset closed the slot value");
    tls::Unload();  // drops the inherited "mine handler" without running it
    const uint64_t fresh = tls::ID();
    c.Expect(fresh > at.max_id && fresh != at.forker_id, "ID after Unload is not new");
  }
  tls::AtExit([] { Say("child handler"); });
  if (c.failures() == 0) Say("child checks passed");
  const int code = c.failures() == 0 ? 0 : 1;
  if (end == ChildEnd::kUnderscoreExit) _exit(code);
  std::exit(code);
}

// "" if the child of a fork ending with `end` said what it should.
std::string CheckChildOutput(const ChildResult& r, ChildEnd end) {
  if (!r.exited_ok()) return r.Describe();
  const std::vector<std::string> lines = Lines(r.out);
  std::string bad;
  switch (end) {
    case ChildEnd::kExit:
      // The child's handler (newest) first, then the inherited one, then the
      // inherited value is closed: the forking thread's full sequence.
      bad = InOrder(lines, {"child checks passed", "child handler", "mine handler", "mine closed"});
      if (bad.empty() && (Count(lines, "mine closed") != 1 || Count(lines, "c1 closed") != 1)) {
        bad = "each value must be closed once";
      }
      break;
    case ChildEnd::kUnderscoreExit:
      bad = InOrder(lines, {"child checks passed"});
      if (bad.empty() && lines.size() != 1) bad = "_exit ran something";
      break;
    case ChildEnd::kResetUnloadAndExit:
      bad = InOrder(lines, {"mine closed", "child checks passed", "child handler"});
      if (bad.empty() && (Count(lines, "mine closed") != 1 || Count(lines, "mine handler") != 0)) {
        bad = "Reset must close once, Unload must drop the inherited handler";
      }
      break;
  }
  return bad.empty() ? "" : bad + "; output:\n" + r.out;
}

// Forks `forks` times from the calling thread, which holds "mine" and a
// handler; returns the first failure ("" if none). Runs the checks itself
// (not gtest's macros) so that it can run on any thread.
std::string ForkRepeatedly(int forks, BusyLoad& load) {
  constexpr ChildEnd kEnds[] = {ChildEnd::kExit, ChildEnd::kUnderscoreExit,
                                ChildEnd::kResetUnloadAndExit};
  for (int i = 0; i < forks; ++i) {
    // Under TSan children only _exit: TSan checks nothing in a child of a
    // multi-threaded fork, and one such child hung inside exit() after the
    // engine's whole sequence had run (1 fork in a few hundred; TSan warns
    // that such children are on their own). Plain and ASan check exit().
    const ChildEnd end = kTsan ? ChildEnd::kUnderscoreExit : kEnds[i % 3];
    // Read before fork: IDs the parent hands out later may exceed it, but
    // then so does the counter the child inherits.
    const ForkPoint at{tls::ID(), g_max_id.load()};
    int fd = -1;
    if (kParkForFork) load.Park();
    const pid_t pid = ForkCapturingOutput(&fd);
    if (pid == 0) {
      EnterChild(false);
      ChildMain(at, end);
    }
    if (kParkForFork) load.Resume();
    if (pid < 0) return "fork failed";
    const std::string bad = CheckChildOutput(CollectChild(pid, fd, kChildTimeoutS), end);
    if (!bad.empty()) return "fork " + std::to_string(i) + ": " + bad;
  }
  return "";
}

// Makes the calling thread the forker: a value and a handler it keeps.
void HoldMine() {
  tls::Set("mine", Loud("mine"));
  tls::AtExit([] { Say("mine handler"); });
  g_counter.Add(kMineAdds);
}

long Forks() { return Scaled("TLS_FORK_COUNT", 120, 30, 24); }

TEST(Fork, FromTheMainThreadWhileOtherThreadsAreBusy) {
  TakeLog();
  BusyLoad load(3, 1, 1);
  HoldMine();
  const uint64_t id = tls::ID();
  EXPECT_EQ(ForkRepeatedly(Forks(), load), "");
  // The parent's forking thread: same ID, value neither closed nor dropped by
  // what the children did to their copies.
  EXPECT_EQ(tls::ID(), id);
  auto mine = tls::Get("mine");
  ASSERT_TRUE(mine.has_value());
  EXPECT_FALSE(mine->closed());
  ExpectParentUnaffectedAndWalked(load);
  tls::Reset();
  tls::Unload();  // the main thread's handler would otherwise run at process exit
  const std::vector<std::string> log = TakeLog();
  EXPECT_EQ(Count(log, "mine closed"), 1);
  EXPECT_EQ(Count(log, "mine handler"), 0);
}

TEST(Fork, FromANonMainThreadWhileOtherThreadsAreBusy) {
  TakeLog();
  BusyLoad load(3, 1, 1);
  std::string failure;
  std::thread forker([&] {
    HoldMine();
    PublishedId();
    failure = ForkRepeatedly(Forks() / 2, load);
  });
  forker.join();
  EXPECT_EQ(failure, "");
  ExpectParentUnaffectedAndWalked(load);
  // In the parent the forking thread ended normally: its sequence ran once.
  const std::vector<std::string> log = TakeLog();
  EXPECT_EQ(InOrder(log, {"mine handler", "mine closed"}), "");
  EXPECT_EQ(Count(log, "mine closed"), 1);
}

// ---------------------------------------------------------------------------
// The registry across a fork, deterministically: what the child lists,
// walks and counts, and that a walk in progress on another thread at the
// fork leaves nothing waiting in the child.

// A parent ready to fork (ForkFromScene): a thread that added 7 and ended
// (folded into the Counter's total); three parked threads, each with a key,
// a `walked` value of 10 and 100 added (live shards); the forking thread
// with "mine-d", a `walked` value of 1 and 5 added, inside an open task with
// "in-task" and 3 added. At the fork a walker thread is inside a visitor of
// `walked`, for the forking thread's value: its walk gates the forking
// thread's stub, and it holds `walked`'s lock (a Slot made with a retire
// function: a walk holds it, as Counter::Read holds the Counter's).
struct Scene {
  tls::Counter counter;
  std::atomic<int64_t> retired{0};
  tls::Slot<int64_t> walked{[this](int64_t& v) { retired.fetch_add(v); }};
  uint64_t thread_id = 0;  // the forking thread's ID
  uint64_t task_id = 0;    // its open task's
};

using SceneChild = std::function<void(Scene&, tls::TaskScope&, ChildChecks&)>;

// Forks from a Scene; the child runs `child` on the forking thread (inside
// its task) and ends with _exit. Checks that the parent is unaffected and
// returns what the child said.
ChildResult ForkFromScene(const SceneChild& child) {
  TakeLog();
  Scene scene;
  std::thread([&] { scene.counter.Add(7); }).join();
  std::latch parked(3), release(1);
  std::vector<std::thread> others;
  for (int i = 0; i < 3; ++i) {
    others.emplace_back([&, i] {
      tls::Set("other", tls::MakeData(i));
      scene.walked.Emplace(10);
      scene.counter.Add(100);
      parked.count_down();
      release.wait();
    });
  }
  parked.wait();
  tls::Set("mine-d", tls::MakeData(1));
  scene.walked.Emplace(1);
  scene.counter.Add(5);
  scene.thread_id = tls::ID();
  ChildResult r;
  {
    tls::TaskScope task(tls::Capture());
    tls::Set("in-task", tls::MakeData(2));
    scene.counter.Add(3);
    scene.task_id = tls::ID();
    std::latch in_visit(1), end_visit(1);
    std::thread walker([&] {
      scene.walked.ForEachThread([&](const tls::ThreadInfo& who, int64_t&) {
        if (who.id != scene.thread_id) return;
        in_visit.count_down();
        end_visit.wait();
      });
    });
    in_visit.wait();
    int fd = -1;
    const pid_t pid = ForkCapturingOutput(&fd);
    if (pid == 0) {
      EnterChild(false);
      ChildChecks c;
      child(scene, task, c);
      if (c.failures() == 0) Say("child checks passed");
      _exit(c.failures() == 0 ? 0 : 1);
    }
    end_visit.count_down();
    walker.join();
    if (pid < 0) {
      r.out = "fork failed";
      r.status = 1 << 8;
    } else {
      r = CollectChild(pid, fd, 30);
    }
  }  // the task ends here: its 3 are folded
  release.count_down();
  for (std::thread& t : others) t.join();
  // The parent lost nothing: every shard is folded or still live, every
  // ended thread's value retired.
  EXPECT_EQ(scene.counter.Read(), 7 + 300 + 5 + 3);
  EXPECT_EQ(scene.retired.load(), 30);
  tls::Reset();  // the forking thread's values (the test's main thread)
  EXPECT_EQ(scene.counter.Read(), 7 + 300 + 5 + 3);
  EXPECT_EQ(scene.retired.load(), 31);
  return r;
}

const tls::ThreadReport* Listed(const std::vector<tls::ThreadReport>& all, uint64_t id) {
  for (const tls::ThreadReport& t : all) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

// The child lists only the forking thread's stub and its open task's (the
// other threads' stubs are abandoned with their threads), with what they
// hold; a walk visits only the forking thread's value; once the task ends,
// only the thread is listed.
TEST(Fork, ChildListsOnlyTheForkingThreadAndItsOpenTask) {
  const ChildResult r = ForkFromScene([](Scene& s, tls::TaskScope& task, ChildChecks& c) {
    std::vector<tls::ThreadReport> listed = tls::ListThreads();
    const tls::ThreadReport* thread = Listed(listed, s.thread_id);
    const tls::ThreadReport* in_task = Listed(listed, s.task_id);
    c.Expect(listed.size() == 2 && thread != nullptr && in_task != nullptr,
             "ListThreads: " + Describe(listed));
    if (thread != nullptr && in_task != nullptr) {
      c.Expect(!thread->task && pthread_equal(thread->native, pthread_self()) &&
                   thread->keys == std::vector<std::string>{"\"mine-d\""} &&
                   thread->slot_values == 2,  // `walked` and a Counter shard
               "the forking thread's report");
      c.Expect(in_task->task && pthread_equal(in_task->native, pthread_self()) &&
                   in_task->keys == std::vector<std::string>{"\"in-task\""} &&
                   in_task->slot_values == 1,  // a Counter shard
               "its task's report");
    }
    const tls::Stats stats = tls::GetStats();
    c.Expect(stats.threads == 1 && stats.tasks == 1 && stats.values == 2 &&
                 stats.slot_values == 3 && stats.handlers == 0,
             "GetStats: threads " + std::to_string(stats.threads) + ", tasks " +
                 std::to_string(stats.tasks) + ", values " + std::to_string(stats.values) +
                 ", slot values " + std::to_string(stats.slot_values));
    std::vector<uint64_t> visited;
    s.walked.ForEachThread(
        [&](const tls::ThreadInfo& who, int64_t&) { visited.push_back(who.id); });
    c.Expect(visited == std::vector<uint64_t>{s.thread_id}, "a walk visited another thread");
    task.End();
    listed = tls::ListThreads();
    c.Expect(listed.size() == 1 && listed[0].id == s.thread_id,
             "after the task's end: " + Describe(listed));
    c.Expect(tls::GetStats().tasks == 0, "an ended task is still counted");
  });
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_EQ(Lines(r.out), std::vector<std::string>{"child checks passed"}) << r.out;
}

// A Counter in the child: what was folded before the fork (ended threads'
// shares) plus the forking thread's own shards (its thread's and its open
// task's) - the other threads' unfolded shards are lost with their threads,
// as their values are. From there it counts as anywhere: a task's end, a
// Reset and a new thread's end fold, adds add.
TEST(Fork, ChildCounterKeepsTheFoldedTotalAndTheForkingThreadsShardsOnly) {
  const ChildResult r = ForkFromScene([](Scene& s, tls::TaskScope& task, ChildChecks& c) {
    auto expect_read = [&](int64_t want, const std::string& when) {
      const int64_t got = s.counter.Read();
      c.Expect(got == want,
               when + ": Read " + std::to_string(got) + ", expected " + std::to_string(want));
    };
    expect_read(7 + 5 + 3, "at the fork");
    c.Expect(s.counter.ReadLocal() == 3, "the task's shard");
    task.End();
    expect_read(7 + 5 + 3, "after the task's end");
    c.Expect(s.counter.ReadLocal() == 5, "the thread's shard");
    tls::Reset();
    expect_read(7 + 5 + 3, "after Reset");
    c.Expect(s.counter.ReadLocal() == 0, "a shard after Reset");
    s.counter.Add(1);
    expect_read(16, "after an Add");
    if (kChildStartsThreads) {
      std::thread([&] { s.counter.Add(10); }).join();
      expect_read(26, "after a new thread's Add and end");
    }
  });
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_EQ(Lines(r.out), std::vector<std::string>{"child checks passed"}) << r.out;
}

// The walk in progress at the fork gated the forking thread's stub and held
// `walked`'s lock; in the child that walk's thread does not exist, and
// nothing waits for it: writes to the stub it gated (a new key, a Slot
// store), walks of the Slot and a retire (Reset) all go through.
TEST(Fork, AWalkInProgressAtTheForkLeavesNothingWaitingInTheChild) {
  const ChildResult r = ForkFromScene([](Scene& s, tls::TaskScope& task, ChildChecks& c) {
    task.End();  // back on the thread's own stub, the one the walk gated
    tls::Set("after-fork", tls::MakeData(3));
    s.walked.Emplace(2);  // drops 1 without retiring it
    int64_t sum = 0;
    s.walked.ForEachThread([&](int64_t& v) { sum += v; });
    c.Expect(sum == 2, "the child's walk");
    tls::Reset();  // retires 2, under `walked`'s lock
    c.Expect(s.retired.load() == 2, "retired in the child: " + std::to_string(s.retired.load()));
    c.Expect(tls::ListThreads().size() == 1, "ListThreads");
  });
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_EQ(Lines(r.out), std::vector<std::string>{"child checks passed"}) << r.out;
}

// TSan's runtime crashes (SEGV in libtsan, exit 66) when the only thread
// of a fork child, a non-main thread in the parent, returns; reproduced
// without tls. Under TSan such a child ends with _exit(0) from a pthread key
// destructor instead: glibc runs those after every thread_local destructor,
// so after the whole exit sequence, and the test sees the same lines.
void EndChildAfterThisThreadsExitUnderTsan() {
  if (!kTsan) return;
  static pthread_key_t key;
  if (pthread_key_create(&key, [](void*) { _exit(0); }) == 0) pthread_setspecific(key, &key);
}

// The lines a child thread's exit says (none where children start no
// threads, see kChildStartsThreads).
std::vector<std::string> ChildThreadLines() {
  if (!kChildStartsThreads) return {};
  return {"child thread handler", "child thread value closed"};
}

// In a child forked during thread exit: a new thread with a value and a
// handler, whose exit says ChildThreadLines().
void RunAChildThread() {
  if (!kChildStartsThreads) return;
  std::thread([] {
    tls::Set("t", Loud("child thread value"));
    tls::AtExit([] { Say("child thread handler"); });
  }).join();
}

std::vector<std::string> Concat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

// A child forked from inside an AtExit handler is on the same point of the
// same exit sequence: after the handler returns, the remaining handlers run,
// then values are closed, each once in each process; then the thread ends,
// and being the child's only thread, the child exits with 0.
TEST(Fork, InsideAnAtExitHandlerTheChildFinishesTheExitSequence) {
  TakeLog();
  // So the fork is from a busy multi-threaded process (without the busy
  // threads under ASan: kParkForFork; still two threads).
  BusyLoad load(kParkForFork ? 0 : 2, 0);
  pid_t pid = -1;
  int fd = -1;
  std::thread([&] {
    tls::Set("x", Loud("x"));
    tls::AtExit([] { Say("first handler"); });
    tls::AtExit([&] {
      pid = ForkCapturingOutput(&fd);
      if (pid != 0) return;
      EnterChild(false);
      EndChildAfterThisThreadsExitUnderTsan();
      Say("child: in handler");
      auto x = tls::Get("x");
      Say(x && !x->closed() ? "child: sees x" : "child: x gone");
      tls::Set("set-in-child", Loud("set-in-child"));    // closed in this exit
      tls::AtExit([] { Say("child: added handler"); });  // runs in the next round
      RunAChildThread();
      Say("child: handler returns");
    });
  }).join();
  ASSERT_GT(pid, 0);
  const ChildResult r = CollectChild(pid, fd, kChildTimeoutS);
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  const std::vector<std::string> lines = Lines(r.out);
  EXPECT_EQ(InOrder(lines, Concat({{"child: in handler", "child: sees x"},
                                   ChildThreadLines(),
                                   {"child: handler returns", "first handler",
                                    "child: added handler", "x closed"}})),
            "")
      << r.out;
  EXPECT_EQ(InOrder(lines, {"child: added handler", "set-in-child closed"}), "") << r.out;
  EXPECT_EQ(Count(lines, "x closed"), 1) << r.out;
  EXPECT_EQ(Count(lines, "set-in-child closed"), 1) << r.out;
  // The parent's thread finished its own sequence, untouched by the child's.
  const std::vector<std::string> log = TakeLog();
  EXPECT_EQ(InOrder(log, {"first handler", "x closed"}), "");
  EXPECT_EQ(Count(log, "x closed"), 1);
  EXPECT_EQ(Count(log, "child: in handler"), 0);
  ExpectParentUnaffected(load);
}

// Forked from inside a close during thread exit: the child is in the middle
// of the close round. The store looks empty to it (as to any close); the
// values of the round not yet closed are closed in the child once; what the
// child adds is handled by later rounds; then the child exits with 0.
TEST(Fork, InsideACloseDuringThreadExitTheChildFinishesTheExitSequence) {
  TakeLog();
  BusyLoad load(kParkForFork ? 0 : 2, 0);
  pid_t pid = -1;
  int fd = -1;
  std::thread([&] {
    tls::AtExit([] { Say("handler before closes"); });
    tls::Set("a", tls::MakeData(std::string("a"), [&](std::string&) {
               Say("a closing, forks");
               pid = ForkCapturingOutput(&fd);
               if (pid != 0) return;
               EnterChild(true);
               EndChildAfterThisThreadsExitUnderTsan();
               Say("child: in close");
               Say(tls::Get("b") || tls::Get("c") ? "child: store not empty"
                                                  : "child: store looks empty");
               tls::Set("set-in-child", Loud("set-in-child"));
               tls::AtExit([] { Say("child: added handler"); });
               RunAChildThread();
               Say("child: close returns");
             }));
    tls::Set("b", Loud("b"));
    tls::Set("c", Loud("c"));
  }).join();
  ASSERT_GT(pid, 0);
  const ChildResult r = CollectChild(pid, fd, kChildTimeoutS);
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  const std::vector<std::string> lines = Lines(r.out);
  EXPECT_EQ(
      InOrder(lines,
              Concat({{"inherited: handler before closes", "inherited: a closing, forks",
                       "child: in close", "child: store looks empty"},
                      ChildThreadLines(),
                      {"child: close returns", "child: added handler", "set-in-child closed"}})),
      "")
      << r.out;
  // b and c: closed before the fork (in the parent, inherited) or in the
  // child after it, once in all (the close order in a round is unspecified).
  for (const std::string v : {"b", "c"}) {
    EXPECT_EQ(Count(lines, "inherited: " + v + " closed") + Count(lines, v + " closed"), 1)
        << v << " in:\n"
        << r.out;
  }
  const std::vector<std::string> log = TakeLog();
  for (const std::string v : {"a closing, forks", "b closed", "c closed"}) {
    EXPECT_EQ(Count(log, v), 1) << v;
  }
  EXPECT_EQ(Count(log, "child: in close"), 0);
  ExpectParentUnaffected(load);
}

}  // namespace
}  // namespace tls_test
