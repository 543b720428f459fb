// Internal: the registry of stubs, so that one thread can read what every
// other thread holds (Slot<T>::ForEachThread, tls::Counter, ListThreads)
// without putting a lock or an atomic read-modify-write on any fast path.
// Not part of the API; see core/README.md "All threads at once".
//
// Shape. Every Stub ever allocated has a place for good in one table (an array
// of entries, `Stub::registry_index`) and is never freed while the process
// runs: a stub its thread is done with, if the stub cache does not keep it,
// gives back everything it holds and stays as an empty shell (role kFree,
// and a shell flag beside its entry), which the next NewStub claims (lowest
// place first) before allocating. So a walker can always read a Stub's
// registry fields, never meets freed memory, and skips a shell on its flag
// alone: a walk scans two arrays, a byte and a pointer per ended thread, and
// reads the stubs of live ones. The
// table grows by doubling; a replaced array stays readable for walkers that
// loaded it (it holds the same stubs at the same places). Adding, claiming
// and shelling take one lock (thread starts and ends); walkers take none.
//
// Who may write what. A stub is written only by the thread that owns it (role
// kThread/kTask/kSpare: that thread; kCached/kFree: whoever holds or claims
// it). Every owner write that changes what a walker reads (the key table's
// structure, the slot cells, the handler list, the id and role) happens inside
// an OwnerWriteSection. Writes a walker never reads (a Set over an existing
// key swaps only the handle) need none.
//
// The protocol is an asymmetric Dekker in two steps (the owner pays plain
// stores, a walker one process-wide barrier per walk and a fence per batch of
// kWalkBatch table places):
//   owner:  writing = 1; compiler fence;
//           if (walks reading this part != 0) {       // rare: a walk is on
//             full fence; while another thread's walker record says
//             "visiting the batch of this stub":
//               writing = 0, wait, writing = 1, full fence }
//           ...write...; writing = 0 (release)
//   walker: walks += 1; HeavyBarrier();               // once per walk
//           per batch with another thread's live stub:
//             record = batch (release); full fence;
//             per live stub of the batch: wait until writing == 0; read
//             (the next batch's store ends it)
//             (after a narrowing, record = batch again and a fence first)
//           record = none; walks -= 1 (release)
// HeavyBarrier (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)) makes every
// running thread of the process execute a full fence, which is the fence the
// owner's fast path leaves out: after it, an owner either shows writing == 1
// or sees the walk count and takes the fenced path. From then on the two
// sides are a plain Dekker on (the walker's record, the stub's `writing`).
// So an owner section costs two plain stores and a load of a read-mostly
// global while no walk runs, and waits only while a walker reads the batch
// of places that holds its stub (kWalkBatch stubs at most, each visited
// once). Batches let one fence cover many stubs: the fence, not the read,
// was most of a walk's cost per thread. Stubs of other batches never hold
// their owners up. An owner that must wait while its own thread walks (a
// visitor writing its own stub) first narrows its own walks' records to the
// stub each is visiting, so two walks whose visitors write their own threads
// wait for each other only when each is visiting the other's stub, as with
// one stub per mark. The walk counts are kept per part of the stub
// (StubPart). A walk never holds up its own thread (owners skip records of
// their own thread: a visitor that writes its own thread's stub would
// otherwise wait for itself).
#ifndef TLS_CORE_INTERNAL_REGISTRY_H_
#define TLS_CORE_INTERNAL_REGISTRY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/internal/stub.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// How many table places a walk marks at once (see the protocol above).
inline constexpr size_t kWalkBatch = 32;

// The two parts of a stub a walker may read, gated separately: a Slot walk
// reads only slot cells, so an owner's keyed writes (a visitor's Set on its
// own thread, say) never wait for one.
enum class StubPart : uint8_t {
  kTable = 1,  // the key table and the handler list
  kSlots = 2,  // the slot cells
  kAll = 3,
};

// Whether `parts` includes `part`.
constexpr bool Includes(StubPart parts, StubPart part) noexcept {
  return (static_cast<uint8_t>(parts) & static_cast<uint8_t>(part)) != 0;
}

