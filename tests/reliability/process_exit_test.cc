// Process exit: each case runs exit_helper in a child process and checks its
// output and status: no crash, no hang, and the documented set of handlers
// and closes (the main thread's) runs, in order.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/reliability/test_util.h"

namespace tls_test {
namespace {

ChildResult RunHelper(const std::string& mode, const std::vector<std::string>& env = {}) {
  return RunWithTimeout({Runfile("tests/reliability/exit_helper"), mode}, 60, env);
}

// The shared line checks (test_util.h), on a child's whole output, as gtest
// assertions.
::testing::AssertionResult InOrder(const std::string& out, const std::vector<std::string>& want) {
  const std::string missing = tls_test::InOrder(Lines(out), want);
  if (missing.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << missing << " in:\n" << out;
}

int Count(const std::string& out, const std::string& line) {
  return tls_test::Count(Lines(out), line);
}

// The late tls use from a static destructor is handled by the late hook.
const std::vector<std::string> kLate = {"static destructor used tls", "late handler sees value",
                                        "late closed"};

TEST(ProcessExit, ReturnFromMainRunsMainHandlersThenStaticDestructorUse) {
  ChildResult r = RunHelper("return");
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_TRUE(InOrder(r.out, {"main ends", "main handler sees value", "main closed"}));
  EXPECT_TRUE(InOrder(r.out, {"main closed", kLate[0], kLate[1], kLate[2]}));
  EXPECT_EQ(Count(r.out, "main closed"), 1);
  EXPECT_EQ(Count(r.out, "late closed"), 1);
}

TEST(ProcessExit, ExitRunsMainHandlersThenStaticDestructorUse) {
  ChildResult r = RunHelper("exit");
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_TRUE(InOrder(r.out, {"main ends", "main handler sees value", "main closed"}));
  EXPECT_TRUE(InOrder(r.out, {"main closed", kLate[0], kLate[1], kLate[2]}));
}

TEST(ProcessExit, MainPthreadExitRunsMainHandlersAtOnce) {
  // glibc never frees the main thread's thread_local destructor list when the
  // main thread calls pthread_exit (32 bytes per registration, its own leak,
  // not ours): LeakSanitizer would report it.
  if (kTsan) {
    // TSan's own background thread never ends, and once the main thread has
    // called pthread_exit nothing calls exit(): the process would never end.
    GTEST_SKIP() << "a process whose main thread calls pthread_exit never ends under TSan";
  }
  ChildResult r = RunHelper("pthread_exit", {"ASAN_OPTIONS=detect_leaks=0"});
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  // The main thread's sequence runs at its pthread_exit, before the surviving
  // thread finishes; the process ends when that thread does.
  EXPECT_TRUE(InOrder(r.out, {"main ends", "main handler sees value", "main closed",
                              "survivor done", "survivor closed"}));
  EXPECT_EQ(Count(r.out, "main closed"), 1);
}

TEST(ProcessExit, UnderscoreExitRunsNothing) {
  // Documented NOT promised: _exit (and a crash, quick_exit) skip every hook.
  ChildResult r = RunHelper("_exit");
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_EQ(Count(r.out, "main closed"), 0);
  EXPECT_EQ(Count(r.out, "main handler sees value"), 0);
}

TEST(ProcessExit, StaticDestructorIsFirstUseOnMainThread) {
  ChildResult r = RunHelper("static_first_use");
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_TRUE(InOrder(r.out, {"main ends", kLate[0], kLate[1], kLate[2]}));
}

TEST(ProcessExit, ExitWhileOtherThreadsHoldValuesAndChurn) {
  // Repeat: the interesting interleavings are rare.
  for (int i = 0; i < 5; ++i) {
    // exit() while threads run is the point: TSan must not call the threads
    // that have not been joined a leak.
    ChildResult r = RunHelper("exit_with_busy_threads", {"TSAN_OPTIONS=report_thread_leaks=0"});
    ASSERT_TRUE(r.exited_ok()) << "run " << i << ": " << r.Describe();
    EXPECT_TRUE(InOrder(r.out, {"main ends", "main handler sees value", "main closed"}));
    // Other threads' handlers are not run at exit (they are still running).
    EXPECT_EQ(Count(r.out, "worker handler"), 0) << r.out;
  }
}

TEST(ProcessExit, ExitFromAnotherThreadRunsThatThreadsHandlers) {
  ChildResult r = RunHelper("exit_from_other_thread");
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  // exit() runs the calling thread's sequence; the static destructor's late
  // use on that (non-main) thread is caught by the final sweep.
  EXPECT_TRUE(InOrder(r.out, {"caller calls exit", "caller handler", "caller closed", kLate[0],
                              kLate[1], kLate[2]}));
  // The main thread is alive (blocked) when the process ends: not run.
  EXPECT_EQ(Count(r.out, "main closed"), 0);
}

TEST(ProcessExit, MainHandlerStartsAndJoinsAThread) {
  ChildResult r = RunHelper("handler_starts_thread");
  ASSERT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_TRUE(InOrder(r.out, {"main ends", "inner handler", "inner closed", "joined",
                              "main handler sees value", "main closed"}));
}

}  // namespace
}  // namespace tls_test
