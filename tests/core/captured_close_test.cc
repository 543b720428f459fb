// When a captured value closes (core/task.h, "Captured values"): at the end
// of its thread or task only if no live snapshot holds it; else when the last
// snapshot holding it lets go. Reset and Data::Close stay explicit. Each test
// is named after the rule it checks; docs/semantics.md's tables point here.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

// A value whose closes are counted, and which checks it is open when used.
struct Conn {
  std::atomic<int>* closes;
  void Close() { closes->fetch_add(1); }
};

tls::Data CountedConn(std::atomic<int>& closes) { return tls::MakeData(Conn{&closes}); }

bool ClosedHere(const tls::Key& key) {
  const tls::Data* d = tls::Find(key);
  return d == nullptr || d->closed();
}

// A fixed pool with a queue: tasks run after whoever posted them has ended.
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
      task = nullptr;  // the snapshot goes here, on the pool thread
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

TEST(CapturedClose, ThreadEndLeavesTheCloseToTheLastTaskHoldingTheValue) {
  std::atomic<int> closes{0};
  std::function<void()> task;
  RunInThread([&] {
    tls::Set("conn", CountedConn(closes));
    task = tls::Wrap([] { EXPECT_FALSE(ClosedHere("conn")); });
  });
  EXPECT_EQ(closes.load(), 0) << "closed by its thread's end while a task held it";
  std::thread(task).join();  // runs after the submitter ended: the value is open
  EXPECT_EQ(closes.load(), 0) << "a task's end never closes what it was given";
  task = nullptr;  // the last holder lets go
  EXPECT_EQ(closes.load(), 1);
}

TEST(CapturedClose, ThreadEndClosesAtOnceWhenNoSnapshotHoldsTheValue) {
  std::atomic<int> closes{0};
  RunInThread([&] {
    tls::Set("conn", CountedConn(closes));
    tls::Snapshot let_go = tls::Capture();  // released before the end
    tls::Capture();                         // the thread's own reused snapshot is not a holder
  });
  EXPECT_EQ(closes.load(), 1);
}

TEST(CapturedClose, ResetClosesCapturedValuesAtOnce) {
  std::atomic<int> closes{0};
  RunInThread([&] {
    tls::Set("conn", CountedConn(closes));
    tls::Snapshot snap = tls::Capture();
    tls::Reset();
    EXPECT_EQ(closes.load(), 1) << "Reset is explicit: it does not wait for snapshots";
    tls::Run(snap, [] { EXPECT_TRUE(ClosedHere("conn")); });
  });
  EXPECT_EQ(closes.load(), 1);
}

TEST(CapturedClose, DataCloseClosesAtOnceUnderALiveSnapshot) {
  std::atomic<int> closes{0};
  tls::Snapshot snap;
  RunInThread([&] {
    tls::Set("conn", CountedConn(closes));
    snap = tls::Capture();
    EXPECT_TRUE(tls::Get("conn")->Close());
    EXPECT_EQ(closes.load(), 1);
  });
  snap = tls::Snapshot();
  EXPECT_EQ(closes.load(), 1) << "closed once";
}

TEST(CapturedClose, ASnapshotReleasedBeforeTheThreadEndsOwesNoClose) {
  std::atomic<int> closes{0};
  RunInThread([&] {
    tls::Set("conn", CountedConn(closes));
    std::thread([snap = tls::Capture()] { tls::Run(snap, [] {}); }).join();
    EXPECT_EQ(closes.load(), 0) << "the thread still holds it";
  });
  EXPECT_EQ(closes.load(), 1);
}

TEST(CapturedClose, ATasksOwnValueCapturedInsideItClosesWhenTheInnerSnapshotGoes) {
  std::atomic<int> closes{0};
  tls::Snapshot inner;
  RunInThread([&] {
    tls::Run(tls::Snapshot(), [&] {
      tls::Set("scratch", CountedConn(closes));
      inner = tls::Capture();
    });
    EXPECT_EQ(closes.load(), 0) << "the task ended while a snapshot held its value";
  });
  tls::Run(inner, [] { EXPECT_FALSE(ClosedHere("scratch")); });
  inner = tls::Snapshot();
  EXPECT_EQ(closes.load(), 1);
}

TEST(CapturedClose, AnErrorInADeferredCloseIsReportedWhereTheSnapshotGoes) {
  static std::atomic<int> reports{0};
  reports = 0;
  const tls::ErrorHandler previous = tls::SetErrorHandler([](const tls::ErrorInfo& e) {
    if (e.source == tls::ErrorSource::kClose) reports.fetch_add(1);
  });
  tls::Snapshot snap;
  RunInThread([&] {
    tls::Set("bad", tls::MakeData(1, [](int&) { throw std::runtime_error("close failed"); }));
    snap = tls::Capture();
  });
  EXPECT_EQ(reports.load(), 0);
  EXPECT_NO_THROW(snap = tls::Snapshot());
  EXPECT_EQ(reports.load(), 1);
  tls::SetErrorHandler(previous);
}

TEST(CapturedClose, FireAndForgetTasksOnAPoolThatOutliveTheirSubmittersCloseEachValueOnce) {
  constexpr int kSubmitters = 64;
  constexpr int kTasksEach = 4;
  std::vector<std::atomic<int>> closes(kSubmitters);
  std::atomic<int> saw_closed{0};
  std::atomic<int> ran{0};
  {
    Pool pool(4);
    std::vector<std::thread> submitters;
    for (int i = 0; i < kSubmitters; ++i) {
      submitters.emplace_back([&, i] {
        tls::Set("conn", CountedConn(closes[i]));
        for (int t = 0; t < kTasksEach; ++t) {
          pool.Post(tls::Wrap([&] {
            if (ClosedHere("conn")) saw_closed.fetch_add(1);
            std::this_thread::yield();
            ran.fetch_add(1);
          }));
        }
      });  // the submitter ends at once, its tasks still queued or running
    }
    for (std::thread& t : submitters) t.join();
  }  // the pool drains and joins
  EXPECT_EQ(ran.load(), kSubmitters * kTasksEach);
  EXPECT_EQ(saw_closed.load(), 0) << "a task saw its request's value closed";
  for (int i = 0; i < kSubmitters; ++i) EXPECT_EQ(closes[i].load(), 1) << "submitter " << i;
}

}  // namespace
}  // namespace tls_test
