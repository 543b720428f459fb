// Internal: ending the tasks still open on a thread, for its exit sequence.
// Beginning and ending one task is core/internal/task_frame.h (reached by
// tls::TaskScope); both are defined in task_frames.cc. Not part of the API.
#ifndef TLS_CORE_INTERNAL_TASK_FRAMES_H_
#define TLS_CORE_INTERNAL_TASK_FRAMES_H_

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
struct Stub;
}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// Ends every task still open on the calling thread, innermost first: each
// runs its exit rounds and gives the thread back what it hid.
void EndOpenTasks();

// The calling thread's own stub, whether or not tasks are open on it (open
// tasks hide it in the outermost frame), or nullptr. For thread-scoped Slots.
Stub* ThreadStubUnderTasks() noexcept;
// The same, made if missing (a thread-scoped store inside a task on a thread
// with no stub yet): made as the thread's, with its exit hook, and hidden under
// the open tasks until they end. Throws std::bad_alloc.
Stub& MakeThreadStubUnderTasks();

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_TASK_FRAMES_H_
