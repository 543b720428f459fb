// Internal: the per-thread stub and the thread_local state that reaches it.
// Not part of the API; see core/README.md for the design.
#ifndef TLS_CORE_INTERNAL_STUB_H_
#define TLS_CORE_INTERNAL_STUB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/internal/key_table.h"
#include "core/internal/slot_ops.h"

namespace tls::internal {

struct SlotCell {
  void* value = nullptr;
  const SlotOps* ops = nullptr;
};

// Everything one thread stores. Created lazily by the first Set/ID/AtExit (or
// Slot store); freed at thread exit or by Unload. Only its own thread touches
// it, so nothing in it is locked.
struct Stub {
  explicit Stub(uint64_t stub_id) : id(stub_id) {}
  Stub(const Stub&) = delete;
  Stub& operator=(const Stub&) = delete;
  ~Stub();  // destroys values WITHOUT closing them (Unload semantics)

  const uint64_t id;
  KeyTable values;
  std::vector<SlotCell> slots;  // indexed by Slot<T>::index()
  std::vector<std::function<void()>> handlers;  // AtExit, oldest first

  bool HasSlotValues() const noexcept;
  bool empty() const noexcept { return values.empty() && handlers.empty() && !HasSlotValues(); }
};

enum class Phase : uint8_t {
  kLive,     // normal operation
  kExiting,  // the exit sequence is running on this thread
  kExited,   // the native exit hook has run; a stub made now needs the late hook
};

// The one thread_local the engine reads on its fast paths. Constant-initialized
// and trivially destructible, so reading it costs no init check.
struct ThreadState {
  Stub* stub = nullptr;
  uint64_t id = 0;  // stub->id, mirrored so ID() is a single read (0: no stub)
  Phase phase = Phase::kLive;
};

extern thread_local constinit ThreadState t_thread;

// The calling thread's stub, created (with a fresh ID, exit hook armed) if
// there is none.
Stub& NewStub();
inline Stub& CurrentStub() {
  Stub* s = t_thread.stub;
  if (s == nullptr) [[unlikely]] return NewStub();
  return *s;
}

// Unhooks the calling thread's stub and hands it to the caller: from here on
// the thread has no stub. Destroying the result may run user code (value and
// handler destructors), which may create a new stub; that is fine.
std::unique_ptr<Stub> DetachStub() noexcept;

}  // namespace tls::internal

#endif  // TLS_CORE_INTERNAL_STUB_H_
