// File: core/slot.h
//
// tls::Slot<T> is the typed fast path: a per-thread T reached by index, for code
// that knows its "key" when it starts (a logger's buffer, a request context).
// A get is one thread_local read plus an index into the thread's slot array; no
// hashing, no type check at run time. Slot values follow the same rules as keyed
// values: closed (Close()/close(), as MakeData) at Reset and at thread exit,
// dropped unclosed by Del, Unload and by Set over an existing value.
//
// A Slot is meant to live as long as the threads that use it (a global or a
// static member). Each Slot takes a fresh index that is never reused; destroying
// a Slot leaves the values other threads hold to their own exit.
//
// Example:
//   struct Buffer { std::string text; void Close() { Flush(text); } };
//   tls::Slot<Buffer> buffer;             // global
//
//   buffer.GetOrEmplace().text += "x";   // creates this thread's Buffer once
//   if (Buffer* b = buffer.Get()) ...     // nullptr if this thread has none
//   buffer.Emplace("seed");              // replaces (old one destroyed, not closed)
#include "tls/internal/require_cxx20.h"  // one clear #error before C++20
#if !defined(TLS_CORE_SLOT_H_) && !defined(TLS_INTERNAL_CXX_TOO_OLD)
#define TLS_CORE_SLOT_H_

#include <cstddef>
#include <memory>
#include <utility>

#include "tls/internal/abi.h"
#include "tls/internal/data_box.h"
#include "tls/internal/slot_ops.h"

namespace tls::inline TLS_ABI_NAMESPACE {

template <class T>
class Slot {
 public:
  Slot() : index_(internal::NewSlotIndex()) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  // This thread's value, or nullptr. Never creates anything.
  T* Get() const noexcept { return static_cast<T*>(internal::SlotGet(index_)); }

  // Constructs this thread's value from `args`, replacing (destroying without
  // closing) any previous one. Returns the new value.
  template <class... A>
  T& Emplace(A&&... args) {
    auto value = std::make_unique<T>(std::forward<A>(args)...);
    T& ref = *value;
    internal::SlotStore(index_, value.get(), &kOps);
    value.release();
    return ref;
  }
  T& Set(T value) { return Emplace(std::move(value)); }

  // This thread's value, default-constructing it on first use.
  T& GetOrEmplace() {
    if (T* p = Get()) return *p;
    return Emplace();
  }

  // Removes this thread's value without closing it. Returns whether there was one.
  bool Del() { return internal::SlotStore(index_, nullptr, nullptr); }

  size_t index() const noexcept { return index_; }

 private:
  static void CloseThunk(void* p) { internal::CloseValue(*static_cast<T*>(p)); }
  static void DestroyThunk(void* p) noexcept { delete static_cast<T*>(p); }
  static constexpr internal::SlotOps kOps{internal::kIsCloser<T> ? &CloseThunk : nullptr,
                                          &DestroyThunk};

  size_t index_;
};

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_SLOT_H_
