// File: core/slot.h
//
// tls::Slot<T> is the typed fast path: a per-thread T reached by index, for code
// that knows its "key" when it starts (a logger's buffer, a request context).
// A get is one thread_local read plus an index into the thread's slot array; no
// hashing, no type check at run time. Slot values follow the same rules as keyed
// values: closed (Close()/close(), as MakeData) at Reset and at thread exit,
// dropped unclosed by Del, Unload and by Set over an existing value.
//
// A Slot is an object like any other: a global, or a member of a connection, a
// cache or a pool, made and destroyed on any thread any number of times.
// Destroying it releases every thread's value of it at once, on the
// destroying thread: each is handed to the retire function (if any), closed,
// and destroyed, before ~Slot returns; threads that hold values keep running
// meanwhile (using the Slot itself while it is destroyed is undefined, as for
// any object). Its index goes to the next Slot made, which never sees an old
// value. One exception, for globals: once the process is exiting (the main
// thread's exit sequence ran, in exit() or on return from main, if the main
// thread used tls), a destroyed Slot releases nothing and keeps its index, so
// detached threads still running keep their values until they end.
//
// Example:
//   struct Buffer { std::string text; void Close() { Flush(text); } };
//   tls::Slot<Buffer> buffer;             // global
//
//   buffer.GetOrEmplace().text += "x";   // creates this thread's Buffer once
//   if (Buffer* b = buffer.Get()) ...     // nullptr if this thread has none
//   buffer.Emplace("seed");              // replaces (old one destroyed, not closed)
//
// Tasks: a Slot is task-scoped by default (a task starts with it empty and
// closes its own values at its end, like keyed values it set); a
// tls::ThreadSlot<T> (Slot<T, SlotScope::kThread>) keeps one value per thread
// that every task run on the thread sees: a per-worker cache on a pool.
//
//   tls::ThreadSlot<Connection> conn;          // one per pool thread
//   pool.Submit(tls::Wrap([] {                 // every task on that thread
//     Connection& c = conn.GetOrEmplace();     // made once per thread,
//   }));                                       // closed at the thread's end
//
// All threads at once: ForEachThread visits every live thread's value, from
// any thread (per-thread shards read by an exporter, buffers flushed at
// shutdown). A Slot made with a retire function hands each value to it when
// the engine closes the value (its thread's or task's end, Reset), so a
// total kept by the retire function never loses an ended thread's share;
// tls::Counter ("tls/counter.h") folds ended threads' shares this way.
//
//   struct Hits { std::atomic<int64_t> n{0}; };   // read by other threads: atomic
//   std::atomic<int64_t> ended{0};
//   tls::Slot<Hits> hits([](Hits& h) { ended += h.n.load(); });   // retire
//   hits.GetOrEmplace().n.fetch_add(1, std::memory_order_relaxed);
//   int64_t total = hits.Serialized([&] {          // live + retired, each once
//     int64_t sum = ended.load();
//     hits.ForEachThread([&](const Hits& h) { sum += h.n.load(); });
//     return sum;
//   });
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_SLOT_H_
#define TLS_CORE_SLOT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "tls/internal/abi.h"
#include "tls/internal/data_box.h"
#include "tls/internal/slot_ops.h"
#include "tls/thread_info.h"

