#include "core/internal/close_values.h"

#include <utility>
#include <vector>

#include "core/internal/report.h"

namespace tls::internal {

void CloseAllValues(Stub& stub) noexcept {
  KeyTable values = std::move(stub.values);
  std::vector<SlotCell> slots = std::move(stub.slots);
  stub.slots.clear();
  // From here on `stub` is not touched: user code below may free it (Unload).

  values.ForEach([](Data& d) { RunContained(ErrorSource::kClose, [&] { d.Close(); }); });
  for (SlotCell& cell : slots) {
    if (cell.value != nullptr && cell.ops->close != nullptr) {
      RunContained(ErrorSource::kClose, [&] { cell.ops->close(cell.value); });
    }
  }
  for (SlotCell& cell : slots) {
    if (cell.value != nullptr) cell.ops->destroy(cell.value);
  }
  values.Clear();  // releases the handles; destructors may call tls
  // Give the emptied block back, so the next Set (after Reset, or the next
  // thread to reuse this stub) does not allocate; unless the stub has grown a
  // table of its own meanwhile.
  Stub* current = IfStillCurrent(stub);
  if (current != nullptr && current->values.capacity() == 0) current->values = std::move(values);
}

}  // namespace tls::internal
