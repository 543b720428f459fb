// The frames of open tasks (core/internal/task_frame.h; the public side is
// core/task.h). A task swaps the thread's stub for its own:
//
//   BeginTask:  frame <- {t_thread.stub, t_thread.id}; t_thread.task = &frame;
//               the thread now has no stub, or one (the thread's spare, if
//               any) whose table reads through to the snapshot's (no copy),
//               with a new ID.
//   EndTask:    the exit rounds (exit.cc) run over the task's stub; the layer
//               is never closed, and close_values.cc skips a captured value
//               the task stored itself (CapturedByOpenTask); then t_thread
//               gets the frame's state back and the emptied stub is kept as
//               the spare.
// See core/README.md "Tasks".
//
// So every fast path (Get/Find/Set/ID, Slot) is unchanged: it reads t_thread
// as always. Nothing is shared between threads but the immutable snapshot.
#include "core/internal/task_frames.h"

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <utility>

#include "core/internal/captured_values.h"
#include "core/internal/exit.h"
#include "core/internal/stub.h"
#include "core/internal/stub_cache.h"
#include "core/internal/stub_lifecycle.h"
#include "tls/internal/abi.h"
#include "tls/internal/task_frame.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

// Gives the thread back the state `frame` saved, whatever the task left
// behind: runs when the task's exit finishes, or when a forced unwind
// (pthread_exit in a handler or close) leaves it early.
class RestoreOnReturn {
 public:
  explicit RestoreOnReturn(TaskFrame& frame) noexcept : frame_(frame) {}
  ~RestoreOnReturn() {
    DropStubs();  // left over only if the task's exit gave up or was unwound
    t_thread.stub = frame_.saved_stub;
    t_thread.id = frame_.saved_id;
    t_thread.task = frame_.outer;
  }
  RestoreOnReturn(const RestoreOnReturn&) = delete;
  RestoreOnReturn& operator=(const RestoreOnReturn&) = delete;

 private:
  TaskFrame& frame_;
};

// Keeps the ended task's emptied stub (and its table block) for this
// thread's next task, unless there is one already or it grew big; otherwise
// RestoreOnReturn releases it. Not during or after thread exit: nothing would
// free it.
void KeepAsSpare() noexcept {
  Stub* stub = t_thread.stub;
  if (stub == nullptr || t_thread.spare != nullptr || t_thread.phase != Phase::kLive ||
      !CacheableStub(*stub)) {
    return;
  }
  t_thread.spare = DetachStub().release();
  t_thread.spare->role.store(StubRole::kSpare, std::memory_order_release);  // empty: no section
}

// Ends the innermost open task of the calling thread.
void FinishTask(TaskFrame& frame) {
  frame.ended = true;  // first: code run below may call End on it again
  RestoreOnReturn restore(frame);
  RunExitRounds("task exit");
  KeepAsSpare();
}

// Why `frame` cannot be ended by the calling thread now, or nullptr.
const char* WhyNotEndable(const TaskFrame& frame) noexcept {
  if (frame.thread != &t_thread) {
    return "tls::TaskScope ended on another thread than the one that began it";
  }
  if (t_thread.task != &frame) {
    return "tls::TaskScope ended while a task scope begun inside it is still open";
  }
  return nullptr;
}

}  // namespace

void BeginTask(TaskFrame& frame, const CapturedValues* captured) {
  frame.captured = captured;
  frame.saved_stub = t_thread.stub;
  frame.saved_id = t_thread.id;
  frame.outer = t_thread.task;
  frame.thread = &t_thread;
  t_thread.stub = nullptr;
  t_thread.id = 0;
  t_thread.task = &frame;
  if (captured == nullptr) return;  // the task's stub is made on first use
  try {
    // The task's view reads through to the snapshot: no copy, no reference.
    NewStub(std::exchange(t_thread.spare, nullptr)).values.SetBelow(&captured->table);
  } catch (...) {
    frame.ended = true;
    RestoreOnReturn restore(frame);
    throw;
  }
}

void EndTask(TaskFrame& frame) {
  if (frame.ended) return;
  if (const char* why = WhyNotEndable(frame)) throw std::logic_error(why);
  FinishTask(frame);
}

void EndTaskAtScopeExit(TaskFrame& frame) {
  if (const char* why = WhyNotEndable(frame)) {
    // The thread that began the task still runs on the task's state, and only
    // that thread may touch it: nothing here can make that right.
    std::fprintf(stderr, "tls: %s; terminating\n", why);
    std::terminate();
  }
  FinishTask(frame);
}

void EndOpenTasks() {
  while (TaskFrame* frame = t_thread.task) FinishTask(*frame);
}

namespace {
// The frame of the outermost open task, which keeps the thread's own state.
TaskFrame* OutermostTask() noexcept {
  TaskFrame* frame = t_thread.task;
  if (frame == nullptr) return nullptr;
  while (frame->outer != nullptr) frame = frame->outer;
  return frame;
}
}  // namespace

Stub* ThreadStubUnderTasks() noexcept {
  TaskFrame* frame = OutermostTask();
  return frame == nullptr ? t_thread.stub : frame->saved_stub;
}

namespace {
// Clears the calling thread's view of its open tasks for as long as it lives,
// so that a stub made meanwhile is made as the thread's own; gives the view
// back however the scope ends.
class TasksSetAside {
 public:
  TasksSetAside() noexcept
      : stub_(std::exchange(t_thread.stub, nullptr)),
        id_(std::exchange(t_thread.id, 0)),
        task_(std::exchange(t_thread.task, nullptr)) {}
  ~TasksSetAside() {
    t_thread.stub = stub_;
    t_thread.id = id_;
    t_thread.task = task_;
  }
  TasksSetAside(const TasksSetAside&) = delete;
  TasksSetAside& operator=(const TasksSetAside&) = delete;

 private:
  Stub* const stub_;
  const uint64_t id_;
  TaskFrame* const task_;
};
}  // namespace

Stub& MakeThreadStubUnderTasks() {
  TaskFrame* frame = OutermostTask();
  if (frame == nullptr) return CurrentStub();
  if (frame->saved_stub != nullptr) return *frame->saved_stub;
  // Made as if no task were open (role kThread, a thread ID), then hidden
  // under the tasks like a stub the thread had when they began: the
  // outermost task's end gives it back, with its ID.
  TasksSetAside aside;
  frame->saved_stub = &NewStub();
  frame->saved_id = t_thread.id;
  return *frame->saved_stub;
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
