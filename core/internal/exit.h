// Internal: the thread-exit sequence and the hooks that start it.
#ifndef TLS_CORE_INTERNAL_EXIT_H_
#define TLS_CORE_INTERNAL_EXIT_H_

#include <string_view>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

enum class ExitCause {
  kThreadEnd,  // the native hook: the thread is really ending
  kEarly,      // someone (the Python binding) ends this thread's TLS while the
               // thread goes on; later use starts a fresh stub as normal
};

// Runs the exit sequence for the calling thread's stub (handlers, then closes,
// in rounds; see core/README.md) and frees it. Throws nothing but a forced
// unwind (pthread_exit called by a handler or a close), which it lets pass:
// the interrupted round's remaining callbacks are dropped, and what the stub
// still holds is handled when the thread really ends (report.h).
void RunThreadExit(ExitCause cause);

// The rounds of the exit sequence over the calling thread's current stub (the
// thread's, or an ending task's) until it is empty (left to the caller) or
// gone. `what` ("thread exit", "task exit") names it if it gives up after
// kMaxExitRounds rounds.
void RunExitRounds(std::string_view what);

// Drops the calling thread's stub unclosed and unrun (what exit gave up on,
// or what an unwound task left), and any stub destructors make meanwhile.
void DropStubs() noexcept;

// Whether the process is exiting: the main thread's exit sequence has run
// (inside exit(), or on return from main), if the main thread ever used tls.
// Static destructors run after it.
bool ProcessExiting() noexcept;

// Makes sure the exit sequence runs when the calling thread ends. Called once
// per stub creation; cheap after the first call on a thread.
void ArmExitHook();

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_EXIT_H_
