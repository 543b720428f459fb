// tls::ListThreads and tls::GetStats (core/threads.h): what every live thread
// and open task holds, keys and counts only, read from any thread.
#include <gtest/gtest.h>
#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

const tls::ThreadReport* FindReport(const std::vector<tls::ThreadReport>& all, uint64_t id) {
  for (const tls::ThreadReport& r : all) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

TEST(Threads, ListsEachThreadsKeysAndCountsNotValues) {
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
TEST(Threads, BytesGrowWithWhatTheThreadHolds) {
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

TEST(Threads, EndedThreadsAreGoneAndTasksAreMarked) {
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

TEST(Threads, TotalsMatchTheListing) {
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
}  // namespace tls_test
