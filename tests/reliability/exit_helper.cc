// A small program run by process_exit_test: each mode ends the process a
// different way while tls holds values and handlers, and prints (unbuffered)
// what ran, so the test can check that the documented set ran, in order, with
// no crash and no hang.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "tests/reliability/test_util.h"
#include "tls/tls.h"

namespace {

void Say(const std::string& line) { tls_test::WriteLine(line); }

// A value that prints when closed.
tls::Data Loud(const std::string& name) {
  return tls::MakeData(name, [](std::string& n) { Say(n + " closed"); });
}

// Main-thread values and a handler that checks they are still readable.
void HoldOnMain() {
  tls::Set("main", Loud("main"));
  tls::AtExit([] {
    auto d = tls::Get("main");
    Say(d && !d->closed() ? "main handler sees value" : "main handler: value gone");
  });
}

// A thread that keeps using tls (values with closers that call tls, handlers)
// until the process ends under it.
void Busy(std::latch* started) {
  tls::Set("worker", Loud("worker"));
  tls::AtExit([] { Say("worker handler"); });
  started->count_down();
  for (uint64_t i = 0;; ++i) {
    tls::Set(static_cast<int>(i % 16),
             tls::MakeData(i, [](uint64_t& v) { tls::Set("from-close", tls::MakeData(v)); }));
    (void)tls::Get(static_cast<int>((i * 7) % 16));
    if (i % 64 == 0) tls::Reset();
    if (i % 1024 == 0) tls::AtExit([] {});
    if (i % 4096 == 0) {
      tls::Unload();
      tls::Set("worker", Loud("worker"));
    }
  }
}

// Threads that start and end constantly, each with values and handlers.
void Churner(std::latch* started) {
  started->count_down();
  for (;;) {
    std::thread t([] {
      tls::Set("v", tls::MakeData(1, [](int&) { (void)tls::ID(); }));
      tls::AtExit([] { tls::Set("from-handler", tls::MakeData(2)); });
    });
    t.join();
  }
}

struct StaticUser {
  ~StaticUser() {
    // Runs among static destructors, after the main thread's exit sequence.
    tls::Set("late", Loud("late"));
    tls::AtExit([] {
      auto d = tls::Get("late");
      Say(d ? "late handler sees value" : "late handler: value gone");
    });
    Say("static destructor used tls");
  }
};
StaticUser* g_static_user = nullptr;

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  // Constructed first, so destroyed last: after everything else at exit.
  static StaticUser static_user;
  (void)static_user;
  (void)g_static_user;

  if (mode == "return" || mode == "exit" || mode == "pthread_exit" || mode == "_exit") {
    HoldOnMain();
    std::atomic<bool> main_done{false};
    if (mode == "pthread_exit") {
      // Outlives the main thread; the process ends when it returns.
      std::thread([] {
        usleep(200 * 1000);
        tls::Set("survivor", Loud("survivor"));
        Say("survivor done");
      }).detach();
    }
    Say("main ends");
    if (mode == "exit") std::exit(0);
    if (mode == "_exit") _exit(0);
    if (mode == "pthread_exit") pthread_exit(nullptr);
    return 0;
  }
  if (mode == "static_first_use") {
    Say("main ends");  // main never touched tls: the static destructor is its first use
    return 0;
  }
  if (mode == "exit_with_busy_threads") {
    HoldOnMain();
    constexpr int kBusy = 8, kChurn = 4;
    std::latch started(kBusy + kChurn);
    for (int i = 0; i < kBusy; ++i) std::thread(Busy, &started).detach();
    for (int i = 0; i < kChurn; ++i) std::thread(Churner, &started).detach();
    started.wait();
    usleep(50 * 1000);
    Say("main ends");
    std::exit(0);
  }
  if (mode == "exit_from_other_thread") {
    HoldOnMain();
    std::thread([] {
      tls::Set("caller", Loud("caller"));
      tls::AtExit([] { Say("caller handler"); });
      Say("caller calls exit");
      std::exit(0);
    }).detach();
    for (;;) pause();  // the main thread is still alive when the process ends
  }
  if (mode == "handler_starts_thread") {
    HoldOnMain();
    tls::AtExit([] {
      std::thread t([] {
        tls::Set("inner", Loud("inner"));
        tls::AtExit([] { Say("inner handler"); });
      });
      t.join();
      Say("joined");
    });
    Say("main ends");
    return 0;
  }
  Say("unknown mode " + mode);
  return 2;
}
