// The public keyed API (core/store.h). Fast paths read t_thread once and touch
// only the calling thread's stub: no locks, no allocation on a hit.
#include <functional>
#include <stdexcept>
#include <utility>

#include "core/internal/close_values.h"
#include "core/internal/registry.h"
#include "core/internal/stub.h"
#include "core/internal/stub_lifecycle.h"
#include "tls/internal/abi.h"
#include "tls/store.h"

namespace tls::inline TLS_ABI_NAMESPACE {

using internal::t_thread;

void Set(const Key& key, Data data) {
  // The replaced value is released at the end, when the table is consistent
  // again: its destructor may call tls.
  internal::Stub& stub = internal::CurrentStub();
  Data old;
  if (Data* held = stub.values.FindOwn(key)) {
    old = std::exchange(*held, std::move(data));  // walkers never read handles
  } else {
    internal::OwnerWriteSection write(stub, internal::StubPart::kTable);
    stub.values.Insert(key, std::move(data));
  }
  internal::DropCaptureCache(stub);
}

namespace {
// Shared by Find and Get so Get does not pay a second call.
[[gnu::always_inline]] inline const Data* FindHere(const Key& key) noexcept {
  internal::Stub* stub = t_thread.stub;
  return stub != nullptr ? stub->values.Find(key) : nullptr;
}
}  // namespace

const Data* Find(const Key& key) noexcept { return FindHere(key); }

std::optional<Data> Get(const Key& key) {
  if (const Data* d = FindHere(key)) return *d;
  return std::nullopt;
}

bool Del(const Key& key) {
  internal::Stub* stub = t_thread.stub;
  if (stub == nullptr) return false;
  Data removed;
  {
    internal::OwnerWriteSection write(*stub, internal::StubPart::kTable);
    removed = stub->values.Erase(key);
  }
  if (!removed.has_value()) return false;
  internal::DropCaptureCache(*stub);
  return true;
}

uint64_t ID() {
  if (uint64_t id = t_thread.id; id != 0) [[likely]]
    return id;
  return internal::NewStub().id.load(std::memory_order_relaxed);
}

void Reset() {
  if (internal::Stub* stub = t_thread.stub)
    internal::CloseAllValues(*stub, internal::CloseTime::kNow);
}

void Unload() {
  // Destroying the detached stub may run destructors that call tls: they see
  // no stub, and a Set makes a fresh one.
  internal::DetachStub();
}

void internal::AtExitHandler(internal::Handler handler) {
  if (!handler) throw std::invalid_argument("tls::AtExit: empty function");
  internal::Stub& stub = internal::CurrentStub();
  internal::OwnerWriteSection write(stub, internal::StubPart::kTable);
  stub.handlers.push_back(std::move(handler));
}

// The AtExit of headers before tls/internal/handler.h, kept for programs
// built against them (libtls-core.so.3): the same, through a Handler.
TLS_API void AtExit(std::function<void()> f);
void AtExit(std::function<void()> f) { internal::AtExitHandler(internal::Handler(std::move(f))); }

}  // namespace tls::inline TLS_ABI_NAMESPACE
