// Introspection (core/threads.h): walks the registry of stubs (registry.h).
#include "tls/threads.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "core/internal/registry.h"
#include "core/internal/stub.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE {
namespace {

using internal::Stub;

// Heap bytes a stub owns itself: the Stub, its table block and long key
// texts, its slot cells and its handler list (not what values or handlers
// point to).
size_t StubBytes(const Stub& stub) noexcept {
  return sizeof(Stub) + stub.values.block_bytes() +
         stub.slots.capacity() * sizeof(internal::SlotCell) +
         stub.handlers.capacity() * sizeof(internal::Handler);
}

size_t SlotValues(const Stub& stub) noexcept {
  size_t n = 0;
  stub.slots.ForEachUsed(
      [&n](const internal::SlotCell& cell) { n += internal::LoadCellValue(cell) != nullptr; });
  return n;
}

}  // namespace

std::vector<ThreadReport> ListThreads() {
  std::vector<ThreadReport> reports;
  internal::ForEachLiveStub(internal::StubPart::kAll, [&](Stub& stub) {
    ThreadReport report;
    static_cast<ThreadInfo&>(report) = internal::InfoOf(stub);
    stub.values.AppendKeyNames(report.keys);
    report.slot_values = SlotValues(stub);
    report.handlers = stub.handlers.size();
    report.bytes = StubBytes(stub);
    reports.push_back(std::move(report));
  });
  // Sorted outside the walk (it holds the registry): a table's order follows
  // the keyed hash, which differs from run to run (key.h).
  for (ThreadReport& report : reports) std::sort(report.keys.begin(), report.keys.end());
  return reports;
}

Stats GetStats() {
  Stats stats;
  internal::ForEachLiveStub(internal::StubPart::kAll, [&](Stub& stub) {
    (internal::InfoOf(stub).task ? stats.tasks : stats.threads)++;
    stats.values += stub.values.own_size();
    stats.slot_values += SlotValues(stub);
    stats.handlers += stub.handlers.size();
    stats.bytes += StubBytes(stub);
  });
  stats.kept_stubs = internal::CountKeptStubs();
  // Kept stubs hold no values: counted by the Stub alone (a cached or spare
  // one may also keep a small table block, not counted).
  stats.bytes += stats.kept_stubs * sizeof(Stub);
  return stats;
}

}  // namespace tls::inline TLS_ABI_NAMESPACE
