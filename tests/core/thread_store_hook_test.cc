// embedder::SetThreadStoreHook: the hook a runtime (the Python binding) sets
// to learn that a thread's store is about to be made, whoever stores first.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "tests/core/test_util.h"
#include "tls/embedder.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

std::atomic<int> g_runs{0};
std::atomic<bool> g_hook_stores{false};

void CountingHook() noexcept {
  g_runs.fetch_add(1);
  if (g_hook_stores.load()) tls::Set("from hook", tls::MakeData(1));
}

class ThreadStoreHook : public ::testing::Test {
 protected:
  void SetUp() override {
    g_runs = 0;
    g_hook_stores = false;
    tls::embedder::SetThreadStoreHook(&CountingHook);
  }
  void TearDown() override { tls::embedder::SetThreadStoreHook(nullptr); }
};

TEST_F(ThreadStoreHook, RunsOnceBeforeAThreadsFirstStoreWhateverTheCall) {
  RunInThread([] {
    tls::Set("k", tls::MakeData(1));
    tls::Set("j", tls::MakeData(2));
    tls::ID();
  });
  EXPECT_EQ(g_runs, 1);
  RunInThread([] { tls::ID(); });
  RunInThread([] { tls::AtExit([] {}); });
  EXPECT_EQ(g_runs, 3);
}

TEST_F(ThreadStoreHook, ReadsNeverRunIt) {
  RunInThread([] {
    EXPECT_EQ(tls::Find("k"), nullptr);
    EXPECT_FALSE(tls::Del("k"));
  });
  EXPECT_EQ(g_runs, 0);
}

TEST_F(ThreadStoreHook, MayStoreAndThatStoreIsTheOneTheCallUses) {
  g_hook_stores = true;
  RunInThread([] {
    const uint64_t id = tls::ID();  // the hook made the store, with its value
    EXPECT_NE(tls::Find("from hook"), nullptr);
    tls::Set("k", tls::MakeData(2));
    EXPECT_EQ(tls::ID(), id);
    EXPECT_NE(tls::Find("from hook"), nullptr);
  });
  EXPECT_EQ(g_runs, 1);  // not again for the store the hook's code made
}

TEST_F(ThreadStoreHook, RunsAgainForTheStoreAfterUnload) {
  RunInThread([] {
    tls::Set("k", tls::MakeData(1));
    tls::Unload();
    tls::Set("k", tls::MakeData(1));
  });
  EXPECT_EQ(g_runs, 2);
}

TEST_F(ThreadStoreHook, NotForATasksStoreNorOnAnEndingThread) {
  Log log;
  RunInThread([&] {
    {
      tls::TaskScope task;
      tls::Set("in task", tls::MakeData(1));
    }
    EXPECT_EQ(g_runs, 0);
    tls::Set("k", tls::MakeData(Closer{&log, "k"}));
    EXPECT_EQ(g_runs, 1);
    // At the thread's end a handler stores again: the ending thread's store.
    tls::AtExit([] { tls::Set("late", tls::MakeData(1)); });
  });
  EXPECT_EQ(g_runs, 1);
  EXPECT_EQ(log.events(), (Events{"close k"}));
}

TEST_F(ThreadStoreHook, NullRemovesIt) {
  tls::embedder::SetThreadStoreHook(nullptr);
  RunInThread([] { tls::ID(); });
  EXPECT_EQ(g_runs, 0);
}

}  // namespace
}  // namespace tls_test
