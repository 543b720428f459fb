// Internal: closing and releasing a stub's values, shared by Reset and exit.
#ifndef TLS_CORE_INTERNAL_CLOSE_VALUES_H_
#define TLS_CORE_INTERNAL_CLOSE_VALUES_H_

#include "core/internal/stub.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// When a round of closes happens, which decides what a captured value does.
enum class CloseTime {
  kNow,    // Reset: every value closes now, captured or not
  kAtEnd,  // the thread's or task's end: a value a live snapshot holds is
           // closed by the last snapshot's release instead (data_box.h)
};

// Detaches every value of `stub` (keyed values and slot values) so the stub is
// empty of values, then closes each detached value once (errors reported, not
// thrown), then releases them. User code runs only after the detach and never
// through `stub`, so closes and destructors may call any tls function,
// Unload included. Inside a task, values its snapshot gave it are skipped.
void CloseAllValues(Stub& stub, CloseTime when);

// Whether the innermost round of closes running on the calling thread is one
// at the thread's or a task's end (kAtEnd); false outside any round. For the
// Python binding, whose values all live in one Slot value (PyState) and follow
// the same rule as keyed values: its Close leaves a value a live snapshot
// holds to that snapshot's release at an end, and closes it at once in Reset.
bool ClosingAtEnd() noexcept;

// Closes one detached slot value, if it holds one and its type has a close;
// an error is reported (ErrorSource::kClose), not thrown. Not for a cell still
// in a stub: the close runs user code.
void CloseCell(SlotCell& cell);

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_CLOSE_VALUES_H_
