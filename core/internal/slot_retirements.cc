// The records of Slots made with a retire function (slot_retirements.h), and
// their lock across fork.
#include "core/internal/slot_retirements.h"

#include <pthread.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <new>
#include <utility>

#include "core/internal/fork.h"
#include "tls/internal/abi.h"
#include "tls/internal/slot_ops.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {
// Every SlotRetirement not yet freed, newest first (slot_retirements.h), for
// the fork child's lock reset. The lock is taken when a record is made or
// freed, and across fork: never on a store, a get or a walk.
constinit std::mutex g_retirements_lock;
constinit SlotRetirement* g_retirements = nullptr;

void FreeRetirement(SlotRetirement* r) noexcept {
  {
    std::lock_guard<std::mutex> hold(g_retirements_lock);
    (r->prev ? r->prev->next : g_retirements) = r->next;
    if (r->next) r->next->prev = r->prev;
  }
  delete r;
}

constexpr uint64_t kEnded = 1;  // SlotRetirement::holds: the Slot is gone
constexpr uint64_t kValue = 2;  // one value alive

// In a fork child only the forking thread exists. A retire lock that another
// thread held at the fork (inside a walk of the Slot, a retire, Serialized:
// a Counter::Read, say) would stay held for ever, and the child's walks,
// Reads and retires (its Reset, its exit) would wait on it; one the forking
// thread held cannot be unlocked or re-entered there either (a recursive
// mutex checks its owner's thread id, which the child's thread does not
// keep). So the child starts every lock afresh.
// The list itself is held across the fork (prepare/parent), so the child
// never sees it half linked.
void ResetRetirementLocksInForkChild() noexcept {
  new (&g_retirements_lock) std::mutex();
  for (SlotRetirement* r = g_retirements; r != nullptr; r = r->next) {
    new (&r->lock) std::recursive_mutex();
  }
}

void RegisterForkReset() noexcept {
  static pthread_once_t once = PTHREAD_ONCE_INIT;  // fork.h: why not a static
  pthread_once(&once, [] {
    RegisterForkHandlers(ForkUnit::kSlotRetirements,
                         {.prepare = []() noexcept { g_retirements_lock.lock(); },
                          .parent = []() noexcept { g_retirements_lock.unlock(); },
                          .child = &ResetRetirementLocksInForkChild});
  });
}
}  // namespace

SlotRetirement* NewSlotRetirement(const SlotOps& ops, std::function<void(void*)> retire) {
  RegisterForkReset();
  auto* retirement = new SlotRetirement();  // freed: slot_retirements.h
  retirement->ops = ops;
  retirement->ops.retirement = retirement;
  retirement->retire = std::move(retire);
  std::lock_guard<std::mutex> hold(g_retirements_lock);
  retirement->next = g_retirements;
  if (g_retirements) g_retirements->prev = retirement;
  g_retirements = retirement;
  return retirement;
}

void EndSlotRetirement(SlotRetirement* retirement) noexcept {
  std::function<void(void*)> retire;
  {
    std::lock_guard<std::recursive_mutex> hold(retirement->lock);
    retire.swap(retirement->retire);
  }
  // No value left anywhere: nothing points at the record any more.
  if (retirement->holds.fetch_or(kEnded, std::memory_order_acq_rel) == 0) {
    FreeRetirement(retirement);
  }
  // `retire` (and what it captured) is destroyed here, outside the lock.
}

void HoldRetirement(SlotRetirement& retirement) noexcept {
  retirement.holds.fetch_add(kValue, std::memory_order_relaxed);
}

void ReleaseRetirement(SlotRetirement& retirement) noexcept {
  if (retirement.holds.fetch_sub(kValue, std::memory_order_acq_rel) == kValue + kEnded) {
    FreeRetirement(&retirement);
  }
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
