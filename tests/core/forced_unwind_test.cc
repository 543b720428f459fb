// A forced unwind out of a callback (pthread_exit in a close or a handler; it
// is also how CPython ends a daemon thread that wakes up during interpreter
// shutdown) passes through the engine: the process is not terminated, the
// interrupted round's remaining callbacks are dropped, and what the thread's
// store still holds is handled when the thread really ends.
#include <gtest/gtest.h>
#include <pthread.h>

#include <string>

#include "core/internal/exit.h"
#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

using tls::internal::ExitCause;
using tls::internal::RunThreadExit;

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
  RunInPthread([&] {
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
  RunInPthread([&] {
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
  RunInPthread([&] {
    tls::Set("v", tls::MakeData(Closer{&log, "v"}));
    tls::AtExit([] { throw std::runtime_error("boom"); });
    RunThreadExit(ExitCause::kEarly);
  });
  tls::SetErrorHandler(previous);
  EXPECT_EQ(log.events(), (Events{"reported AtExit handler threw: boom", "close v"}));
}

}  // namespace
}  // namespace tls_test
