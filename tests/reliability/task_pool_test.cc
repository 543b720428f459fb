// Task-local storage on real pools (core/task.h): boost::asio::thread_pool
// (header-only, Debian's libboost-dev) and std::async. What a service does:
// set request-scoped values, fan work out, and expect each task to see them
// and nothing else.
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

std::string StringAt(const tls::Key& key) {
  const tls::Data* d = tls::Find(key);
  return d ? d->Value<std::string>() : "<none>";
}

struct CountedCloser {
  std::atomic<int>* closes;
  void Close() { closes->fetch_add(1); }
};

TEST(Pools, NoLeakBetweenConsecutiveTasksOnOnePoolThread) {
  boost::asio::thread_pool pool(1);  // every task on the same thread
  std::atomic<int> closes{0};
  std::promise<std::string> second_saw;
  std::promise<std::string> plain_saw;
  tls::Set("request", tls::MakeData(std::string("first")));
  boost::asio::post(pool, tls::Wrap([&] {
                      tls::Set("scratch", tls::MakeData(CountedCloser{&closes}));
                      tls::Set("request", tls::MakeData(std::string("overwritten by task 1")));
                    }));
  tls::Set("request", tls::MakeData(std::string("second")));
  boost::asio::post(pool, tls::Wrap([&] {
                      second_saw.set_value(StringAt("request") + "," +
                                           (tls::Find("scratch") ? "scratch" : "no scratch"));
                    }));
  // A task posted without Wrap sees the pool thread's own (empty) state: task 1
  // left nothing behind on the thread.
  boost::asio::post(pool, [&] { plain_saw.set_value(StringAt("request")); });
  EXPECT_EQ(second_saw.get_future().get(), "second,no scratch");
  EXPECT_EQ(plain_saw.get_future().get(), "<none>");
  pool.join();
  EXPECT_EQ(closes.load(), 1);  // task 1's value, closed when task 1 ended
  EXPECT_EQ(StringAt("request"), "second");
  tls::Del("request");
}

TEST(Pools, SubmitterValuesSeenBy10000TasksOn8Threads) {
  constexpr int kTasks = 10000;
  boost::asio::thread_pool pool(8);
  std::atomic<int> right{0}, wrong{0};
  std::mutex mu;
  std::set<std::thread::id> threads;
  for (int i = 0; i < kTasks; ++i) {
    tls::Set("request", tls::MakeData(std::string("r-") + std::to_string(i)));
    boost::asio::post(
        pool, tls::Wrap([&, i] {
          (StringAt("request") == "r-" + std::to_string(i) ? right : wrong).fetch_add(1);
          tls::Set("task-local", tls::MakeData(i));  // must not leak
          std::lock_guard<std::mutex> lock(mu);
          threads.insert(std::this_thread::get_id());
        }));
  }
  pool.join();
  EXPECT_EQ(right.load(), kTasks);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(threads.size(), 1u);
  tls::Del("request");
}

TEST(Pools, StdAsyncTasksSeeTheSubmittersValuesAndEndBeforeTheFutureIsReady) {
  std::atomic<int> closes{0};
  tls::Set("user", tls::MakeData(std::string("ada")));
  std::vector<std::future<std::string>> results;
  for (int i = 0; i < 16; ++i) {
    results.push_back(std::async(std::launch::async, tls::Wrap([&] {
                                   tls::Set("scratch", tls::MakeData(CountedCloser{&closes}));
                                   return StringAt("user");
                                 })));
  }
  for (auto& r : results) EXPECT_EQ(r.get(), "ada");
  EXPECT_EQ(closes.load(), 16);  // each task's value closed at its end, before get()
  tls::Del("user");
}

}  // namespace
}  // namespace tls_test
