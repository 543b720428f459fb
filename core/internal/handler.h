// Internal: the type of an AtExit handler. A move-only `void()` callable, so
// that tls/store.h declares AtExit without <functional> (in libstdc++ 12 with
// C++20 that header alone brings <unordered_map> and <vector>, for the
// searchers: ~0.2 s of every file that includes it), and so that a handler
// may own what cannot be copied (a std::unique_ptr, a promise). A callable of
// up to two words that moves without throwing lives inline (a lambda that
// captures a pointer or two: no allocation); a larger one on the heap. Not
// API; reached through tls/store.h.
#ifndef TLS_CORE_INTERNAL_HANDLER_H_
#define TLS_CORE_INTERNAL_HANDLER_H_

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

class Handler {
  template <class F>
  static constexpr bool kCallable =
      !std::is_same_v<std::remove_cvref_t<F>, Handler> && std::is_invocable_v<std::decay_t<F>&>;

 public:
  Handler() noexcept = default;

  // Holds `f`, or nothing if `f` is an empty function (a null function
  // pointer, an empty std::function): AtExit refuses that. Never a Handler:
  // the move constructor stays the one that moves.
  template <class F>
  requires kCallable<F>
  explicit Handler(F&& f) {  // NOLINT(bugprone-forwarding-reference-overload): kCallable
                             // excludes Handler (the check does not read requires-clauses)
    using Fn = std::decay_t<F>;
    if constexpr (std::is_pointer_v<std::remove_cvref_t<F>>) {
      if (f == nullptr) return;  // a null function pointer
    } else if constexpr (requires { std::as_const(f).operator bool(); }) {
      if (!std::as_const(f)) return;  // an empty std::function
    }
    if constexpr (kInline<Fn>) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
      ops_ = &kInlineOps<Fn>;
    } else {
      ::new (static_cast<void*>(storage_)) Fn*(new Fn(std::forward<F>(f)));
      ops_ = &kHeapOps<Fn>;
    }
  }

  Handler(Handler&& other) noexcept : ops_(std::exchange(other.ops_, nullptr)) {
    if (ops_ != nullptr) ops_->move(other.storage_, storage_);
  }
  Handler& operator=(Handler&& other) noexcept {
    if (this != &other) {
      Reset();
      ops_ = std::exchange(other.ops_, nullptr);
      if (ops_ != nullptr) ops_->move(other.storage_, storage_);
    }
    return *this;
  }
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;
  ~Handler() { Reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  // Runs the callable (which must be held); it stays held.
  void operator()() { ops_->run(storage_); }

 private:
  struct Ops {
    void (*run)(void* storage);
    void (*move)(void* from, void* to) noexcept;  // moves into `to`, destroys `from`
    void (*destroy)(void* storage) noexcept;
  };

  static constexpr size_t kStorage = 2 * sizeof(void*);

  template <class Fn>
  static constexpr bool kInline =
      sizeof(Fn) <= kStorage &&
      alignof(Fn) <= alignof(void*) && std::is_nothrow_move_constructible_v<Fn>;

  template <class Fn>
  static constexpr Ops kInlineOps = {
      [](void* s) { (*std::launder(static_cast<Fn*>(s)))(); },
      [](void* from, void* to) noexcept {
        Fn* f = std::launder(static_cast<Fn*>(from));
        ::new (to) Fn(std::move(*f));
        f->~Fn();
      },
      [](void* s) noexcept { std::launder(static_cast<Fn*>(s))->~Fn(); },
  };

  template <class Fn>
  static constexpr Ops kHeapOps = {
      [](void* s) { (**std::launder(static_cast<Fn**>(s)))(); },
      [](void* from, void* to) noexcept { ::new (to) Fn*(*std::launder(static_cast<Fn**>(from))); },
      [](void* s) noexcept { delete *std::launder(static_cast<Fn**>(s)); },
  };

  void Reset() noexcept {
    if (const Ops* ops = std::exchange(ops_, nullptr)) ops->destroy(storage_);
  }

  alignas(void*) unsigned char storage_[kStorage];
  const Ops* ops_ = nullptr;
};

// Registers `handler` for the calling thread (AtExit); throws
// std::invalid_argument if it holds nothing.
TLS_API void AtExitHandler(Handler handler);

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_HANDLER_H_
