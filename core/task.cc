// Task-local storage (core/task.h): snapshots and capture. The frames that
// swap a thread's state for a task's are core/internal/task_frames.cc.
#include "tls/task.h"

#include <memory>
#include <span>
#include <utility>

#include "core/internal/captured_values.h"
#include "core/internal/key_table.h"
#include "core/internal/stub.h"
#include "tls/internal/abi.h"
#include "tls/key.h"

namespace tls::inline TLS_ABI_NAMESPACE {

size_t Snapshot::size() const noexcept { return values_ ? values_->table.size() : 0; }

Snapshot Capture() {
  internal::Stub* stub = internal::t_thread.stub;
  if (stub == nullptr || stub->values.empty()) return Snapshot();
  // A fan-out captures the same values again and again: share one snapshot
  // until the values change (Set, Del, Reset and exit drop it).
  if (stub->capture_cache == nullptr) {
    stub->capture_cache = std::make_shared<const internal::CapturedValues>(stub->values.Clone());
  }
  return Snapshot(stub->capture_cache);
}

Snapshot Capture(std::span<const Key> keys) {
  internal::Stub* stub = internal::t_thread.stub;
  if (stub == nullptr) return Snapshot();
  internal::KeyTable chosen;
  for (const Key& key : keys) {
    if (const Data* d = stub->values.Find(key)) chosen.Put(key, *d);
  }
  if (chosen.empty()) return Snapshot();
  return Snapshot(std::make_shared<const internal::CapturedValues>(std::move(chosen)));
}

}  // namespace tls::inline TLS_ABI_NAMESPACE
