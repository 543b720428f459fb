// A forced unwind out of a callback (pthread_exit in a close or a handler; it
// is also how CPython ends a daemon thread that wakes up during interpreter
// shutdown) passes through the engine: the process is not terminated, the
// interrupted round's remaining callbacks are dropped, and what the thread's
// store still holds is handled when the thread really ends.
#include <pthread.h>

#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "core/internal/exit.h"
#include "tls/tls.h"
#include "tests/core/test_util.h"

namespace {

using tls::internal::ExitCause;
using tls::internal::RunThreadExit;
using tls_test::Closer;
using tls_test::Log;
using Events = std::vector<std::string>;

// Runs `body` on a raw pthread that `body` may end with pthread_exit; joins it.
void RunInExitablePthread(std::function<void()> body) {
  pthread_t t;
  auto* arg = new std::function<void()>(std::move(body));
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void* p) -> void* {
                  // Freed by the unwind too: pthread_exit runs C++ destructors.
                  std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(p));
                  (*f)();
                  return nullptr;
                },
                arg),
            0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
}

struct ExitingCloser {
  Log* log;
  void Close() {
    log->Add("close exits");
    pthread_exit(nullptr);
  }
};

// A slot value that logs its close and its destruction.
struct SlotValue {
  Log* log = nullptr;
  void Close() { log->Add("slot close"); }
  ~SlotValue() {
    if (log != nullptr) log->Add("slot destroyed");
  }
};
tls::Slot<SlotValue> g_slot;

TEST(ForcedUnwind, PthreadExitInACloseDuringResetEndsOnlyTheThread) {
  Log log;
  RunInExitablePthread([&] {
    tls::Set("exits", tls::MakeData(ExitingCloser{&log}));
    g_slot.Emplace().log = &log;  // closed after keyed values: never reached
    tls::AtExit([&] { log.Add("handler"); });
    tls::Reset();
    log.Add("unreachable");
  });
  // The slot value is released unclosed with the interrupted round; the
  // handler still runs at the thread's end.
  EXPECT_EQ(log.events(), (Events{"close exits", "slot destroyed", "handler"}));
}

TEST(ForcedUnwind, PthreadExitInAHandlerOfAnEarlyRunLeavesTheRestToTheThreadEnd) {
  Log log;
  RunInExitablePthread([&] {
    tls::Set("v", tls::MakeData(Closer{&log, "v"}));
    tls::AtExit([&] { log.Add("older handler"); });
    tls::AtExit([&] {
      log.Add("handler exits");
      pthread_exit(nullptr);
    });
    RunThreadExit(ExitCause::kEarly);
    log.Add("unreachable");
  });
  // The older handler was in the interrupted round: dropped. The value is
  // closed once, by the native hook at the thread's end.
  EXPECT_EQ(log.events(), (Events{"handler exits", "close v"}));
}

TEST(ForcedUnwind, PthreadExitInTheErrorHandlerPassesToo) {
  Log log;
  static Log* s_log = &log;
  tls::ErrorHandler previous = tls::SetErrorHandler([](const tls::ErrorInfo& e) {
    s_log->Add("reported " + std::string(e.message));
    pthread_exit(nullptr);
  });
  RunInExitablePthread([&] {
    tls::Set("v", tls::MakeData(Closer{&log, "v"}));
    tls::AtExit([] { throw std::runtime_error("boom"); });
    RunThreadExit(ExitCause::kEarly);
  });
  tls::SetErrorHandler(previous);
  EXPECT_EQ(log.events(), (Events{"reported AtExit handler threw: boom", "close v"}));
}

}  // namespace
