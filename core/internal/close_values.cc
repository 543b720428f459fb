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
  // `values` releases its Data handles here.
}

}  // namespace tls::internal
