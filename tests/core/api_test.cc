// The keyed API on one live thread: Set, Get, Find, Del, ID, Reset, Unload.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/internal/stub.h"
#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

bool HasStub() { return tls::internal::t_thread.stub != nullptr; }

TEST(Api, GetAndDelNeverCreateTheStub) {
  RunInThread([] {
    EXPECT_FALSE(tls::Get("k").has_value());
    EXPECT_EQ(tls::Find(1), nullptr);
    EXPECT_FALSE(tls::Del("k"));
    EXPECT_FALSE(HasStub());
  });
}

TEST(Api, SetIdAndAtExitCreateTheStub) {
  RunInThread([] {
    tls::Set("k", tls::MakeData(1));
    EXPECT_TRUE(HasStub());
  });
  RunInThread([] {
    tls::ID();
    EXPECT_TRUE(HasStub());
  });
  RunInThread([] {
    tls::AtExit([] {});
    EXPECT_TRUE(HasStub());
  });
}

TEST(Api, SetThenGetReturnsTheSameValue) {
  RunInThread([] {
    tls::Data d = tls::MakeData(std::string("v"));
    tls::Set("k", d);
    auto got = tls::Get("k");
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(*got == d);
    EXPECT_EQ(got->Value<std::string>(), "v");
    EXPECT_EQ(tls::Find("k")->Value<std::string>(), "v");
  });
}

TEST(Api, GetOfATypeGivesAPointerOrNullWhenMissingOrOfAnotherType) {
  RunInThread([] {
    EXPECT_EQ(tls::Get<int>("n"), nullptr);  // missing: null, and no stub made
    EXPECT_FALSE(HasStub());
    tls::Set("n", tls::MakeData(41));
    int* n = tls::Get<int>("n");
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n, tls::Find("n")->TryValue<int>());  // the stored value itself, not a copy
    ++*n;
    EXPECT_EQ(tls::Get("n")->Value<int>(), 42);
    EXPECT_EQ(tls::Get<std::string>("n"), nullptr);  // another type: null, no exception
    tls::Set(7, tls::Data());                        // an empty handle holds no type
    EXPECT_EQ(tls::Get<int>(7), nullptr);
  });
}

TEST(Api, ValuesArePerThread) {
  tls::Set("shared-name", tls::MakeData(1));
  RunInThread([] { EXPECT_FALSE(tls::Get("shared-name").has_value()); });
  EXPECT_EQ(tls::Get("shared-name")->Value<int>(), 1);
  tls::Del("shared-name");
}

TEST(Api, SetOverExistingKeyDoesNotClose) {
  Log log;
  RunInThread([&] {
    tls::Set("k", tls::MakeData(Closer{&log, "old"}));
    tls::Set("k", tls::MakeData(Closer{&log, "new"}));
    EXPECT_TRUE(log.events().empty());
  });
  EXPECT_EQ(log.events(), std::vector<std::string>{"close new"});
}

TEST(Api, DelDoesNotClose) {
  Log log;
  RunInThread([&] {
    tls::Set("k", tls::MakeData(Closer{&log, "v"}));
    EXPECT_TRUE(tls::Del("k"));
    EXPECT_FALSE(tls::Del("k"));
    EXPECT_FALSE(tls::Get("k").has_value());
  });
  EXPECT_TRUE(log.events().empty());
}

TEST(Api, IdIsStableUntilUnload) {
  RunInThread([] {
    uint64_t id = tls::ID();
    EXPECT_GT(id, 0u);
    tls::Set("k", tls::MakeData(1));
    tls::Reset();
    EXPECT_EQ(tls::ID(), id);
    tls::Unload();
    EXPECT_NE(tls::ID(), id);
  });
}

TEST(Api, IdsAreIncreasingAndNeverReused) {
  std::set<uint64_t> seen;
  uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    uint64_t id = 0;
    RunInThread([&] { id = tls::ID(); });  // each thread ends before the next starts
    EXPECT_GT(id, last);
    EXPECT_TRUE(seen.insert(id).second);
    last = id;
  }
}

TEST(Api, MainThreadHasARealId) {
  EXPECT_GT(tls::ID(), 0u);  // go-tls returns 0 on the main goroutine
}

