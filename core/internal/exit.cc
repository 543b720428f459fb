// The exit sequence. Lifecycle, as promised in core/tls.h and core/README.md:
//
//   round := if the stub has handlers: take them all, run them newest first
//            (values still readable); else: close and release every value.
//   repeat rounds until the stub is empty, then free it.
//
// Handlers always run before the values they may read are closed; a handler
// or value added by a round is handled by a later round. Every user callback
// runs with nothing of the stub borrowed across it: after it returns we look
// the stub up again through t_thread, because the callback may have called
// Unload (which frees the stub) or created a new one.
#include "core/internal/exit.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/internal/close_values.h"
#include "core/internal/registry.h"
#include "core/internal/report.h"
#include "core/internal/stub.h"
#include "core/internal/stub_cache.h"
#include "core/internal/stub_lifecycle.h"
#include "core/internal/task_frames.h"
#include "tls/internal/abi.h"
#include "tls/store.h"  // kMaxExitRounds

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

void RunHandlerRound(Stub& stub) {
  const uint64_t id = stub.id.load(std::memory_order_relaxed);
  std::vector<Handler> round;
  {
    OwnerWriteSection write(stub, StubPart::kTable);
    round.swap(stub.handlers);
  }
  for (auto it = round.rbegin(); it != round.rend(); ++it) {
    // Unload in a handler drops the handlers still waiting in this round.
    if (t_thread.id != id) break;
    RunContained(ErrorSource::kAtExitHandler, *it);
  }
  round.clear();  // handler destructors may call tls, Unload included
  // Hand the capacity back (as CloseAllValues does with the table), so a
  // reused stub's first AtExit does not allocate.
  Stub* current = IfStillCurrent(stub);
  if (current != nullptr && current->handlers.capacity() == 0) {
    OwnerWriteSection write(*current, StubPart::kTable);
    current->handlers.swap(round);
  }
}

void GiveUp(std::string_view what) {
  Report(ErrorSource::kExitRounds,
         std::string(what) + " gave up after " + std::to_string(kMaxExitRounds) +
             " rounds: handlers or values keep being added during exit; "
             "the rest are dropped without running or closing",
         nullptr);
  DropStubs();
}

// Sets the thread's phase when the sequence ends, normally or by a forced
// unwind out of a callback (an early run that pthread_exit interrupts leaves
// the phase as it was, so the native hook finishes the sequence).
class PhaseOnReturn {
 public:
  explicit PhaseOnReturn(Phase after) noexcept : after_(after) {}
  ~PhaseOnReturn() { t_thread.phase = after_; }
  PhaseOnReturn(const PhaseOnReturn&) = delete;
  PhaseOnReturn& operator=(const PhaseOnReturn&) = delete;

 private:
  Phase after_;
};

}  // namespace

void DropStubs() noexcept {
  // Dropping may run destructors that make a new stub; stop after as many
  // tries as exit has rounds.
  for (int i = 0; i < kMaxExitRounds && t_thread.stub != nullptr; ++i) DetachStub();
}

void RunThreadExit(ExitCause cause) {
  // A nested call (e.g. from a close during this very sequence) has nothing to
  // add: the running loop will see whatever it would have handled.
  const Phase before = t_thread.phase;
  if (before == Phase::kExiting) return;
  t_thread.phase = Phase::kExiting;
  // An early run leaves the thread as it found it: if the native hook has
  // already run, a later stub still needs the late hook.
  PhaseOnReturn restore(cause == ExitCause::kThreadEnd ? Phase::kExited : before);
  // Tasks still open here were never ended (exit() called inside one, or a
  // thread ended without unwinding): end them, innermost first, so that the
  // thread's own stub is back and runs its exit below.
  EndOpenTasks();
  RunExitRounds("thread exit");
  DetachStub();  // empty now: cached for another thread, or freed
  if (Stub* spare = std::exchange(t_thread.spare, nullptr)) ReleaseStub(spare);
}

void RunExitRounds(std::string_view what) {
  for (int round = 0; Stub* stub = t_thread.stub; ++round) {
    if (stub->empty()) break;  // nothing left that could run user code
    if (round == kMaxExitRounds) {
      GiveUp(what);
      break;
    }
    if (!stub->handlers.empty()) {
      RunHandlerRound(*stub);
    } else {
      CloseAllValues(*stub, CloseTime::kAtEnd);
    }
  }
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
