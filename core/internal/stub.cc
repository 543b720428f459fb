#include "core/internal/stub.h"

#include <atomic>

#include "core/internal/exit.h"
#include "core/internal/registry.h"
#include "core/internal/slot_retirements.h"
#include "core/internal/stub_cache.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

thread_local constinit ThreadState t_thread;

// Every byte of a stub is paid once per live thread: 120 bytes is malloc's
// 128-byte chunk (RSS per live thread, README benchmark table).
static_assert(sizeof(Stub) <= 120, "Stub outgrew its 128-byte malloc chunk");

namespace {
// IDs start at 1 and are never reused. Relaxed is enough: only uniqueness
// matters, and fetch_add gives that.
std::atomic<uint64_t> g_last_id{0};
}  // namespace

Stub::~Stub() {
  slots.ForEachUsed([](SlotCell& cell) {
    if (cell.value != nullptr) DestroySlotValue(cell.value, cell.ops);
  });
}

void StubReleaser::operator()(Stub* stub) const noexcept { ReleaseStub(stub); }

bool Stub::HasSlotValues() const noexcept {
  bool any = false;
  slots.ForEachUsed([&any](const SlotCell& cell) { any = any || cell.value != nullptr; });
  return any;
}

Stub& NewStub(Stub* reuse) {
  StubPtr stub(reuse != nullptr ? reuse : TakeCachedStub());
  if (stub == nullptr) stub.reset(ClaimOrAllocateStub());
  // The stub is empty: a walker reads no more than these three fields of it,
  // so they need no write section. `role` goes last, releasing the others.
  const uint64_t id = g_last_id.fetch_add(1, std::memory_order_relaxed) + 1;
  stub->id.store(id, std::memory_order_relaxed);
  stub->native.store(pthread_self(), std::memory_order_relaxed);
  stub->role.store(t_thread.task != nullptr ? StubRole::kTask : StubRole::kThread,
                   std::memory_order_release);
  ArmExitHook();
  t_thread.stub = stub.release();
  t_thread.id = id;
  return *t_thread.stub;
}

StubPtr DetachStub() noexcept {
  StubPtr stub(t_thread.stub);
  t_thread.stub = nullptr;
  t_thread.id = 0;
  return stub;
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
