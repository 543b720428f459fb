// Internal: the engine's fork handlers, in one place and in a stated order.
// Not part of the API.
//
// A fork child has only the forking thread. Every lock another thread held at
// the fork stays held for ever in the child, and every stub another thread
// owned is abandoned there. Each unit that keeps such state hands its reset
// to this one; one pthread_atfork registration runs them, so their order is
// the order of ForkUnit below, whatever order the units were first used in:
//   prepare: in ForkUnit order (in the parent, before the fork)
//   parent:  in reverse ForkUnit order (in the parent, after the fork)
//   child:   in ForkUnit order (in the child)
// The child resets are independent of each other today; the order is fixed
// so that one that comes to depend on another has an order to rely on.
//
// Registration is lazy, at each unit's first use: before it, the unit holds
// nothing a fork could break. pthread_once (not a function-local static):
// glibc's once starts again in a child whose fork interrupted it, a static's
// init guard stays taken. glibc drops the handlers when the library that
// registered them is unloaded (dlclose).
#ifndef TLS_CORE_INTERNAL_FORK_H_
#define TLS_CORE_INTERNAL_FORK_H_

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// A lock held across the fork is taken in prepare in this order, so a lock
// that code may hold while it takes another comes first: a retire function
// (under its retirement's lock) may make the calling thread's stub, which
// takes the registry's table lock, so kRegistry is last.
enum class ForkUnit {
  kStubCache,        // stub_cache.cc: the cache's try-lock and what it held
  kSlotRetirements,  // slot_retirements.cc: the retirement list's lock (held across fork)
  kSlotIndexes,      // slots.cc: the free slot indexes' lock (held across fork)
  kRegistry,         // registry.cc: the table lock (held across fork), walker
                     // records, the barrier lock, lost stubs
  kCount,
};

// What a unit does around a fork; any of the three may be null.
struct ForkHandlers {
  void (*prepare)() noexcept = nullptr;
  void (*parent)() noexcept = nullptr;
  void (*child)() noexcept = nullptr;
};

// Makes `handlers` run at every later fork, in `unit`'s place. Idempotent and
// cheap after the first call per unit; safe from any thread.
void RegisterForkHandlers(ForkUnit unit, ForkHandlers handlers) noexcept;

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_FORK_H_
