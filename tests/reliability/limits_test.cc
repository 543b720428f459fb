// Limits and bad input: huge numbers of keys and handlers, exit that never
// settles (bounded by kMaxExitRounds and reported), empty / moved-from /
// null-holding Data, Value<T> with the wrong type, null keys.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/reliability/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

// --- error handler capture --------------------------------------------------

std::atomic<int> g_rounds_reports{0};
std::atomic<int> g_other_reports{0};
std::atomic<uint64_t> g_report_thread{0};

void CaptureErrors(const tls::ErrorInfo& e) {
  if (e.source == tls::ErrorSource::kExitRounds) {
    g_rounds_reports.fetch_add(1);
    g_report_thread.store(e.thread_id);
    // The handler may call tls (error.h), even here, at the end of exit.
    (void)tls::Get("anything");
  } else {
    g_other_reports.fetch_add(1);
  }
}

class Limits : public ::testing::Test {
 protected:
  void SetUp() override {
    g_rounds_reports = 0;
    g_other_reports = 0;
    g_report_thread = 0;
    previous_ = tls::SetErrorHandler(&CaptureErrors);
  }
  void TearDown() override { tls::SetErrorHandler(previous_); }
  tls::ErrorHandler previous_ = nullptr;
};

template <class F>
void InThread(F&& f) {
  std::thread t(std::forward<F>(f));
  t.join();
}

// --- huge numbers -----------------------------------------------------------

TEST_F(Limits, MillionKeys) {
  const long n = Scaled("TLS_LIMITS_KEYS", 1'000'000, 300'000, 300'000);
  std::atomic<long> closed{0};
  InThread([&] {
    for (long i = 0; i < n; ++i) tls::Set(i, tls::MakeData(i, [&](long&) { ++closed; }));
    for (long i = 0; i < n; ++i) {
      const tls::Data* d = tls::Find(i);
      ASSERT_NE(d, nullptr) << i;
      ASSERT_EQ(d->Value<long>(), i);
    }
    EXPECT_EQ(tls::Find(n), nullptr);
    for (long i = 0; i < n; i += 2) ASSERT_TRUE(tls::Del(i));
    for (long i = 0; i < n; ++i) ASSERT_EQ(tls::Find(i) != nullptr, i % 2 == 1) << i;
    EXPECT_EQ(closed.load(), 0);  // Del does not close
    tls::Reset();
    EXPECT_EQ(closed.load(), n / 2);
    for (long i = 0; i < n / 10; ++i) {  // string keys, then exit closes them
      tls::Set("key-" + std::to_string(i), tls::MakeData(i, [&](long&) { ++closed; }));
    }
  });
  EXPECT_EQ(closed.load(), n / 2 + n / 10);
}

