// A Slot's lifetime (core/slot.h, internal/slots.cc ReleaseSlot): a Slot is an
// object like any other. Destroying it releases every thread's value at once,
// on the destroying thread; its index goes to the next Slot, which never sees
// an old value; threads holding values keep working meanwhile.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/internal/stub.h"
#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kCycles = 20'000;  // sanitizers: each cycle is a walk of every thread
#else
constexpr int kCycles = 1'000'000;
#endif
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;  // ASan keeps freed memory in quarantine
#else
constexpr bool kRssIsMeaningful = true;
#endif

// A value that records which thread closed it and counts its destruction.
struct Tracked {
  struct Counts {
    std::atomic<int> closes{0};
    std::atomic<int> closes_elsewhere{0};  // closed on another thread than `owner`
    std::atomic<int> destroyed{0};
  };
  Counts* counts;
  std::thread::id owner;
  bool closed = false;
  Tracked(Counts* c, std::thread::id o) : counts(c), owner(o) {}
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  void Close() {
    EXPECT_FALSE(closed) << "closed twice";
    closed = true;
    counts->closes.fetch_add(1);
    if (std::this_thread::get_id() != owner) counts->closes_elsewhere.fetch_add(1);
  }
  ~Tracked() { counts->destroyed.fetch_add(1); }
};

TEST(SlotLifetime, DestroyingASlotClosesEveryThreadsValueOnTheDestroyingThread) {
  Tracked::Counts counts;
  auto slot = std::make_unique<tls::Slot<Tracked>>();
  ParkedThreads threads(8, [&](int) { slot->Emplace(&counts, std::this_thread::get_id()); });
  slot->Emplace(&counts, std::this_thread::get_id());
  slot.reset();  // the 8 threads are alive, parked, holding their values
  EXPECT_EQ(counts.closes.load(), 9);
  EXPECT_EQ(counts.closes_elsewhere.load(), 8) << "all closed here, on the destroying thread";
  EXPECT_EQ(counts.destroyed.load(), 9) << "released at once, not at the threads' ends";
  threads.Release();
  EXPECT_EQ(counts.closes.load(), 9) << "nothing is closed again at thread end";
  EXPECT_EQ(counts.destroyed.load(), 9);
}

TEST(SlotLifetime, ANewSlotTakesTheFreedIndexAndNeverSeesAnOldValue) {
  auto old_slot = std::make_unique<tls::Slot<int>>();
  const size_t index = old_slot->index();
  std::unique_ptr<tls::Slot<int>> new_slot;
  std::mutex mu;
  std::condition_variable cv;
  int step = 0;
  std::optional<int*> seen;
  std::thread holder([&] {
    old_slot->Emplace(41);
    std::unique_lock<std::mutex> lock(mu);
    step = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return step == 2; });
    seen = new_slot->Get();  // the same index, a new Slot: nothing there
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return step == 1; });
    old_slot.reset();
    new_slot = std::make_unique<tls::Slot<int>>();
    step = 2;
    cv.notify_all();
  }
  holder.join();
  EXPECT_EQ(new_slot->index(), index) << "the freed index is the next one handed out";
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(*seen, nullptr);
}

TEST(SlotLifetime, ASlotNeverStoredIntoDestroysWithoutAWalkAndFreesItsIndex) {
  size_t index;
  { index = tls::Slot<int>().index(); }
  EXPECT_EQ(tls::Slot<int>().index(), index);
}

TEST(SlotLifetime, RetireGetsEveryThreadsValueOnceAtTheSlotsDestruction) {
  std::atomic<int> retired{0};
  std::atomic<int> sum{0};
  auto slot = std::make_unique<tls::Slot<int>>([&](int& v) {
    retired.fetch_add(1);
    sum.fetch_add(v);
  });
  ParkedThreads threads(6, [&](int i) { slot->Emplace(i + 1); });
  slot.reset();
  EXPECT_EQ(retired.load(), 6);
  EXPECT_EQ(sum.load(), 1 + 2 + 3 + 4 + 5 + 6);
  threads.Release();
  EXPECT_EQ(retired.load(), 6) << "no retire again at thread end";
}

TEST(SlotLifetime, ACounterCanBeAMemberMadeAndDestroyedAgainAndAgain) {
  struct Connection {
    tls::Counter bytes;
  };
  for (int round = 0; round < 100; ++round) {
    auto conn = std::make_unique<Connection>();
    ParkedThreads threads(4, [&](int i) { conn->bytes.Add(i + 1); });
    EXPECT_EQ(conn->bytes.Read(), 10);
    conn.reset();  // the 4 threads still hold their shards
    auto next = std::make_unique<Connection>();
    EXPECT_EQ(next->bytes.Read(), 0) << "round " << round << ": an old shard was seen";
  }
}

