// fork: a multi-threaded process forks while its other threads are busy in
// the engine (every function; closers and handlers that call tls; threads
// starting and ending, so exit sequences are in flight). Each child checks
// itself and reports on a pipe: it keeps only the forking thread's stub (its
// values, handlers and ID), can use every function and start threads (new
// unique IDs, their handlers and closes run), and ends before a deadline. The
// parent's threads check all along that their own state is untouched.
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
#include <initializer_list>
#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/reliability/test_util.h"
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

// ---------------------------------------------------------------------------
// The parent's load: threads inside every engine function until stopped.

class BusyLoad {
 public:
  BusyLoad(int busy_threads, int churn_threads)
      : churn_threads_(churn_threads), started_(busy_threads + churn_threads) {
    for (int i = 0; i < busy_threads; ++i) threads_.emplace_back([this, i] { Busy(i); });
    for (int i = 0; i < churn_threads; ++i) threads_.emplace_back([this] { Churn(); });
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
}

long Forks() { return Scaled("TLS_FORK_COUNT", 120, 30, 24); }

TEST(Fork, FromTheMainThreadWhileOtherThreadsAreBusy) {
  TakeLog();
  BusyLoad load(3, 1);
  HoldMine();
  const uint64_t id = tls::ID();
  EXPECT_EQ(ForkRepeatedly(Forks(), load), "");
  // The parent's forking thread: same ID, value neither closed nor dropped by
  // what the children did to their copies.
  EXPECT_EQ(tls::ID(), id);
  auto mine = tls::Get("mine");
  ASSERT_TRUE(mine.has_value());
  EXPECT_FALSE(mine->closed());
  ExpectParentUnaffected(load);
  tls::Reset();
  tls::Unload();  // the main thread's handler would otherwise run at process exit
  const std::vector<std::string> log = TakeLog();
  EXPECT_EQ(Count(log, "mine closed"), 1);
  EXPECT_EQ(Count(log, "mine handler"), 0);
}

TEST(Fork, FromANonMainThreadWhileOtherThreadsAreBusy) {
  TakeLog();
  BusyLoad load(3, 1);
  std::string failure;
  std::thread forker([&] {
    HoldMine();
    PublishedId();
    failure = ForkRepeatedly(Forks() / 2, load);
  });
  forker.join();
  EXPECT_EQ(failure, "");
  ExpectParentUnaffected(load);
  // In the parent the forking thread ended normally: its sequence ran once.
  const std::vector<std::string> log = TakeLog();
  EXPECT_EQ(InOrder(log, {"mine handler", "mine closed"}), "");
  EXPECT_EQ(Count(log, "mine closed"), 1);
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
