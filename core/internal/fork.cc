// One pthread_atfork registration for the whole engine (fork.h).
#include "core/internal/fork.h"

#include <pthread.h>

#include <atomic>
#include <cstddef>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

constexpr size_t kUnits = static_cast<size_t>(ForkUnit::kCount);

// Each unit's handlers, published with release once registered. A fork that
// starts while a unit registers runs that unit's handlers or none of them.
struct Entry {
  std::atomic<bool> ready{false};
  ForkHandlers handlers;
};
constinit Entry g_units[kUnits];

template <void (*ForkHandlers::*which)() noexcept>
void RunInOrder(bool reverse) noexcept {
  for (size_t n = 0; n < kUnits; ++n) {
    Entry& e = g_units[reverse ? kUnits - 1 - n : n];
    if (!e.ready.load(std::memory_order_acquire)) continue;
    if (auto* fn = e.handlers.*which) fn();
  }
}

void Prepare() { RunInOrder<&ForkHandlers::prepare>(false); }
void Parent() { RunInOrder<&ForkHandlers::parent>(true); }
void Child() { RunInOrder<&ForkHandlers::child>(false); }

}  // namespace

void RegisterForkHandlers(ForkUnit unit, ForkHandlers handlers) noexcept {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, [] { pthread_atfork(&Prepare, &Parent, &Child); });
  Entry& e = g_units[static_cast<size_t>(unit)];
  if (e.ready.load(std::memory_order_acquire)) return;
  // Units register from their own pthread_once, so no two calls race here.
  e.handlers = handlers;
  e.ready.store(true, std::memory_order_release);
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
