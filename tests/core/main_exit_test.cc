// The main thread: handlers and closes run at normal process exit, before
// atexit handlers and static destructors. Runs main_exit_program in a child.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace {

struct Result {
  std::string out;
  int status;
};

Result RunProgram(const std::string& how) {
  std::string cmd = std::string(getenv("MAIN_EXIT_PROGRAM")) + " " + how;
  FILE* p = popen(cmd.c_str(), "r");
  Result r{"", -1};
  std::array<char, 256> buf;
  while (fgets(buf.data(), buf.size(), p) != nullptr) r.out += buf.data();
  r.status = pclose(p);
  return r;
}

const char* kExitSequence =
    "handler 2 sees value: yes\n"
    "thread started by a main-thread handler\n"
    "handler 1 (registered first)\n"
    "close main value\n";

TEST(MainThreadExit, ReturnFromMainRunsHandlersThenClosesBeforeStaticDestructors) {
  Result r = RunProgram("return");
  EXPECT_EQ(r.out, std::string("main ends by return\n") + kExitSequence +
                       "atexit handler\nstatic destructor\n");
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
}

TEST(MainThreadExit, ExitRunsHandlersAndKeepsTheExitCode) {
  Result r = RunProgram("exit");
  EXPECT_EQ(r.out, std::string("main ends by exit\n") + kExitSequence +
                       "atexit handler\nstatic destructor\n");
  EXPECT_EQ(WEXITSTATUS(r.status), 3);
}

TEST(MainThreadExit, ExitInsideATaskEndsTheTaskFirstThenTheMainThread) {
  Result r = RunProgram("exit_in_task");
  EXPECT_EQ(r.out, std::string("main ends by exit_in_task\n") +
                       "task handler sees main value: no\n"
                       "close task value\n" +
                       kExitSequence + "atexit handler\nstatic destructor\n");
  EXPECT_EQ(WEXITSTATUS(r.status), 4);
}

TEST(MainThreadExit, PthreadExitOnMainRunsHandlers) {
  // The main thread ends like any other thread; the process exits after it.
  Result r = RunProgram("pthread_exit");
  EXPECT_EQ(r.out,
            "main ends by pthread_exit\n"
            "handler 2 sees value: yes\n"
            "handler 1 (registered first)\n"
            "close main value\n"
            "atexit handler\n"
            "static destructor\n");
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
}

}  // namespace
