// tls::Counter (core/counter.h): Read sums every live thread's shard and
// what ended threads and tasks left, each Add once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

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

}  // namespace
}  // namespace tls_test
