// The state a tls::TaskScope keeps (core/task.h). Not API: its fields are the
// engine's; it is here because TaskScope holds it by value (no allocation per
// task).
#ifndef TLS_CORE_INTERNAL_TASK_FRAME_H_
#define TLS_CORE_INTERNAL_TASK_FRAME_H_

#include <cstdint>
#include <memory>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

struct CapturedValues;  // core/internal/captured_values.h
struct Stub;            // core/internal/stub.h

// One open task on a thread. Frames form a stack through `outer`, innermost in
// t_thread.task; each keeps what its thread had before the task began.
struct TaskFrame {
  const CapturedValues* captured = nullptr;  // what the task started with
  // Keeps `captured` alive when the scope's creator may not (a TaskScope made
  // from a temporary); empty when borrowed (tls::Run holds the snapshot).
  std::shared_ptr<const CapturedValues> owner;
  Stub* saved_stub = nullptr;  // the thread's (or outer task's) state, hidden
  uint64_t saved_id = 0;
  TaskFrame* outer = nullptr;
  const void* thread = nullptr;  // which thread began it (its t_thread)
  bool ended = false;
};

TLS_API void BeginTask(TaskFrame& frame, const CapturedValues* captured);
// Throws std::logic_error (and ends nothing) if `frame` is not the innermost
// open task of the calling thread. Does nothing if it has ended.
TLS_API void EndTask(TaskFrame& frame);
// EndTask for ~TaskScope: where EndTask would throw, prints why and terminates.
TLS_API void EndTaskAtScopeExit(TaskFrame& frame);

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_TASK_FRAME_H_