TEST_F(Limits, HundredThousandHandlersRunNewestFirst) {
  const int n = static_cast<int>(Scaled("TLS_LIMITS_HANDLERS", 100'000, 100'000, 50'000));
  std::vector<int> order;
  order.reserve(n);
  InThread([&] {
    for (int i = 0; i < n; ++i) tls::AtExit([&order, i] { order.push_back(i); });
  });
  ASSERT_EQ(order.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(order[i], n - 1 - i);
  EXPECT_EQ(g_rounds_reports.load(), 0);  // one round, far below the limit
}

TEST_F(Limits, ManySlots) {
  constexpr int kSlots = 10'000;
  auto slots = std::make_unique<tls::Slot<int>[]>(kSlots);
  InThread([&] {
    for (int i = 0; i < kSlots; ++i) slots[i].Set(i);
    for (int i = 0; i < kSlots; ++i) ASSERT_EQ(*slots[i].Get(), i);
  });
}

// --- exit that never settles --------------------------------------------------

void Forever(std::atomic<int>* runs) {
  runs->fetch_add(1);
  tls::AtExit([runs] { Forever(runs); });
}

TEST_F(Limits, AtExitReRegisteringForeverIsBoundedAndReported) {
  std::atomic<int> runs{0};
  uint64_t id = 0;
  InThread([&] {
    id = tls::ID();
    tls::AtExit([&runs] { Forever(&runs); });
  });
  // One handler per round until the limit; the last registration is dropped.
  EXPECT_EQ(runs.load(), tls::kMaxExitRounds);
  EXPECT_EQ(g_rounds_reports.load(), 1);
  EXPECT_EQ(g_report_thread.load(), id);
  EXPECT_EQ(g_other_reports.load(), 0);
}

struct Regrow {
  std::atomic<int>* closes;
  void Close() {
    closes->fetch_add(1);
    tls::Set("again", tls::MakeData(Regrow{closes}));
  }
};

TEST_F(Limits, CloseReSettingForeverIsBoundedAndReported) {
  std::atomic<int> closes{0};
  InThread([&] { tls::Set("again", tls::MakeData(Regrow{&closes})); });
  EXPECT_EQ(closes.load(), tls::kMaxExitRounds);
  EXPECT_EQ(g_rounds_reports.load(), 1);
}

TEST_F(Limits, HandlerAndCloseFeedingEachOtherAreBounded) {
  std::atomic<int> calls{0};
  struct PingPong {
    static void Handler(std::atomic<int>* calls) {
      ++*calls;
      tls::Set("v", tls::MakeData(1, [calls](int&) {
                 ++*calls;
                 tls::AtExit([calls] { Handler(calls); });
               }));
    }
  };
  InThread([&] { tls::AtExit([&calls] { PingPong::Handler(&calls); }); });
  EXPECT_EQ(calls.load(), tls::kMaxExitRounds);
  EXPECT_EQ(g_rounds_reports.load(), 1);
}

TEST_F(Limits, DroppedAtGiveUpIsNeitherRunNorClosedButFreed) {
  std::atomic<int> runs{0};
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  InThread([&, alive = std::move(alive)]() mutable {
    tls::Set("held", tls::MakeData(std::move(alive)));  // stays until give-up
    tls::AtExit([&runs] { Forever(&runs); });
  });
  EXPECT_EQ(g_rounds_reports.load(), 1);
  EXPECT_TRUE(watch.expired()) << "a value dropped at give-up was leaked";
}

// --- bad input ----------------------------------------------------------------

TEST_F(Limits, EmptyAndMovedFromData) {
  tls::Data empty;
  EXPECT_FALSE(empty.has_value());
  EXPECT_FALSE(empty);
  EXPECT_EQ(empty.TryValue<int>(), nullptr);
  EXPECT_FALSE(empty.Close());
  EXPECT_FALSE(empty.closed());
  EXPECT_EQ(empty.use_count(), 0);
  EXPECT_EQ(empty.type(), typeid(void));
  try {
    empty.Value<int>();
    ADD_FAILURE() << "no throw";
  } catch (const tls::BadDataAccess& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("int"), std::string::npos) << e.what();
  }

  tls::Data full = tls::MakeData(5);
  tls::Data taken = std::move(full);
  EXPECT_FALSE(full.has_value());  // NOLINT(bugprone-use-after-move): on purpose
  EXPECT_THROW(full.Value<int>(), tls::BadDataAccess);
  EXPECT_EQ(taken.Value<int>(), 5);

  InThread([&] {
    // Storing an empty or moved-from Data is allowed; Reset and exit skip it.
    tls::Set("empty", tls::Data());
    tls::Set("moved", std::move(full));
    ASSERT_TRUE(tls::Get("empty").has_value());
    EXPECT_FALSE(tls::Get("empty")->has_value());
    tls::Reset();
    EXPECT_FALSE(tls::Get("empty").has_value());
    tls::Set("empty-at-exit", tls::Data());
  });
}

struct Conn {
  int* closes;
  void Close() { ++*closes; }
};

TEST_F(Limits, DataHoldingNullPointersIsNotClosed) {
  int closes = 0;
  InThread([&] {
    tls::Set("raw", tls::MakeData(static_cast<Conn*>(nullptr)));
    tls::Set("unique", tls::MakeData(std::unique_ptr<Conn>()));
    tls::Set("shared", tls::MakeData(std::shared_ptr<Conn>()));
    tls::Set("live", tls::MakeData(std::make_unique<Conn>(Conn{&closes})));
    tls::Reset();
    EXPECT_EQ(closes, 1);
    tls::Set("raw", tls::MakeData(static_cast<Conn*>(nullptr)));
  });
  EXPECT_EQ(closes, 1);
  EXPECT_EQ(g_other_reports.load(), 0);
}

struct Widget {};

TEST_F(Limits, ValueWithWrongTypeThrowsNamingBothTypes) {
  tls::Data d = tls::MakeData(1.5);
  EXPECT_EQ(d.TryValue<int>(), nullptr);
  EXPECT_EQ(d.TryValue<float>(), nullptr);
  try {
    d.Value<int>();
    ADD_FAILURE() << "no throw";
  } catch (const tls::BadDataAccess& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("int"), std::string::npos) << what;
    EXPECT_NE(what.find("double"), std::string::npos) << what;
  }
  tls::Data w = tls::MakeData(Widget{});
  try {
    w.Value<std::string>();
    ADD_FAILURE() << "no throw";
  } catch (const tls::BadDataAccess& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("Widget"), std::string::npos) << what;
    EXPECT_NE(what.find("basic_string"), std::string::npos) << what;
  }
  // const is ignored; a base or derived type is not the stored type.
  EXPECT_NE(d.TryValue<const double>(), nullptr);
  EXPECT_THROW(tls::MakeData(std::string("x")).Value<const char*>(), tls::BadDataAccess);
}

TEST_F(Limits, NullCStringKeyThrowsInvalidArgument) {
  const char* null_key = nullptr;
  InThread([&] {
    EXPECT_THROW(tls::Set(null_key, tls::MakeData(1)), std::invalid_argument);
    EXPECT_THROW(tls::Get(null_key), std::invalid_argument);
    EXPECT_THROW(tls::Del(null_key), std::invalid_argument);
    EXPECT_THROW(tls::AtExit(std::function<void()>()), std::invalid_argument);
    // Nothing was half-done: the store still works.
    tls::Set("ok", tls::MakeData(1));
    EXPECT_EQ(tls::Get("ok")->Value<int>(), 1);
  });
}

TEST_F(Limits, KeyKindsNeverCollide) {
  InThread([&] {
    tls::Set(1, tls::MakeData(std::string("int")));
    tls::Set("1", tls::MakeData(std::string("text")));
    tls::Set(-1, tls::MakeData(std::string("minus")));
    tls::Set(UINT64_MAX, tls::MakeData(std::string("max")));
    tls::Set("", tls::MakeData(std::string("empty")));
    EXPECT_EQ(tls::Get(1u)->Value<std::string>(), "int");
    EXPECT_EQ(tls::Get(std::string("1"))->Value<std::string>(), "text");
    EXPECT_EQ(tls::Get(-1L)->Value<std::string>(), "minus");
    EXPECT_EQ(tls::Get(UINT64_MAX)->Value<std::string>(), "max");
    EXPECT_EQ(tls::Get(std::string_view())->Value<std::string>(), "empty");
  });
}

}  // namespace
}  // namespace tls_test