// Threads keep using their own Slots, Reset, end, and start while other
// threads destroy Slots they hold values of: every value is closed exactly
// once and destroyed exactly once (ASan and TSan check the rest).
TEST(SlotLifetime, ThreadsHoldingValuesKeepWorkingWhileTheirSlotsAreDestroyed) {
  Tracked::Counts counts;
  constexpr int kWorkers = 8;
  constexpr int kRounds = 200;
  std::atomic<bool> stop{false};
  tls::Slot<int> own;  // each worker's own, used throughout
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int n = 0; !stop.load(); ++n) {
        own.Emplace(n);
        EXPECT_EQ(*own.Get(), n);
        if (n % 64 == 0) tls::Reset();
        if (n % 1024 == w) std::thread([&] { own.Emplace(1); }).join();
      }
    });
  }
  for (int round = 0; round < kRounds; ++round) {
    auto slot = std::make_unique<tls::Slot<Tracked>>();
    // Values on threads that end or reset while the slot is destroyed.
    std::vector<std::thread> holders;
    for (int h = 0; h < 4; ++h) {
      holders.emplace_back([&, h] {
        slot->Emplace(&counts, std::this_thread::get_id());
        if (h % 2 == 0) tls::Reset();  // some close their own first
      });
    }
    // The slot is not used by a holder once it is destroyed: join first.
    for (std::thread& t : holders) t.join();
    slot.reset();
  }
  stop.store(true);
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(counts.closes.load(), 4 * kRounds);
  EXPECT_EQ(counts.destroyed.load(), 4 * kRounds);
}

// The same, with the holders alive and mid-Reset while the slot is destroyed.
TEST(SlotLifetime, DestructionRacingEachHoldersResetClosesEachValueOnce) {
  Tracked::Counts counts;
  constexpr int kHolders = 6;
  constexpr int kRounds = 300;
  for (int round = 0; round < kRounds; ++round) {
    auto slot = std::make_unique<tls::Slot<Tracked>>([](Tracked&) {});  // with a retire
    std::barrier sync(kHolders + 1);
    std::vector<std::thread> holders;
    for (int h = 0; h < kHolders; ++h) {
      holders.emplace_back([&] {
        slot->Emplace(&counts, std::this_thread::get_id());
        sync.arrive_and_wait();
        tls::Reset();  // races with the destruction below: one of them closes it
      });
    }
    sync.arrive_and_wait();
    slot.reset();
    for (std::thread& t : holders) t.join();
  }
  EXPECT_EQ(counts.closes.load(), kHolders * kRounds);
  EXPECT_EQ(counts.destroyed.load(), kHolders * kRounds);
}

size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

size_t SlotCellsOfThisThread() {
  const tls::internal::Stub* stub = tls::internal::t_thread.stub;
  return stub == nullptr ? 0 : stub->slots.size();
}

// kCycles Slots made and destroyed, 64 alive at a time, 16 threads holding a
// value of each: indexes stay below 64, so no thread's slot array grows, and
// the process's memory stays flat.
TEST(SlotLifetime, CreateDestroyCyclesKeepSlotArraysAndMemoryFlat) {
  constexpr int kThreads = 16;
  constexpr int kBatch = 64;
  std::vector<std::unique_ptr<tls::Slot<int>>> batch(kBatch);
  std::barrier sync(kThreads + 1);
  std::atomic<size_t> largest_array{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        sync.arrive_and_wait();  // a new batch is made
        if (done.load()) break;
        for (auto& slot : batch) slot->Emplace(1);
        size_t cells = SlotCellsOfThisThread();
        size_t seen = largest_array.load();
        while (cells > seen && !largest_array.compare_exchange_weak(seen, cells)) {
        }
        sync.arrive_and_wait();  // the batch is destroyed while we hold values
      }
    });
  }
  size_t rss_after_warmup = 0;
  size_t largest_index = 0;
  const int batches = kCycles / kBatch;
  for (int b = 0; b < batches; ++b) {
    for (auto& slot : batch) {
      slot = std::make_unique<tls::Slot<int>>();
      largest_index = std::max(largest_index, slot->index());
    }
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    for (auto& slot : batch) slot.reset();  // releases 16 values each
    if (b == batches / 10) rss_after_warmup = ResidentBytes();
  }
  done.store(true);
  sync.arrive_and_wait();
  for (std::thread& t : threads) t.join();
  const size_t rss_at_end = ResidentBytes();
  EXPECT_LT(largest_index, 2 * kBatch) << "indexes are reused";
  EXPECT_LE(largest_array.load(), 2 * kBatch) << "per-thread arrays stay as long as one batch";
  // Never reused indexes would have grown every thread's array to kCycles
  // cells (16 bytes each: 16 MB per thread at a million).
  if (kRssIsMeaningful) {
    EXPECT_LT(rss_at_end, rss_after_warmup + (8u << 20))
        << "RSS grew from " << rss_after_warmup << " to " << rss_at_end;
  }
}

// At process exit a global Slot's destructor runs while detached threads may
// still use it: it releases nothing then. A child process makes a Slot on its
// main thread (as a global's constructor would), gives a detached thread a
// value that reports its destruction through a pipe, and exits: the main
// thread's own value is closed by its exit, the detached thread's is never
// destroyed under it.
TEST(SlotLifetime, AtProcessExitADestroyedSlotLeavesOtherThreadsValuesAlone) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    close(fds[0]);
    static int out = fds[1];
    struct Reporting {
      char tag;
      void Close() const { (void)!write(out, &tag, 1); }
    };
    // Destroyed with the child's statics, after exit() ran the main thread's
    // thread_local destructors.
    static tls::Slot<Reporting> global_like;
    global_like.Emplace(Reporting{'M'});
    std::atomic<bool> started{false};
    std::thread([&] {
      global_like.Emplace(Reporting{'D'});
      started.store(true);
      for (;;) {
        if (global_like.Get() == nullptr) (void)!write(out, "!", 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }).detach();
    while (!started.load()) std::this_thread::yield();
    std::exit(0);
  }
  close(fds[1]);
  std::string got;
  char c;
  while (read(fds[0], &c, 1) == 1) got += c;
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(got, "M") << "only the main thread's value is closed, by its own exit";
}

}  // namespace
}  // namespace tls_test
