// The platform-bound part: how the exit sequence gets to run when a thread ends.
//
// Primary hook: a thread_local object whose destructor runs the sequence. Its
// destructor is registered (glibc __cxa_thread_atexit_impl) the first time a
// thread makes a stub, so threads that never use tls pay nothing. This hook:
//   - runs for every thread however it was started, when its start function
//     returns or it calls pthread_exit; except that glibc runs no thread_local
//     destructor when the MAIN thread calls pthread_exit (only pthread key
//     destructors), so the main thread also arms the pthread key below;
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
// main thread, an atexit handler (an atexit handler registered by a library
// runs when it is unloaded). A key destructor, unlike a thread_local one, does
// not keep its library mapped: between a thread's last thread_local destructor
// and its key destructors another thread's dlclose could unmap this code, and
// deleting the key at unload cannot close that window (the exiting thread may
// already hold the destructor's address). So the first time the late hook is
// armed on a non-main thread, the library pins itself for good
// (RTLD_NODELETE): such a plugin is never unmapped. A late use is rare (it
// takes another library's thread_local destructor calling tls after ours), and
// it costs only the mapping.  Test: DlcloseRace.LateHookThreadEndsWhileAnotherThreadUnloads.
//
// Final sweep: exit() runs only the CALLING thread's thread_local destructors,
// once, before atexit handlers and static destructors, and never runs pthread
// key destructors. So a stub made during exit() by a thread whose hook cannot
// run any more (the main thread's first use in a static destructor; a static
// destructor on a non-main thread that called exit(), e.g. the last thread
// after the main thread's pthread_exit) would be lost. A library destructor
// (run by _dl_fini, after every atexit handler and static destructor, or at
// dlclose) runs the sequence for whatever stub the calling thread still has.
#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "core/internal/exit.h"
#include "core/internal/stub.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

bool IsMainThread() { return syscall(SYS_gettid) == getpid(); }

constinit std::atomic<bool> g_main_thread_exited{false};

struct NativeExitHook {
  ~NativeExitHook() {
    // On the main thread this runs only inside exit() (or on return from
    // main: glibc runs no thread_local destructor at its pthread_exit).
    if (IsMainThread()) g_main_thread_exited.store(true, std::memory_order_relaxed);
    RunThreadExit(ExitCause::kThreadEnd);
  }
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

LateKey& TheLateKey() {
  static LateKey late_key;
  return late_key;
}

// Makes the object that holds this code permanent (see the top of the file).
// In an executable this is a harmless no-op. Racing callers may both pin:
// harmless, the object is never unloaded either way.
void PinThisLibrary() {
  static std::atomic<bool> pinned{false};
  if (pinned.load(std::memory_order_acquire)) return;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&RunLateExit), &info) != 0 && info.dli_fname != nullptr) {
    // The handle is never closed: holding it is the point.
    (void)dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
  }
  pinned.store(true, std::memory_order_release);
}

void ArmLateHook() {
  if (IsMainThread()) {
    std::atexit(&RunLateMainExit);  // glibc runs handlers added during exit
  } else {
    PinThisLibrary();  // before arming: the key destructor must never outlive the code
    TheLateKey().Arm();
  }
}

[[gnu::destructor]] void RunFinalExit() {
  if (t_thread.stub != nullptr || t_thread.spare != nullptr) RunThreadExit(ExitCause::kThreadEnd);
}

}  // namespace

bool ProcessExiting() noexcept { return g_main_thread_exited.load(std::memory_order_relaxed); }

void ArmExitHook() {
  if (t_thread.phase == Phase::kExited) {
    ArmLateHook();
    return;
  }
  // The first pass through this declaration on a thread registers the
  // destructor; later passes cost a TLS guard check.
  static thread_local NativeExitHook hook;
  (void)hook;
  // Once per thread: on the main thread, the key is what runs the sequence if
  // it ends with pthread_exit (see above). At exit() it never fires.
  static thread_local constinit bool checked_main = false;
  if (!checked_main) {
    checked_main = true;
    if (IsMainThread()) TheLateKey().Arm();
  }
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
