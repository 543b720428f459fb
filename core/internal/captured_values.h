// Internal: what a tls::Snapshot holds (core/task.h). Not part of the API.
#ifndef TLS_CORE_INTERNAL_CAPTURED_VALUES_H_
#define TLS_CORE_INTERNAL_CAPTURED_VALUES_H_

#include <algorithm>
#include <vector>

#include "core/internal/key_table.h"
#include "tls/data.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// Reaches a Data's shared box, to tell values apart by identity and to keep
// the count of snapshots holding each (data_box.h).
struct DataAccess {
  static const void* Identity(const Data& d) noexcept { return d.box_; }
  static DataBox* Box(const Data& d) noexcept { return d.box_; }
};

// Immutable once built; shared by every task run in it, on any thread. While
// it lives, each of its values counts it as a holder, so the value's thread
// ending leaves the close to the last holder's release (data_box.h).
struct CapturedValues {
  // Takes `values` (a copy of the capturing thread's, sharing its handles),
  // indexes the values' identities and counts itself a holder of each.
  explicit CapturedValues(KeyTable values) : table(std::move(values)) {
    identities.reserve(table.size());
    table.ForEach([&](Data& d) {
      identities.push_back(DataAccess::Identity(d));
      if (DataBox* box = DataAccess::Box(d)) box->Capture();  // an empty Data may be stored
    });
    std::sort(identities.begin(), identities.end());
  }
  // Lets go of each value; closes, here, those whose thread or task ended
  // while this was their last holder (errors reported, as an exit's are).
  // Defined in captured_values.cc.
  ~CapturedValues();
  CapturedValues(const CapturedValues&) = delete;
  CapturedValues& operator=(const CapturedValues&) = delete;

  // Whether `d` shares its value with one of the captured ones.
  bool Holds(const Data& d) const noexcept {
    return std::binary_search(identities.begin(), identities.end(), DataAccess::Identity(d));
  }

  KeyTable table;                       // copied into each task's view
  std::vector<const void*> identities;  // sorted: the captured values, never closed by a task
};

// Whether `d` came into the calling thread's view from the snapshot of one of
// its open tasks. Such values are never closed by a task.
bool CapturedByOpenTask(const Data& d) noexcept;

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_CAPTURED_VALUES_H_
