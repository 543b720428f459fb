// The stub cache (core/internal/stub_cache.h): a stub that ends empty is
// handed to the next thread that needs one. Reuse must be invisible: the new
// thread sees no value, handler or ID of the old one. White-box: compares the
// stub's address through core/internal/stub.h to prove reuse really happens.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/internal/stub.h"
#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

using tls::internal::t_thread;

TEST(StubCache, ReusedStubIsEmptyAndGetsANewId) {
  Log log;
  const void* first_stub = nullptr;
  uint64_t first_id = 0;
  RunInThread([&] {
    tls::Set("a", tls::MakeData(Closer{&log, "a"}));
    tls::Set(7, tls::MakeData(Closer{&log, "seven"}));
    tls::AtExit([&] { log.Add("first handler"); });
    first_stub = t_thread.stub;
    first_id = tls::ID();
  });
  ASSERT_EQ(log.events().size(), 3u);  // handler, then both closes

  bool reused = false;
  RunInThread([&] {
    // Get and Del never create a stub, so none of these can see old state.
    EXPECT_FALSE(tls::Get("a").has_value());
    EXPECT_FALSE(tls::Del(7));
    EXPECT_GT(tls::ID(), first_id);
    reused = t_thread.stub == first_stub;
    EXPECT_FALSE(tls::Get("a").has_value());
    EXPECT_FALSE(tls::Get(7).has_value());
    tls::Set("b", tls::MakeData(Closer{&log, "b"}));
  });
  // Only this thread's own value closed; the old handler did not run again.
  ASSERT_EQ(log.events().size(), 4u);
  EXPECT_EQ(log.events()[0], "first handler");
  EXPECT_EQ(log.events()[3], "close b");
  // With no other thread in between, the ended stub is the one reused.
  EXPECT_TRUE(reused) << "the ended thread's stub was not reused";
}

TEST(StubCache, StubOfAThreadThatUnloadedIsReusedSafely) {
  RunInThread([] {
    tls::Set("x", tls::MakeData(1));
    tls::Unload();  // the emptied stub may go to the cache right here
    EXPECT_FALSE(tls::Get("x").has_value());
    tls::Set("y", tls::MakeData(2));  // ...and come straight back
    EXPECT_EQ(tls::Get("y")->Value<int>(), 2);
    EXPECT_FALSE(tls::Get("x").has_value());
  });
}

TEST(StubCache, ManyThreadsEndingAtOnceNeverShareAStub) {
  // 64 threads hold their stubs at the same time, through several waves of
  // reuse: no two live threads may ever have the same stub.
  constexpr int kThreads = 64;
  for (int wave = 0; wave < 5; ++wave) {
    std::atomic<int> arrived{0};
    std::vector<const void*> stubs(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        tls::Set("i", tls::MakeData(i));
        stubs[i] = t_thread.stub;
        arrived.fetch_add(1);
        while (arrived.load() < kThreads) std::this_thread::yield();
        EXPECT_EQ(tls::Get("i")->Value<int>(), i);
      });
    }
    for (auto& t : threads) t.join();
    std::sort(stubs.begin(), stubs.end());
    EXPECT_EQ(std::adjacent_find(stubs.begin(), stubs.end()), stubs.end()) << "wave " << wave;
  }
}

}  // namespace
}  // namespace tls_test
