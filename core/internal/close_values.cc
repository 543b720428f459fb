#include "core/internal/close_values.h"

#include <utility>
#include <vector>

#include "core/internal/captured_values.h"
#include "core/internal/report.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

// Destroys detached slot values (without closing them), each once: when asked,
// or at scope end if a forced unwind left a close early.
class SlotDestroyer {
 public:
  explicit SlotDestroyer(std::vector<SlotCell>& cells) noexcept : cells_(cells) {}
  ~SlotDestroyer() { DestroyAll(); }
  SlotDestroyer(const SlotDestroyer&) = delete;
  SlotDestroyer& operator=(const SlotDestroyer&) = delete;

  void DestroyAll() noexcept {
    for (SlotCell& cell : cells_) {
      if (void* value = std::exchange(cell.value, nullptr)) cell.ops->destroy(value);
    }
  }

 private:
  std::vector<SlotCell>& cells_;
};

}  // namespace

void CloseAllValues(Stub& stub) {
  KeyTable values = std::move(stub.values);
  // The reused snapshot holds the same values: it goes with them, released last.
  std::shared_ptr<const CapturedValues> cached_snapshot = std::move(stub.capture_cache);
  std::vector<SlotCell> slots = std::move(stub.slots);
  stub.slots.clear();
  // From here on `stub` is not touched: user code below may free it (Unload).
  // If a close ends the thread (a forced unwind passes RunContained), the
  // locals release what this round had not closed yet, without closing it.
  SlotDestroyer slot_values(slots);

  // Inside a task, values it was given by a snapshot are not its to close.
  values.ForEach([](Data& d) {
    if (!CapturedByOpenTask(d)) RunContained(ErrorSource::kClose, [&] { d.Close(); });
  });
  for (SlotCell& cell : slots) {
    if (cell.value != nullptr && cell.ops->close != nullptr) {
      RunContained(ErrorSource::kClose, [&] { cell.ops->close(cell.value); });
    }
  }
  slot_values.DestroyAll();
  values.Clear();  // releases the handles; destructors may call tls
  // Give the emptied block back, so the next Set (after Reset, or the next
  // thread to reuse this stub) does not allocate; unless the stub has grown a
  // table of its own meanwhile.
  Stub* current = IfStillCurrent(stub);
  if (current != nullptr && current->values.capacity() == 0) current->values = std::move(values);
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