namespace tls::inline TLS_ABI_NAMESPACE {

class Counter;

// Whose a Slot's values are when tasks (core/task.h) run on a thread.
enum class SlotScope : uint8_t {
  // The default, for request context: a task starts with the Slot empty, its
  // own values are closed at its end, and the thread's value is hidden while
  // it runs and back after.
  kTask,
  // For per-thread caches (a connection, a buffer, an RNG, an arena): the
  // value is the thread's. Every task that runs on the thread sees it and may
  // set it; a task's end, and Reset or Unload inside a task, leave it alone.
  // It is closed at the thread's end (or by the thread's own Reset, outside
  // any task). Never captured.
  kThread,
};

template <class T, SlotScope Scope = SlotScope::kTask>
class Slot {
 public:
  Slot() : index_(internal::NewSlotIndex()) {}
  // A Slot whose values are handed to `retire` when the engine closes them
  // (at the end of their thread or task, and at Reset): first in that close
  // round, on the owning thread; the round then closes them with its other
  // values. Not for Del, Emplace over a value, or
  // Unload, which drop a value without closing it. retire calls and
  // ForEachThread walks of this Slot never overlap (one lock), so a walk
  // sees each value live or retired, never both and never neither. A retire
  // that throws is reported (ErrorSource::kRetire); the value is still closed.
  // retire runs under the Slot's lock: it may call tls on its thread, but not
  // write Slot values there (that could wait for a walk waiting for the lock).
  explicit Slot(std::function<void(T&)> retire) : Slot() {
    if (!retire) throw std::invalid_argument("tls::Slot: empty retire function");
    retirement_ = internal::NewSlotRetirement(
        kOps, [retire = std::move(retire)](void* p) { retire(*static_cast<T*>(p)); });
    ops_ = &retirement_->ops;
  }
  // Releases every thread's value: see the top of the file. Costs one walk
  // of every thread (one system call for the walk), or nothing if no value
  // was ever stored.
  ~Slot() {
    internal::ReleaseSlot(index_, retirement_, stored_.load(std::memory_order_relaxed));
    if (retirement_ != nullptr) internal::EndSlotRetirement(retirement_);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  // This thread's value, or nullptr. Never creates anything.
  T* Get() const noexcept {
    if constexpr (Scope == SlotScope::kThread) {
      return static_cast<T*>(internal::ThreadSlotGet(index_));
    } else {
      return static_cast<T*>(internal::SlotGet(index_));
    }
  }

  // Constructs this thread's value from `args`, replacing (destroying without
  // closing) any previous one. Returns the new value.
  template <class... A>
  T& Emplace(A&&... args) {
    auto value = std::make_unique<T>(std::forward<A>(args)...);
    T& ref = *value;
    // Read on every store, written once: ~Slot skips its walk if still false.
    if (!stored_.load(std::memory_order_relaxed)) stored_.store(true, std::memory_order_relaxed);
    Store(value.get(), ops_);
    (void)value.release();  // the slot owns it now
    return ref;
  }
  T& Set(T value) { return Emplace(std::move(value)); }

  // This thread's value, default-constructing it on first use.
  T& GetOrEmplace() {
    if (T* p = Get()) return *p;
    return Emplace();
  }

  // Removes this thread's value without closing it. Returns whether there was one.
  bool Del() { return Store(nullptr, nullptr); }

  size_t index() const noexcept { return index_; }

  // Calls visit(T&), or visit(const tls::ThreadInfo&, T&), once for the value
  // of every live thread (and open task) that has one, from any thread.
  // Guarantees:
  //   - a value is visited whole or not at all, and is never destroyed or
  //     replaced while visit runs: its owner's Emplace, Del, Reset and exit
  //     wait until visit returns (keep visit short);
  //   - threads that start or end during the walk are visited or not, each
  //     at most once; with a retire function, see Slot(retire);
  //   - visit may call any tls function on the calling thread, including on
  //     its own value (which it then handles as any code of its thread would).
  //     Keyed writes (Set, Del, AtExit) never wait for a Slot walk. A Slot
  //     write (Emplace, Del, Reset, a task's end) waits while another
  //     thread's walk reads the batch that holds this thread (below); so two
  //     threads reading each other's batches and each writing its own Slot
  //     values in the visitor wait for each other for ever. Don't write Slot values in a visitor if
  //     other threads walk at the same time.
  // The owner keeps running while visit reads: T must be safe to read while
  // its owner writes it (atomics, or a lock of T's own). visit must not wait
  // for another thread's Slot write (that thread may be one the walk holds). A walk costs one
  // system call (a process-wide barrier, skipped when no other thread has a stub), a fence per 32
  // places of the engine's thread table and a read per visited thread; while it runs, owners' Slot
  // writes take a fenced path and wait only while the walk reads the batch of 32 places that holds
  // their thread (at most 32 visits); Get pays nothing.
  template <class F>
  void ForEachThread(F&& visit) const {
    Walk(std::forward<F>(visit));
  }

  // Runs f() with this Slot's retire calls held off (walks inside f are
  // allowed), and returns what it returns: reading what retire accumulates
  // together with a walk gives every thread's share exactly once.
  template <class F>
  decltype(auto) Serialized(F&& f) const {
    if (retirement_ == nullptr) return std::forward<F>(f)();
    std::lock_guard<std::recursive_mutex> hold(retirement_->lock);
    return std::forward<F>(f)();
  }

 private:
  friend class Counter;  // shares the Slot's lock (retirement_->lock)

  bool Store(void* value, const internal::SlotOps* ops) {
    if constexpr (Scope == SlotScope::kThread) {
      return internal::ThreadSlotStore(index_, value, ops);
    } else {
      return internal::SlotStore(index_, value, ops);
    }
  }

  template <class F>
  void Walk(F&& visit) const {
    using Visit = std::remove_reference_t<F>;
    internal::SlotForEachThread(
        index_, retirement_, /*unused=*/false,
        [](void* f, const ThreadInfo& who, void* value) {
          Visit& fn = *static_cast<Visit*>(f);
          if constexpr (std::is_invocable_v<Visit&, const ThreadInfo&, T&>) {
            fn(who, *static_cast<T*>(value));
          } else {
            fn(*static_cast<T*>(value));
          }
        },
        const_cast<void*>(static_cast<const void*>(std::addressof(visit))));
  }

  static void CloseThunk(void* p) { internal::CloseValue(*static_cast<T*>(p)); }
  static void DestroyThunk(void* p) noexcept { delete static_cast<T*>(p); }
  static constexpr internal::SlotOps kOps{internal::kIsCloser<T> ? &CloseThunk : nullptr,
                                          &DestroyThunk};

  size_t index_;
  const internal::SlotOps* ops_ = &kOps;
  internal::SlotRetirement* retirement_ = nullptr;
  std::atomic<bool> stored_{false};  // a value was stored, on some thread
};

// A thread-scoped Slot: see SlotScope::kThread.
template <class T>
using ThreadSlot = Slot<T, SlotScope::kThread>;

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_SLOT_H_
