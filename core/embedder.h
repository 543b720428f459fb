// File: core/embedder.h
//
// The engine's interface for embedders: language bindings that run the engine
// inside another runtime (the Python binding, //bindings). NOT for
// applications: a C++ service needs only "tls/tls.h", and nothing here is
// covered by its compatibility promises beyond what the in-tree binding needs.
// Reached as #include "tls/embedder.h" from //core:embedder, whose visibility
// is the binding and the tests.
//
// An embedder keeps its own values in one tls::Slot value (the Python
// binding: one dict per thread), so the engine's rules reach them only
// through that value's close(). What such a close needs to apply the rules as
// the engine does for keyed values is here, written once:
//   - ending a thread's storage early, when the runtime's own thread ends
//     before the native thread does (RunThreadExit);
//   - which tasks are open on the calling thread (CurrentTask, TaskOpen): a
//     value a task's snapshot gave it is never closed by that task;
//   - whether the round of closes running now is at an end or a Reset
//     (ClosingAtEnd), and closing each distinct object once per round
//     (CloseRound);
//   - the forced unwind (pthread_exit) that must pass through the embedder's
//     frames (ForcedUnwind).
//
// Example (a Slot value's close over its own objects):
//   void MyValues::Close() {
//     tls::embedder::CloseRound round;
//     for (Object* o : objects_) {
//       if (!round.Claim(o)) continue;  // the same object under two keys
//       if (CapturedByOpenTask(o)) continue;  // via CurrentTask/TaskOpen
//       CallClose(o);
//     }
//   }
#ifndef TLS_CORE_EMBEDDER_H_
#define TLS_CORE_EMBEDDER_H_

#include <cstddef>
#include <unordered_set>

#include "tls/internal/abi.h"
#include "tls/internal/forced_unwind.h"

namespace tls::inline TLS_ABI_NAMESPACE::embedder {

// ---- Thread exit -------------------------------------------------------------

enum class ExitCause {
  kThreadEnd,  // the thread is really ending (what the native hook passes)
  kEarly,      // the runtime's thread ends while the native thread goes on;
               // a later tls call on it starts a fresh store as normal
};

// Runs the calling thread's exit sequence now (AtExit handlers, then closes,
// in rounds; core/README.md) and frees its store. Call it where the runtime's
// thread ends, e.g. when Python clears a thread state. Throws nothing but a
// ForcedUnwind (a handler or close called pthread_exit), which must pass.
TLS_API void RunThreadExit(ExitCause cause);

// Sets the hook the engine runs on a thread just before it makes that
// thread's store: its first tls call that needs one (Set, ID, AtExit, a Slot
// store...), or the first after Unload or an early exit. Not for a task's
// store, nor on an ending thread. Made for a runtime whose own thread end
// must be armed whoever stores first, the runtime's code or C++ code it calls
// (the Python binding arms the Python thread's exit there, so C++ values set
// by a user's extension close before join() returns). It runs outside the
// engine's own sections, though under whatever the storing code holds (a
// walk's visitor that stores runs it under that Slot's retire lock), and may
// call anything, tls included (a store its code makes is the one the
// triggering call then uses; no hook runs for it). Inside a ThreadSlot store
// made from a task it runs with the tasks set aside. One hook per process:
// the last set wins; nullptr removes it. It must not throw.
TLS_API void SetThreadStoreHook(void (*hook)() noexcept) noexcept;

// ---- Tasks -------------------------------------------------------------------

// An open task's identity (a tls::TaskScope's frame), to compare only.
using TaskId = const void*;

// The innermost task open on the calling thread, nullptr outside any. Read it
// right after a tls::TaskScope was made to learn that task's identity.
TLS_API TaskId CurrentTask() noexcept;

// Whether `task` is still open on the calling thread (the thread's exit ends
// the tasks still open, innermost first). False for nullptr. A value that a
// still-open task's snapshot gave it is not that task's to close.
TLS_API bool TaskOpen(TaskId task) noexcept;

// ---- Rounds of closes --------------------------------------------------------

// Whether the innermost round of closes running on the calling thread is one
// at the thread's or a task's end; false in a Reset (and outside any round).
// At an end, a value a live snapshot holds is left for the snapshot's last
// release to close; in a Reset every value closes at once.
TLS_API bool ClosingAtEnd() noexcept;

// A set of object identities for one pass over a thread's values. The first
// 16 live inline (a linear scan, nothing allocated); the rest in a hash set.
// Not thread-safe: a local of one call.
class IdentitySet {
 public:
  bool Contains(const void* p) const {
    for (size_t i = 0; i < size_; ++i) {
      if (inline_[i] == p) return true;
    }
    return !rest_.empty() && rest_.count(p) != 0;
  }

  // Adds `p`; returns whether it was new.
  bool Insert(const void* p) {
    if (Contains(p)) return false;
    if (size_ < kInline) {
      inline_[size_++] = p;
    } else {
      rest_.insert(p);
    }
    return true;
  }

 private:
  static constexpr size_t kInline = 16;
  const void* inline_[kInline];
  size_t size_ = 0;
  std::unordered_set<const void*> rest_;
};

// One round of closes over an embedder's own objects, from its Slot value's
// close(): the engine's rule that each distinct object closes once, however
// many keys hold it. Make it on the stack at the start of the close.
class CloseRound {
 public:
  CloseRound() noexcept : at_end_(ClosingAtEnd()) {}

  // Whether this round is at an end (see ClosingAtEnd), read when it began.
  bool at_end() const noexcept { return at_end_; }

  // True the first time `object` is offered in this round (close it then),
  // false after. The caller keeps each object alive for the round.
  bool Claim(const void* object) { return claimed_.Insert(object); }

 private:
  bool at_end_;
  IdentitySet claimed_;
};

// ---- Forced unwind -----------------------------------------------------------

// The engine's own type for what pthread_exit throws through C++ frames
// (tls/internal/forced_unwind.h). An embedder frame between the runtime and a
// user callback catches it only to note the thread is ending, then rethrows:
//   try { f(); } catch (const tls::embedder::ForcedUnwind&) { ended = true; throw; }
// and is marked TLS_EMBEDDER_CATCHES_FORCED_UNWIND (UBSan off for it).
using ForcedUnwind = internal::ForcedUnwind;
#define TLS_EMBEDDER_CATCHES_FORCED_UNWIND TLS_CATCHES_FORCED_UNWIND

}  // namespace tls::inline TLS_ABI_NAMESPACE::embedder

#endif  // TLS_CORE_EMBEDDER_H_
