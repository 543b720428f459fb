// The platform-bound part: how the exit sequence gets to run when a thread ends.
//
// Primary hook: a thread_local object whose destructor runs the sequence. Its
// destructor is registered (glibc __cxa_thread_atexit_impl) the first time a
// thread makes a stub, so threads that never use tls pay nothing. This hook:
//   - runs for every thread however it was started, when its start function
//     returns or it calls pthread_exit;
//   - runs for the main thread inside exit() (and return from main), before
//     atexit handlers and static destructors;
//   - keeps a dlopen'ed library that holds it mapped until the thread's
//     destructors have run, so dlclose with live threads cannot unmap the code
//     the hook will call (unlike a pthread key destructor).
//
// Late hook: C++ thread_local destructors run newest first, so one registered
// before ours (another library's) runs after our sequence. If it uses tls, it
// makes a stub after the sequence ran. For such a stub we arm a pthread key
// (glibc runs key destructors after all thread_local destructors) or, on the
// main thread, an atexit handler. The key is deleted when this library is
// unloaded, so a dlclose can never leave a dangling key destructor.
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "core/internal/exit.h"
#include "core/internal/stub.h"

namespace tls::internal {
namespace {

struct NativeExitHook {
  ~NativeExitHook() { RunThreadExit(ExitCause::kThreadEnd); }
};

void RunLateExit(void*) { RunThreadExit(ExitCause::kThreadEnd); }
void RunLateMainExit() { RunThreadExit(ExitCause::kThreadEnd); }

class LateKey {
 public:
  LateKey() : created_(pthread_key_create(&key_, &RunLateExit) == 0) {}
  ~LateKey() {
    if (created_) pthread_key_delete(key_);
  }
  void Arm() const {
    if (created_) pthread_setspecific(key_, reinterpret_cast<void*>(1));
  }

 private:
  pthread_key_t key_{};
  bool created_;
};

bool IsMainThread() { return syscall(SYS_gettid) == getpid(); }

void ArmLateHook() {
  if (IsMainThread()) {
    std::atexit(&RunLateMainExit);  // glibc runs handlers added during exit
  } else {
    static LateKey late_key;
    late_key.Arm();
  }
}

}  // namespace

void ArmExitHook() {
  if (t_thread.phase == Phase::kExited) {
    ArmLateHook();
    return;
  }
  // The first pass through this declaration on a thread registers the
  // destructor; later passes cost a TLS guard check.
  static thread_local NativeExitHook hook;
  (void)hook;
}

}  // namespace tls::internal