// Walks in progress by the parts they read: the low 16 bits count walks of
// the keyed side, the high 16 bits walks of the slot cells. Written at a
// walk's start and end only; read by every owner write section.
extern std::atomic<uint32_t> g_walks;

// The bits of g_walks that count walks reading any of `parts`.
constexpr uint32_t WalkMask(StubPart parts) noexcept {
  return (Includes(parts, StubPart::kTable) ? 0x0000ffffu : 0u) |
         (Includes(parts, StubPart::kSlots) ? 0xffff0000u : 0u);
}

// The owner side: brackets a write to `part` of `stub` that a walker could be
// reading. Sections do not nest, and run no user code.
class OwnerWriteSection {
 public:
  explicit OwnerWriteSection(Stub& stub, StubPart part = StubPart::kAll) noexcept : stub_(stub) {
    stub.writing.store(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // a walker's barrier does the rest
    if ((g_walks.load(std::memory_order_acquire) & WalkMask(part)) != 0) [[unlikely]]
      WaitWhileVisited(stub, part);
  }
  ~OwnerWriteSection() { stub_.writing.store(0, std::memory_order_release); }
  OwnerWriteSection(const OwnerWriteSection&) = delete;
  OwnerWriteSection& operator=(const OwnerWriteSection&) = delete;

 private:
  // The fenced path, while a walk runs: goes on unless a walker is reading
  // `part` of this very stub, and steps back (writing = 0) while one is.
  static void WaitWhileVisited(Stub& stub, StubPart part) noexcept;

  Stub& stub_;
};

// A stub to make the calling thread's: a free shell from the registry (empty,
// role kClaimed), or a new registered stub. Throws std::bad_alloc.
Stub* ClaimOrAllocateStub();

// Gives back everything `stub` holds (destroying values and handlers unclosed
// and unrun: Unload semantics; that may run user code, after the stub is
// consistent) and leaves it as a free shell for the next ClaimOrAllocateStub.
void RetireStubToShell(Stub* stub) noexcept;

// Calls visit(stub) for every registered stub with a live role (kThread or
// kTask) at the time it is reached, in table order, under the protocol above:
// the stub's owner writes nothing of `parts` until visit returns. Only the
// batch being read is held (its owners wait until the walk has visited all of
// its live stubs); visit may run user code. Stubs registered after the walk began, or
// becoming live during it, may be missed. visit may call tls on the calling
// thread. A walk allocates nothing unless more than 8 walks overlap (their
// records are kept for later walks; if allocating fails, a walk waits for a
// free record).
template <class F>
void ForEachLiveStub(StubPart parts, F&& visit);

// Whether the calling thread is inside a walk (it must then take no stub
// that may be marked by its own walk: no shell, no cached stub).
bool WalkingOnThisThread() noexcept;

// Non-template part of ForEachLiveStub.
using StubVisitor = void (*)(void* context, Stub& stub);
void WalkLiveStubs(StubPart parts, StubVisitor visit, void* context);

template <class F>
void ForEachLiveStub(StubPart parts, F&& visit) {
  WalkLiveStubs(
      parts, [](void* f, Stub& stub) { (*static_cast<F*>(f))(stub); }, &visit);
}

// Emptied stubs kept for reuse: cached, spare or free shells (a racy
// snapshot, for tls::GetStats).
size_t CountKeptStubs() noexcept;

// Which thread or task a live stub is, as walks report it.
inline ThreadInfo InfoOf(const Stub& stub) noexcept {
  return ThreadInfo{stub.id.load(std::memory_order_relaxed),
                    stub.native.load(std::memory_order_relaxed),
                    stub.role.load(std::memory_order_relaxed) == StubRole::kTask};
}

// At process exit or library unload (the stub cache's destructor, after it
// gave its stubs back): frees every stub if all are free shells; otherwise
// (threads still hold stubs) leaves them.
void FreeRegistryIfUnused() noexcept;

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_REGISTRY_H_
