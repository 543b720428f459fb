// Internal: what a tls::Snapshot holds (core/task.h). Not part of the API.
#ifndef TLS_CORE_INTERNAL_CAPTURED_VALUES_H_
#define TLS_CORE_INTERNAL_CAPTURED_VALUES_H_

#include <algorithm>
#include <vector>

#include "core/internal/key_table.h"
#include "tls/data.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// Reaches a Data's shared box, to tell values apart by identity.
struct DataAccess {
  static const void* Identity(const Data& d) noexcept { return d.box_; }
};

// Immutable once built; shared by every task run in it, on any thread.
struct CapturedValues {
  // Takes `values` (a copy of the capturing thread's, sharing its handles) and
  // indexes the values' identities.
  explicit CapturedValues(KeyTable values) : table(std::move(values)) {
    identities.reserve(table.size());
    table.ForEach([&](Data& d) { identities.push_back(DataAccess::Identity(d)); });
    std::sort(identities.begin(), identities.end());
  }

  // Whether `d` shares its value with one of the captured ones.
  bool Holds(const Data& d) const noexcept {
    return std::binary_search(identities.begin(), identities.end(), DataAccess::Identity(d));
  }

  KeyTable table;                       // copied into each task's view
  std::vector<const void*> identities;  // sorted: the captured values, never closed by a task
};

// Whether `d` came into the calling thread's view from the snapshot of one of
// its open tasks (task.cc). Such values are never closed by a task.
bool CapturedByOpenTask(const Data& d) noexcept;

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_CAPTURED_VALUES_H_