TEST(Api, ResetClosesEveryValueOnceAndKeepsIdAndHandlers) {
  Log log;
  uint64_t id_before = 0, id_after = 0;
  RunInThread([&] {
    id_before = tls::ID();
    tls::AtExit([&] { log.Add("handler"); });
    tls::Data shared = tls::MakeData(Closer{&log, "shared"});
    tls::Set("a", shared);
    tls::Set("b", shared);  // one value under two keys: closed once
    tls::Set(3, tls::MakeData(Closer{&log, "three"}));
    tls::Reset();
    EXPECT_FALSE(tls::Get("a").has_value());
    EXPECT_FALSE(tls::Get(3).has_value());
    EXPECT_TRUE(shared.closed());
    log.Add("after reset");
    id_after = tls::ID();
  });
  EXPECT_EQ(id_before, id_after);
  auto events = log.events();
  ASSERT_EQ(events.size(), 4u);
  std::multiset<std::string> closes(events.begin(), events.begin() + 2);
  EXPECT_EQ(closes, (std::multiset<std::string>{"close shared", "close three"}));
  EXPECT_EQ(events[2], "after reset");
  EXPECT_EQ(events[3], "handler");  // kept, runs at exit
}

TEST(Api, ResetThenSetKeepsNewValue) {
  RunInThread([] {
    tls::Set("k", tls::MakeData(1));
    tls::Reset();
    tls::Set("k", tls::MakeData(2));
    EXPECT_EQ(tls::Get("k")->Value<int>(), 2);
  });
}

TEST(Api, UnloadDropsValuesAndHandlersWithoutClosingOrRunning) {
  Log log;
  RunInThread([&] {
    tls::Set("k", tls::MakeData(Closer{&log, "v"}));
    tls::AtExit([&] { log.Add("handler"); });
    tls::Unload();
    EXPECT_FALSE(tls::Get("k").has_value());
    EXPECT_FALSE(HasStub());
  });
  EXPECT_TRUE(log.events().empty());
}

TEST(Api, UnloadThenUseMakesAFreshStub) {
  Log log;
  RunInThread([&] {
    uint64_t first = tls::ID();
    tls::AtExit([&] { log.Add("dropped"); });
    tls::Unload();
    tls::AtExit([&] { log.Add("kept"); });
    EXPECT_GT(tls::ID(), first);
  });
  EXPECT_EQ(log.events(), std::vector<std::string>{"kept"});
}

TEST(Api, EmptyAtExitFunctionThrows) {
  EXPECT_THROW(tls::AtExit(std::function<void()>()), std::invalid_argument);
  void (*none)() = nullptr;
  EXPECT_THROW(tls::AtExit(none), std::invalid_argument);
}

int g_plain_function_runs = 0;
void PlainFunction() { ++g_plain_function_runs; }

TEST(Api, AtExitTakesAnyCallableMoveOnlyAndLargeOnesToo) {
  g_plain_function_runs = 0;
  std::vector<std::string> ran;
  RunInThread([&ran] {
    auto owned = std::make_unique<std::string>("move-only");
    tls::AtExit([owned = std::move(owned), &ran] { ran.push_back(*owned); });
    std::array<char, 256> big{};
    big[0] = 'L';
    tls::AtExit([big, &ran] { ran.push_back(std::string("large ") + big[0]); });  // on the heap
    std::function<void()> f = [&ran] { ran.push_back("std::function"); };
    tls::AtExit(f);
    tls::AtExit(&PlainFunction);
    tls::AtExit(PlainFunction);
    EXPECT_TRUE(ran.empty());
  });
  // Newest first; each once.
  EXPECT_EQ(ran, (std::vector<std::string>{"std::function", "large L", "move-only"}));
  EXPECT_EQ(g_plain_function_runs, 2);
}

TEST(Api, ReplacedValueIsDestroyedWhenLastHandleGoes) {
  struct Tracked {
    bool* destroyed;
    ~Tracked() {
      if (destroyed) *destroyed = true;
    }
    Tracked(bool* d) : destroyed(d) {}
    Tracked(Tracked&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
  };
  bool destroyed = false;
  RunInThread([&] {
    tls::Set("k", tls::MakeData(Tracked(&destroyed)));
    tls::Data keep = *tls::Get("k");
    tls::Set("k", tls::MakeData(1));
    EXPECT_FALSE(destroyed);  // `keep` still holds it
    keep = tls::Data();
    EXPECT_TRUE(destroyed);
  });
}

TEST(Api, DestructorOfReplacedValueMayCallTls) {
  struct SetsOnDestroy {
    bool armed = true;
    SetsOnDestroy() = default;
    SetsOnDestroy(SetsOnDestroy&& o) noexcept : armed(std::exchange(o.armed, false)) {}
    ~SetsOnDestroy() {
      if (armed) {
        for (int i = 0; i < 100; ++i) tls::Set(1000 + i, tls::MakeData(i));  // forces growth
      }
    }
  };
  RunInThread([] {
    tls::Set("k", tls::MakeData(SetsOnDestroy()));
    tls::Set("k", tls::MakeData(0));  // old value's destructor grows the table
    EXPECT_EQ(tls::Get(1099)->Value<int>(), 99);
    EXPECT_EQ(tls::Get("k")->Value<int>(), 0);
    tls::Del("k");
  });
}

}  // namespace
}  // namespace tls_test
