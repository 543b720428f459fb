// tls::Data and MakeData: type-checked values and close-once.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tls/tls.h"

namespace {

struct UpperClose {
  int* count;
  void Close() { ++*count; }
};
struct LowerClose {
  int* count;
  void close() { ++*count; }
};
struct NoClose {
  int x;
};

TEST(Data, MakeDataClosesWithClose) {
  int n = 0;
  tls::Data d = tls::MakeData(UpperClose{&n});
  EXPECT_TRUE(d.Close());
  EXPECT_EQ(n, 1);
}

TEST(Data, MakeDataClosesWithLowercaseClose) {
  int n = 0;
  tls::Data d = tls::MakeData(LowerClose{&n});
  d.Close();
  EXPECT_EQ(n, 1);
}

TEST(Data, MakeDataClosesThroughPointers) {
  int n = 0;
  auto shared = std::make_shared<UpperClose>(UpperClose{&n});
  tls::Data d = tls::MakeData(shared);
  d.Close();
  EXPECT_EQ(n, 1);
  tls::Data null_ptr = tls::MakeData(std::shared_ptr<UpperClose>());
  EXPECT_TRUE(null_ptr.Close());  // a null pointer is skipped, not dereferenced
}

TEST(Data, CloseRunsExactlyOnceAcrossCopies) {
  int n = 0;
  tls::Data a = tls::MakeData(UpperClose{&n});
  tls::Data b = a;
  EXPECT_TRUE(a.Close());
  EXPECT_FALSE(b.Close());
  EXPECT_FALSE(a.Close());
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(b.closed());
}

TEST(Data, ValueWithoutCloseIsNeverClosedOnlyDestroyed) {
  tls::Data d = tls::MakeData(NoClose{3});
  EXPECT_TRUE(d.Close());  // marks it closed; nothing to call
  EXPECT_EQ(d.Value<NoClose>().x, 3);
}

TEST(Data, CustomCloser) {
  int closed_with = 0;
  tls::Data d = tls::MakeData(17, [&](int& v) { closed_with = v; });
  d.Close();
  EXPECT_EQ(closed_with, 17);
}

TEST(Data, ValueIsTypeChecked) {
  tls::Data d = tls::MakeData(std::string("text"));
  EXPECT_EQ(d.Value<std::string>(), "text");
  EXPECT_EQ(d.Value<const std::string>(), "text");
  EXPECT_EQ(d.TryValue<int>(), nullptr);
  try {
    d.Value<int>();
    FAIL() << "expected BadDataAccess";
  } catch (const tls::BadDataAccess& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("int"), std::string::npos) << what;
    EXPECT_NE(what.find("basic_string"), std::string::npos) << what;
  }
}

TEST(Data, EmptyDataIsHarmless) {
  tls::Data d;
  EXPECT_FALSE(d.has_value());
  EXPECT_FALSE(d);
  EXPECT_FALSE(d.Close());
  EXPECT_EQ(d.TryValue<int>(), nullptr);
  EXPECT_EQ(d.type(), typeid(void));
  EXPECT_THROW(d.Value<int>(), tls::BadDataAccess);
}

TEST(Data, MovedFromDataIsEmpty) {
  tls::Data a = tls::MakeData(1);
  tls::Data b = std::move(a);
  EXPECT_FALSE(a.has_value());  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(b.Value<int>(), 1);
}

TEST(Data, ValueIsSharedBetweenCopies) {
  tls::Data a = tls::MakeData(1);
  tls::Data b = a;
  a.Value<int>() = 5;
  EXPECT_EQ(b.Value<int>(), 5);
  EXPECT_EQ(a.use_count(), 2);
}

// Handles copied, assigned and released on many threads at once: the value
// is destroyed exactly once, after its last handle goes, whichever thread
// lets go last, and every copy saw the value whole (TSan checks the order).
TEST(Data, ValueIsDestroyedOnceAfterTheLastHandleOnAnyThread) {
  struct Tracked {
    std::atomic<int>* destroyed;
    int payload = 42;
    explicit Tracked(std::atomic<int>* d) : destroyed(d) {}
    Tracked(Tracked&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
    ~Tracked() {
      if (destroyed != nullptr) destroyed->fetch_add(1);
    }
  };
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> destroyed{0};
    std::atomic<int> wrong{0};
    tls::Data shared = tls::MakeData(Tracked(&destroyed));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([copy = shared, &wrong]() mutable {
        tls::Data mine;
        for (int i = 0; i < 2000; ++i) {
          tls::Data another = copy;
          if (another.Value<Tracked>().payload != 42) wrong.fetch_add(1);
          mine = another;
          if (i % 2) mine = tls::Data();
        }
      });  // `copy` and `mine` released as the thread ends
    }
    shared = tls::Data();  // main lets go first: a thread's release destroys it
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(destroyed.load(), 1) << "round " << round;
    EXPECT_EQ(wrong.load(), 0);
  }
}

TEST(Data, CloseThatThrowsStillCountsAsClosed) {
  struct Throws {
    void Close() { throw std::runtime_error("boom"); }
  };
  tls::Data d = tls::MakeData(Throws{});
  EXPECT_THROW(d.Close(), std::runtime_error);
  EXPECT_TRUE(d.closed());
  EXPECT_FALSE(d.Close());
}

}  // namespace
