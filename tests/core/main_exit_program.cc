// A program whose main thread uses tls; main_exit_test runs it and checks what
// it prints. argv[1] picks how main ends: "return", "exit", "pthread_exit", or
// "exit_in_task" (exit() called inside an open tls::TaskScope).
#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "tls/tls.h"

namespace {

struct Closer {
  const char* name;
  void Close() { std::printf("close %s\n", name); }
};

struct StaticWithDestructor {
  ~StaticWithDestructor() { std::printf("static destructor\n"); }
} g_static;

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  const char* how = argc > 1 ? argv[1] : "return";
  std::atexit([] { std::printf("atexit handler\n"); });
  tls::Set("main value", tls::MakeData(Closer{"main value"}));
  tls::AtExit([] { std::printf("handler 1 (registered first)\n"); });
  // With pthread_exit, glibc already counts the main thread as gone while its
  // exit sequence runs: a thread started now would end the process when it
  // exits (see docs/semantics.md, "Main thread"). So only the other modes start one.
  static bool start_thread = std::strcmp(how, "pthread_exit") != 0;
  tls::AtExit([] {
    std::printf("handler 2 sees value: %s\n", tls::Get("main value") ? "yes" : "no");
    if (start_thread) {
      std::thread([] { std::printf("thread started by a main-thread handler\n"); }).join();
    }
  });
  std::printf("main ends by %s\n", how);
  if (std::strcmp(how, "exit") == 0) std::exit(3);
  if (std::strcmp(how, "exit_in_task") == 0) {
    tls::TaskScope task;  // never ends normally: exit() does not unwind
    tls::Set("task value", tls::MakeData(Closer{"task value"}));
    tls::AtExit([] {
      std::printf("task handler sees main value: %s\n", tls::Get("main value") ? "yes" : "no");
    });
    std::exit(4);
  }
  if (std::strcmp(how, "pthread_exit") == 0) pthread_exit(nullptr);
  return 0;
}
