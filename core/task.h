// File: core/task.h
//
// Task-local storage: carry a thread's values into tasks that run on other
// threads (thread pools, std::async, boost::asio, a hand-written pool), and give
// each task the lifetime a goroutine had in go-tls. Included by "tls/tls.h".
//
// Capture() takes a snapshot of the calling thread's keyed values (the handles
// are shared, not the values copied; a thread with no values captures for
// nothing). Running a task in a snapshot, on any thread, makes the task behave
// like a thread of its own:
//   - Get/Find see the snapshot's values; the running thread's own values are
//     hidden (neither visible nor closed) and are back, unchanged, when the
//     task ends, however it ends (return, exception, pthread_exit);
//   - Set/Del/Reset/Unload act on the task's view only; ID() is the task's own
//     (new, never reused), taken on first use;
//   - AtExit handlers registered in the task run when it ends, newest first,
//     with its values readable; then the values the task set itself are closed,
//     once. Captured values are never closed by a task: they belong to the
//     thread that captured them (the task's handles only keep them alive);
//   - a captured value closes once, when its thread's store and every snapshot
//     holding it have let go: a thread (or task) that ends while a snapshot
//     still holds one of its values leaves the close to that snapshot's last
//     copy, released on whichever thread drops it (after the task that ran in
//     it, say), so a fire-and-forget task never sees its submitter's values
//     closed under it. Explicit closes stay explicit: Reset and Data::Close
//     close at once, whatever snapshots hold. A deferred close's error goes to
//     the error handler; one that calls pthread_exit terminates (a snapshot
//     is released in a noexcept destructor). A snapshot that is never
//     released (leaked, or queued when the process exits) never closes it;
//   - Python values follow the same rule (bindings/snapshot_holds.h);
//   - Slot<T> values are task-local too: a task starts with every Slot empty;
//     what it stores is closed and destroyed when it ends. Slots are not
//     captured (a Slot owns its value; there is no handle to share).
// One snapshot may be run by any number of tasks at once, on any threads.
//
// Example:
//   tls::Set("request_id", tls::MakeData(std::string("r-42")));
//   pool.post(tls::Wrap([] {                  // captured here, on the submitter
//     Log(tls::Get("request_id")->Value<std::string>());   // "r-42", on a pool thread
//     tls::Set("scratch", tls::MakeData(Buffer{}));       // closed when the task ends
//   }));
//
//   tls::Snapshot snap = tls::Capture({"request_id"});    // only these keys
//   std::async([snap] { return tls::Run(snap, Handle); });
//
//   { tls::TaskScope task(snap); Work(); }   // the same, as a scope
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_TASK_H_
#define TLS_CORE_TASK_H_

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <utility>

#include "tls/internal/abi.h"
#include "tls/internal/task_frame.h"
#include "tls/key.h"

namespace tls::inline TLS_ABI_NAMESPACE {

// An immutable set of keyed values taken from a thread by Capture. Cheap to
// copy (copies share it) and safe to use from many threads at once. A
// default-constructed Snapshot is empty: a task run in it starts with nothing.
class Snapshot {
 public:
  Snapshot() noexcept = default;

  // How many values it holds.
  TLS_API size_t size() const noexcept;
  bool empty() const noexcept { return size() == 0; }

 private:
  friend class TaskScope;
  TLS_API friend Snapshot Capture();
  TLS_API friend Snapshot Capture(std::span<const Key> keys);
  explicit Snapshot(std::shared_ptr<const internal::CapturedValues> values) noexcept
      : values_(std::move(values)) {}

  std::shared_ptr<const internal::CapturedValues> values_;
};

// Capture returns a snapshot of the calling thread's keyed values (inside a
// task: of the task's view). Allocates only if there is something to capture.
// Example: tls::Snapshot snap = tls::Capture();
TLS_API Snapshot Capture();
// Only `keys`; keys that are not set are left out. Keys known only at run
// time come as a span (of a std::vector<tls::Key>, say).
// Example: tls::Snapshot snap = tls::Capture({"request_id", "user"});
TLS_API Snapshot Capture(std::span<const Key> keys);
inline Snapshot Capture(std::initializer_list<Key> keys) {
  return Capture(std::span<const Key>(keys.begin(), keys.size()));
}

// TaskScope runs the code in its lifetime as a task in `snapshot` (see the top
// of this file). It must end on the thread that began it, innermost first
// (scopes nest). Not copyable, not movable.
// Example: { tls::TaskScope task(snap); Handle(request); }
class TaskScope {
 public:
  explicit TaskScope(const Snapshot& snapshot) {
    frame_.owner = snapshot.values_;
    internal::BeginTask(frame_, frame_.owner.get());
  }
  // A task with nothing captured: the thread's values hidden, a fresh view.
  TaskScope() : TaskScope(Snapshot()) {}
  TaskScope(const TaskScope&) = delete;
  TaskScope& operator=(const TaskScope&) = delete;

  // Ends the task (End, unless it was called). On another thread than the one
  // that began it, or while a scope begun inside it is still open, it cannot
  // give that thread its state back: it prints why and calls std::terminate.
  // May let a forced unwind pass (pthread_exit called by a handler or close).
  ~TaskScope() noexcept(false) {
    if (!frame_.ended) internal::EndTaskAtScopeExit(frame_);
  }

  // Ends the task now: its AtExit handlers run (newest first), the values it
  // set are closed, and the thread's own state is back. Later calls do nothing.
  // Throws std::logic_error, ending nothing, when called on another thread than
  // the one that began the scope, or while a scope begun inside it is open.
  void End() { internal::EndTask(frame_); }

 private:
  // For Run, whose caller holds the snapshot for the whole task: no reference
  // is taken (its count is shared with the submitting thread's cache line).
  struct Borrow {};
  TaskScope(const Snapshot& snapshot, Borrow) {
    internal::BeginTask(frame_, snapshot.values_.get());
  }
  template <class F, class... A>
  friend decltype(auto) Run(const Snapshot& snapshot, F&& f, A&&... args);

  internal::TaskFrame frame_;
};

// Run calls f(args...) as a task in `snapshot` and returns what it returns.
// The task ends (handlers, closes, the thread's state back) before Run
// returns or rethrows.
// Example: int n = tls::Run(snap, [] { return Count(); });
template <class F, class... A>
decltype(auto) Run(const Snapshot& snapshot, F&& f, A&&... args) {
  TaskScope task(snapshot, TaskScope::Borrow{});
  return std::invoke(std::forward<F>(f), std::forward<A>(args)...);
}

// Wrap captures the calling thread's values now and returns a callable that
// runs f as a task in them, wherever and however often it is called: pass it
// to std::thread, std::async, boost::asio::post or any pool. It is copyable
// when f is, and takes the arguments f takes.
// Example: pool.Submit(tls::Wrap([] { Handle(tls::Get("request")); }));
template <class F>
auto Wrap(F f) {
  return [snapshot = Capture(), f = std::move(f)](auto&&... args) mutable -> decltype(auto) {
    return Run(snapshot, f, std::forward<decltype(args)>(args)...);
  };
}

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_TASK_H_
