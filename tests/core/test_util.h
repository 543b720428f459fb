// Helpers shared by the core tests.
#ifndef TLS_TESTS_CORE_TEST_UTIL_H_
#define TLS_TESTS_CORE_TEST_UTIL_H_

#include <pthread.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// The tests that use these open `namespace tls_test { namespace {`, so they
// name them unqualified, with no `using` preamble of their own.
namespace tls_test {

// What a Log holds, as tests spell the expected events.
using Events = std::vector<std::string>;

// Runs `body` on a fresh std::thread and joins it: the thread's exit sequence
// has finished when this returns.
inline void RunInThread(const std::function<void()>& body) { std::thread(body).join(); }

// Runs `body` on a raw pthread (no C++ thread machinery) and joins it. `body`
// may end the thread with pthread_exit: the unwind frees what this allocated.
inline void RunInPthread(const std::function<void()>& body) {
  pthread_t t;
  auto* arg = new std::function<void()>(body);
  pthread_create(
      &t, nullptr,
      [](void* p) -> void* {
        std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(p));
        (*f)();
        return nullptr;
      },
      arg);
  pthread_join(t, nullptr);
}

// A thread-safe event log, so tests can assert on order across threads.
class Log {
 public:
  void Add(std::string event) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

// A value whose Close() and destruction are logged.
struct Closer {
  Log* log;
  std::string name;
  void Close() { log->Add("close " + name); }
};

// Threads that run `setup`, then stay alive until Release() (or destruction).
class ParkedThreads {
 public:
  ParkedThreads(int n, const std::function<void(int)>& setup) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, i, setup] {
        setup(i);
        {
          std::unique_lock<std::mutex> lock(mu_);
          ++ready_;
          cv_.notify_all();
          cv_.wait(lock, [&] { return released_; });
        }
      });
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ready_ == n; });
  }
  ~ParkedThreads() { Release(); }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
      cv_.notify_all();
    }
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int ready_ = 0;
  bool released_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tls_test

#endif  // TLS_TESTS_CORE_TEST_UTIL_H_
