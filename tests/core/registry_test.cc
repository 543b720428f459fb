// The registry's table (core/internal/registry.h): every stub has a place in
// it for good, and a thread that starts after others ended takes an ended
// thread's place (its shell) before the table grows. So the table, and the
// part of it a walk reads, follows the process's peak thread count, not the
// number of threads it ever ran. White-box: reads Stub::registry_index.
#include "core/internal/registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "core/internal/stub.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

using tls::internal::t_thread;

// Runs `n` threads at once, each holding `keys` keyed values and a value in
// `slot`, and returns the largest registry index among their stubs. While all
// are alive, checks that a walk of `slot` visits each of them exactly once.
size_t RunWave(int n, int keys, tls::Slot<int>& slot) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<size_t> top{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < keys; ++k) tls::Set("key" + std::to_string(k), tls::MakeData(k));
      slot.Emplace(1);
      size_t mine = t_thread.stub->registry_index;
      for (size_t seen = top.load(); seen < mine && !top.compare_exchange_weak(seen, mine);) {
      }
      ready.fetch_add(1);
      ready.notify_all();
      go.wait(false);
    });
  }
  for (int r; (r = ready.load()) < n;) ready.wait(r);
  int visited = 0;
  slot.ForEachThread([&](int& v) { visited += v; });
  EXPECT_EQ(visited, n) << "a walk visits every live thread's value once";
  go.store(true);
  go.notify_all();
  for (std::thread& t : threads) t.join();
  return top.load();
}

// A walk marks a batch of table places at once (kWalkBatch), so owners in it
// wait until the walk has read the batch. Two walks whose visitors write their
// own threads' Slot values, each while reading a batch that holds the other
// walker, would wait for each other for ever; before waiting, a walker's own
// write narrows its walks to the stub each is visiting. First in the file, so
// that the three threads take neighbouring places.
TEST(Registry, TwoWalksInOneBatchWhoseVisitorsWriteTheirOwnSlotValuesDoNotWaitForEachOther) {
  tls::Slot<int> walked, written;
  std::latch have_stubs(3), both_in_visitor(2), release_holder(1);
  std::atomic<int> done{0};
  size_t places[3] = {0, 0, 0};
  std::thread holder([&] {
    walked.Emplace(1);  // the only value both walks visit
    places[2] = t_thread.stub->registry_index;
    have_stubs.count_down();
    release_holder.wait();
  });
  auto walker = [&](int n) {
    (void)tls::ID();  // a stub
    places[n] = t_thread.stub->registry_index;
    have_stubs.arrive_and_wait();
    if (places[0] / tls::internal::kWalkBatch != places[2] / tls::internal::kWalkBatch ||
        places[1] / tls::internal::kWalkBatch != places[2] / tls::internal::kWalkBatch) {
      done.fetch_add(1);
      return;  // the scenario needs one batch (checked below)
    }
    walked.ForEachThread([&](int&) {
      both_in_visitor.arrive_and_wait();  // each walk now marks the other's place
      written.Emplace(n);                 // a Slot write on its own stub
    });
    done.fetch_add(1);
  };
  std::thread a(walker, 0), b(walker, 1);
  for (int i = 0; i < 1000 && done.load() < 2; ++i) usleep(10'000);
  if (done.load() < 2) {
    std::fprintf(stderr, "DEADLOCK: two walks in one batch whose visitors write their own Slots\n");
    _exit(1);
  }
  a.join();
  b.join();
  release_holder.count_down();
  holder.join();
  if (places[0] / tls::internal::kWalkBatch != places[2] / tls::internal::kWalkBatch ||
      places[1] / tls::internal::kWalkBatch != places[2] / tls::internal::kWalkBatch) {
    GTEST_SKIP() << "the three threads did not share a batch; run this test first";
  }
}

TEST(Registry, ThreadsStartingAfterOthersEndedReuseTheirPlacesBeforeTheTableGrows) {
  tls::Slot<int> slot;
  // 16 keys: a table too big for the stub cache, so ended stubs become shells.
  const size_t first = RunWave(200, 16, slot);
  for (int wave = 0; wave < 5; ++wave) {
    const size_t later = RunWave(200, wave % 2 == 0 ? 1 : 16, slot);
    EXPECT_LE(later, first) << "wave " << wave << " grew the table past the first wave's peak";
  }
  // And a walk after them all visits no ended thread.
  int visited = 0;
  slot.ForEachThread([&](int& v) { visited += v; });
  EXPECT_EQ(visited, 0);
}

}  // namespace
}  // namespace tls_test
