// The registry of stubs and the walker's side of the write-section protocol
// (registry.h).
#include "core/internal/registry.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

#include "core/internal/fork.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

// The stub table: every Stub ever allocated, at an index it keeps for good
// (Stub::registry_index), and beside it a flag set while the stub is a free
// shell, so a walker skips shells on a byte without touching them. Entries
// are appended, never removed; the arrays are replaced by ones twice the size
// when full. A replaced table stays readable (it keeps every stub it held, at
// the same index) until FreeRegistryIfUnused, so a walker that loaded it
// meets no freed memory; only stubs added or turned into shells after the
// replacement look different in it, and those are threads that began or
// ended during the walk.
struct StubTable {
  size_t capacity = 0;
  std::atomic<size_t> used{0};    // entries [0, used) are set
  StubTable* replaced = nullptr;  // the previous arrays, kept readable
  Stub** stubs = nullptr;         // written once, before `used` covers it
  std::atomic<bool>* shells = nullptr;
};
constexpr size_t kFirstTableCapacity = 64;

constinit std::atomic<StubTable*> g_table{nullptr};
// Taken to add a stub, claim a shell or make one: thread starts and ends, not
// fast paths. Walkers never take it. Held across fork (ForkUnit::kRegistry).
constinit std::mutex g_table_lock;
bool g_table_lock_held_for_fork = false;         // by the forking thread, prepare to child
constinit size_t g_first_shell = 0;              // no shell below this index (g_table_lock)
constinit std::atomic<size_t> g_free_shells{0};  // written under g_table_lock
// Threads reading the table without its lock (walks, counts):
// FreeRegistryIfUnused frees the stubs and arrays only when there are none (a thread may still walk
// while the process exits and static destructors run).
constinit std::atomic<int> g_readers{0};

class TableReader {
 public:
  TableReader() noexcept { g_readers.fetch_add(1, std::memory_order_seq_cst); }
  ~TableReader() { g_readers.fetch_sub(1, std::memory_order_release); }
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;
};

// One walk's record: which batch of table places it is reading now. Owners
// in the fenced path of a write section look for their stub's batch in every
// claimed record but their own thread's.
struct Walker {
  // VisitingMark of the batch being read; 0 between batches.
  std::atomic<uint64_t> visiting{0};
  std::atomic<bool> claimed{false};
  uint32_t walks_unit = 0;           // what this walk added to g_walks (while claimed)
  std::atomic<pthread_t> walking{};  // the claiming thread; read after `visiting`
  Walker* next = nullptr;            // allocated records: push-only, immutable once pushed
};

// Enough for every walk of most processes; walks beyond them allocate records
// (kept on g_more_walkers until FreeRegistryIfUnused).
constexpr int kFixedWalkers = 8;
constinit Walker g_fixed_walkers[kFixedWalkers];
constinit std::atomic<Walker*> g_more_walkers{nullptr};

template <class F>
void ForEachWalkerRecord(F&& f) {
  for (Walker& w : g_fixed_walkers) f(w);
  for (Walker* w = g_more_walkers.load(std::memory_order_acquire); w != nullptr; w = w->next) f(*w);
}

Walker& Claimed(Walker& w) noexcept {
  w.walking.store(pthread_self(), std::memory_order_relaxed);  // published by `visiting`
  return w;
}

bool TryClaimWalker(Walker& w) noexcept {
  bool expected = false;
  return !w.claimed.load(std::memory_order_relaxed) &&
         w.claimed.compare_exchange_strong(expected, true, std::memory_order_acquire);
}

// A walker record for a new walk: a free one, else a new one on the list.
Walker& ClaimWalker() noexcept {
  for (;;) {
    for (Walker& w : g_fixed_walkers) {
      if (TryClaimWalker(w)) return Claimed(w);
    }
    for (Walker* w = g_more_walkers.load(std::memory_order_acquire); w != nullptr; w = w->next) {
      if (TryClaimWalker(*w)) return Claimed(*w);
    }
    if (auto* w = new (std::nothrow) Walker()) {
      w->claimed.store(true, std::memory_order_relaxed);
      Walker* head = g_more_walkers.load(std::memory_order_relaxed);
      do {
        w->next = head;
      } while (!g_more_walkers.compare_exchange_weak(head, w, std::memory_order_release,
                                                     std::memory_order_relaxed));
      return Claimed(*w);
    }
    sched_yield();  // out of memory: wait for another walk to end
  }
}

// What a walker record's `visiting` names, above the StubPart bits: a batch
// of kWalkBatch table places (bit 2 clear) or one place (bit 2 set), +1 so
// that 0 means nothing.
constexpr uint64_t kOnePlace = 4;
uint64_t BatchMark(size_t batch, StubPart parts) noexcept {
  return (static_cast<uint64_t>(batch + 1) << 3) | static_cast<uint64_t>(parts);
}
uint64_t PlaceMark(size_t place, StubPart parts) noexcept {
  return (static_cast<uint64_t>(place + 1) << 3) | kOnePlace | static_cast<uint64_t>(parts);
}
static_assert(static_cast<uint64_t>(StubPart::kAll) < kOnePlace, "the parts fit below the mark");

// One walk in progress on this thread (walks nest: a visitor may walk).
struct ActiveWalk {
  Walker* record = nullptr;  // claimed at the first stub of another thread
  StubPart parts{};
  size_t place = 0;       // the table place being visited (another thread's stub)
  bool own = false;       // visiting this thread's own stub
  bool narrowed = false;  // the record names only `place`, not its batch
  ActiveWalk* outer = nullptr;
};
thread_local constinit ActiveWalk* t_walks = nullptr;  // the innermost

// Whether a walk of another thread is reading `part` of `stub` or of the batch
// that holds it (acquire: a record that moved on has finished reading it). A
// thread's own walks never hold it up: they do not read its stub while it
// writes.
bool Visited(const Stub& stub, StubPart part) noexcept {
  bool visited = false;
  const uint64_t batch = BatchMark(stub.registry_index / kWalkBatch, StubPart{});
  const uint64_t place = PlaceMark(stub.registry_index, StubPart{});
  const pthread_t self = pthread_self();
  ForEachWalkerRecord([&](Walker& w) {
    const uint64_t v = w.visiting.load(std::memory_order_acquire);
    const uint64_t what = v & ~static_cast<uint64_t>(StubPart::kAll);
    if ((what != batch && what != place) || (v & static_cast<uint64_t>(part)) == 0) return;
    visited |= pthread_equal(w.walking.load(std::memory_order_relaxed), self) == 0;
  });
  return visited;
}

// Before this thread waits for another thread's walk: its own walks hold
// only the stub each is visiting, not the rest of its batch. Else two walks
// whose visitors write their own threads would each wait for the other's
// batch (each holding the other's not-yet-visited stub). The walk marks its
// batch again before it reads on.
void NarrowThisThreadsWalks() noexcept {
  for (ActiveWalk* w = t_walks; w != nullptr; w = w->outer) {
    if (w->record == nullptr || w->narrowed) continue;
    w->record->visiting.store(w->own ? 0 : PlaceMark(w->place, w->parts),
                              std::memory_order_release);
    w->narrowed = true;
  }
}

// What one walk of `parts` adds to g_walks: the lowest bit of each half of
// WalkMask.
constexpr uint32_t WalksUnit(StubPart parts) noexcept { return WalkMask(parts) & 0x00010001u; }

// The stub's owner is the calling thread, as far as `native` tells: a live
// stub becomes or stops being this thread's only by this thread's doing. A
// stub given back (cached, a shell) keeps its last owner's pthread_t, which
// a later thread may get again: WalkLiveStubs reads the role first.
bool OwnedHere(const Stub& stub) noexcept {
  return pthread_equal(stub.native.load(std::memory_order_relaxed), pthread_self()) != 0;
}

bool IsLive(StubRole role) noexcept { return role == StubRole::kThread || role == StubRole::kTask; }

// HeavyBarrier's state. Not function-local statics: a fork while another
// thread is inside a guarded static's initialization (the registration
// system call) leaves the guard taken for good in the child, whose first walk
// then waits on it for ever. Registering twice, by threads racing to it, is
// harmless. The fallback's lock and page are reset in a fork child.
constinit std::atomic<int> g_membarrier{0};  // 0: not tried yet; 1: registered; -1: unavailable
constinit std::mutex g_barrier_lock;
void* g_barrier_page = nullptr;  // guarded by g_barrier_lock
bool g_barrier_page_tried = false;

// Makes every running thread of the process execute a full memory fence.
// membarrier(PRIVATE_EXPEDITED) (Linux 4.14+) does it with an IPI to the CPUs
// running this process's threads. Without it, changing the protection of a
// page this process has touched does the same (the kernel's TLB shootdown
// interrupts every CPU that may cache the mapping), as folly and .NET do.
void HeavyBarrier() noexcept {
  int membarrier = g_membarrier.load(std::memory_order_relaxed);
  if (membarrier == 0) {
    membarrier =
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : -1;
    g_membarrier.store(membarrier, std::memory_order_relaxed);
  }
  if (membarrier == 1 && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
    return;
  }
  std::lock_guard<std::mutex> hold(g_barrier_lock);
  if (!g_barrier_page_tried) {
    g_barrier_page_tried = true;
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_barrier_page = p == MAP_FAILED ? nullptr : p;
  }
  if (g_barrier_page == nullptr) {
    // Nothing left to try: make this side sequentially consistent at least.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return;
  }
  static_cast<volatile char*>(g_barrier_page)[0] = 1;  // resident, so the shootdown is real
  mprotect(g_barrier_page, 4096, PROT_READ);
  mprotect(g_barrier_page, 4096, PROT_READ | PROT_WRITE);
}

// The current table and how many of its entries are set (0 without one).
StubTable* CurrentTable(size_t& used) noexcept {
  // Seq_cst: after a TableReader's count, as FreeRegistryIfUnused requires.
  StubTable* table = g_table.load(std::memory_order_seq_cst);
  used = table == nullptr ? 0 : table->used.load(std::memory_order_acquire);
  return table;
}

// Calls f(index, stub, is_shell) for every entry of the current table.
template <class F>
void ForEachEntry(F&& f) {
  size_t used = 0;
  StubTable* table = CurrentTable(used);
  for (size_t i = 0; i < used; ++i) {
    f(i, table->stubs[i], table->shells[i].load(std::memory_order_acquire));
  }
}

// The lowest free shell, claimed (role kClaimed), or nullptr.
Stub* ClaimShell() noexcept {
  // A walk of this thread's may still mark a stub that has since become a
  // shell (its record moves on at the next stub): its first write section
  // would wait for this very thread.
  if (WalkingOnThisThread() || g_free_shells.load(std::memory_order_relaxed) == 0) return nullptr;
  std::lock_guard<std::mutex> hold(g_table_lock);
  StubTable* table = g_table.load(std::memory_order_relaxed);
  if (table == nullptr) return nullptr;
  const size_t used = table->used.load(std::memory_order_relaxed);
  for (size_t i = g_first_shell; i < used; ++i) {
    if (!table->shells[i].load(std::memory_order_relaxed)) continue;
    g_first_shell = i + 1;
    // The lock orders the shell's making (RetireStubToShell) before this.
    Stub* stub = table->stubs[i];
    stub->role.store(StubRole::kClaimed, std::memory_order_relaxed);
    table->shells[i].store(false, std::memory_order_release);
    g_free_shells.fetch_sub(1, std::memory_order_relaxed);
    return stub;
  }
  g_first_shell = used;
  return nullptr;
}

// Puts a new stub at the end of the table, growing it if full. Throws
// std::bad_alloc (the stub is then not registered).
void Append(Stub* stub) {
  std::lock_guard<std::mutex> hold(g_table_lock);
  StubTable* table = g_table.load(std::memory_order_relaxed);
  const size_t used = table == nullptr ? 0 : table->used.load(std::memory_order_relaxed);
  if (table == nullptr || used == table->capacity) {
    auto grown = std::make_unique<StubTable>();
    grown->capacity = table == nullptr ? kFirstTableCapacity : 2 * table->capacity;
    auto stubs = std::make_unique<Stub*[]>(grown->capacity);
    auto shells = std::make_unique<std::atomic<bool>[]>(grown->capacity);
    for (size_t i = 0; i < used; ++i) {
      stubs[i] = table->stubs[i];
      shells[i].store(table->shells[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    grown->stubs = stubs.release();
    grown->shells = shells.release();
    grown->used.store(used, std::memory_order_relaxed);
    grown->replaced = table;
    table = grown.release();
    g_table.store(table, std::memory_order_release);
  }
  stub->registry_index = used;
  table->stubs[used] = stub;
  table->shells[used].store(false, std::memory_order_relaxed);
  table->used.store(used + 1, std::memory_order_release);
}

void FreeTables(StubTable* table) noexcept {
  while (table != nullptr) {
    delete[] table->stubs;
    delete[] table->shells;
    delete std::exchange(table, table->replaced);
  }
}

// The table's lock is held across fork, so the child finds no change half done.
void LockTableForFork() noexcept {
  g_table_lock.lock();
  g_table_lock_held_for_fork = true;
}

void UnlockTableAfterFork() noexcept {
  g_table_lock_held_for_fork = false;
  g_table_lock.unlock();
}

// The fork child has only the forking thread: every stub another thread held
// (or the stub cache, reset in the child too) is abandoned, and no walk or
// write section of another thread is in progress.
void ResetInForkChild() noexcept {
  new (&g_barrier_lock) std::mutex();  // another thread may have held it at the fork
  // Walks of other threads are gone; the forking thread's own (a fork from
  // a visitor) go on and end as usual, so the count keeps theirs.
  uint32_t walks = 0;
  ForEachWalkerRecord([&](Walker& w) {
    w.visiting.store(0, std::memory_order_relaxed);
    if (!w.claimed.load(std::memory_order_relaxed)) return;
    if (pthread_equal(w.walking.load(std::memory_order_relaxed), pthread_self()) != 0) {
      walks += w.walks_unit;
    } else {
      w.claimed.store(false, std::memory_order_relaxed);
    }
  });
  g_walks.store(walks, std::memory_order_relaxed);
  // No other thread is left to change the table (the forking thread took
  // g_table_lock before the fork, so no change was half done either).
  size_t free = 0;
  StubTable* table = g_table.load(std::memory_order_relaxed);
  ForEachEntry([&](size_t i, Stub* s, bool) {
    s->writing.store(0, std::memory_order_relaxed);
    const StubRole role = s->role.load(std::memory_order_relaxed);
    if (role == StubRole::kFree) {
      // A shell, or one its thread was making into a shell at the fork.
      table->shells[i].store(true, std::memory_order_relaxed);
      ++free;
    } else if (role == StubRole::kCached || role == StubRole::kClaimed || !OwnedHere(*s)) {
      s->role.store(StubRole::kLost, std::memory_order_relaxed);
    }
  });
  g_free_shells.store(free, std::memory_order_relaxed);
  g_first_shell = 0;
  // Held by this thread since the prepare handler, unless the fork began
  // while the registry registered its handlers (then nobody holds it here).
  if (g_table_lock_held_for_fork) UnlockTableAfterFork();
}

void RegisterForkReset() noexcept {
  static pthread_once_t once = PTHREAD_ONCE_INIT;  // fork.h: why not a static
  pthread_once(&once, [] {
    RegisterForkHandlers(ForkUnit::kRegistry, {.prepare = &LockTableForFork,
                                               .parent = &UnlockTableAfterFork,
                                               .child = &ResetInForkChild});
  });
}

}  // namespace

constinit std::atomic<uint32_t> g_walks{0};

void OwnerWriteSection::WaitWhileVisited(Stub& stub, StubPart part) noexcept {
  for (;;) {
    // writing == 1 here. With the walker's fence after its record store:
    // either it sees writing == 1 (and waits), or this sees its record.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!Visited(stub, part)) return;
    NarrowThisThreadsWalks();
    stub.writing.store(0, std::memory_order_release);
    while (Visited(stub, part)) sched_yield();
    stub.writing.store(1, std::memory_order_relaxed);
  }
}

bool WalkingOnThisThread() noexcept { return t_walks != nullptr; }

Stub* ClaimOrAllocateStub() {
  // A shell exists only after an Append, which registered the fork handlers
  // first: thread starts that reuse a shell skip the registration check.
  if (Stub* shell = ClaimShell()) return shell;
  RegisterForkReset();                   // before Append first takes g_table_lock
  auto stub = std::make_unique<Stub>();  // role kClaimed
  Append(stub.get());
  return stub.release();
}

void RetireStubToShell(Stub* stub) noexcept {
  Stub contents;  // not registered: takes what the stub held, and destroys it last
  {
    OwnerWriteSection write(*stub);
    contents.values = std::move(stub->values);
    contents.capture_cache = std::move(stub->capture_cache);
    contents.slots.swap(stub->slots);
    contents.handlers.swap(stub->handlers);
  }
  stub->role.store(StubRole::kFree, std::memory_order_release);
  {
    std::lock_guard<std::mutex> hold(g_table_lock);
    // The stub's index in the current table (a replaced one is never written).
    StubTable* table = g_table.load(std::memory_order_relaxed);
    const size_t i = stub->registry_index;
    table->shells[i].store(true, std::memory_order_release);
    g_first_shell = std::min(g_first_shell, i);
    g_free_shells.fetch_add(1, std::memory_order_relaxed);
  }
  // `contents` goes now: value and handler destructors (user code) may call
  // tls, and may claim this very shell again.
}

void WalkLiveStubs(StubPart parts, StubVisitor visit, void* context) {
  struct Walk : ActiveWalk {
    explicit Walk(StubPart p) noexcept {
      parts = p;
      outer = std::exchange(t_walks, this);
    }
    ~Walk() {
      if (record != nullptr) {
        record->visiting.store(0, std::memory_order_release);
        g_walks.fetch_sub(record->walks_unit, std::memory_order_release);
        record->claimed.store(false, std::memory_order_release);
      }
      t_walks = outer;
    }
    // Marks `batch` for reading (release: ends the previous batch's visits);
    // the fence pairs with the owner's fenced path.
    void Mark(size_t batch) noexcept {
      record->visiting.store(BatchMark(batch, parts), std::memory_order_release);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      narrowed = false;
    }
  } walk(parts);
  TableReader reading;
  size_t used = 0;
  StubTable* table = CurrentTable(used);
  for (size_t batch = 0; batch * kWalkBatch < used; ++batch) {
    // The live stubs of this batch, in table order. Shells cost the table's
    // two loads; cached and spare stubs one load more. A stub that becomes
    // live after this is a thread or task that began during the walk: missed.
    size_t places[kWalkBatch];
    bool own[kWalkBatch];
    size_t n = 0;
    bool others = false;
    const size_t end = std::min(used, (batch + 1) * kWalkBatch);
    for (size_t i = batch * kWalkBatch; i < end; ++i) {
      if (table->shells[i].load(std::memory_order_acquire)) continue;
      const Stub& stub = *table->stubs[i];
      if (!IsLive(stub.role.load(std::memory_order_acquire))) continue;
      // A stub given back (cached, a shell) keeps its last owner's pthread_t,
      // which glibc hands to the next thread it creates: this one, maybe.
      // Another thread that claims it stores its own pthread_t before its
      // role (release), so after reading the role (acquire) `native` tells.
      own[n] = OwnedHere(stub);
      others |= !own[n];
      places[n++] = i;
    }
    if (others) {
      if (walk.record == nullptr) {
        // The first stub of another thread: count the walk, then the barrier
        // after which every owner section that begins sees the count.
        Walker& record = ClaimWalker();
        record.walks_unit = WalksUnit(parts);
        g_walks.fetch_add(record.walks_unit, std::memory_order_relaxed);
        walk.record = &record;
        HeavyBarrier();
      }
      walk.Mark(batch);
    } else if (walk.record != nullptr) {
      walk.record->visiting.store(0, std::memory_order_release);  // the previous batch is done
    }
    for (size_t k = 0; k < n; ++k) {
      Stub& stub = *table->stubs[places[k]];
      walk.own = own[k];
      walk.place = places[k];
      if (!own[k]) {
        // A visitor of this batch narrowed the mark (NarrowThisThreadsWalks).
        if (walk.narrowed) walk.Mark(batch);
        while (stub.writing.load(std::memory_order_acquire) != 0) sched_yield();
        if (!IsLive(stub.role.load(std::memory_order_acquire))) continue;
      }
      visit(context, stub);  // this thread's own stub: nothing to hold off
    }
  }
}

size_t CountKeptStubs() noexcept {
  size_t kept = 0;
  TableReader reading;
  ForEachEntry([&](size_t, Stub* s, bool shell) {
    if (shell) {
      ++kept;
      return;
    }
    const StubRole role = s->role.load(std::memory_order_relaxed);
    kept += role == StubRole::kCached || role == StubRole::kSpare || role == StubRole::kFree;
  });
  return kept;
}

void FreeRegistryIfUnused() noexcept {
  StubTable* table = nullptr;
  {
    std::lock_guard<std::mutex> hold(g_table_lock);
    bool all_shells = true;
    ForEachEntry([&](size_t, Stub*, bool shell) { all_shells &= shell; });
    if (!all_shells) return;
    table = g_table.exchange(nullptr, std::memory_order_seq_cst);
    // A reader that began before the exchange may be in the table: leave it
    // all (this is process exit with a thread still walking). One that
    // begins after it finds no table (both sides sequentially consistent).
    if (g_readers.load(std::memory_order_seq_cst) != 0) {
      g_table.store(table, std::memory_order_release);
      return;
    }
    g_free_shells.store(0, std::memory_order_relaxed);
    g_first_shell = 0;
  }
  if (table == nullptr) return;
  const size_t used = table->used.load(std::memory_order_relaxed);
  for (size_t i = 0; i < used; ++i) delete table->stubs[i];
  FreeTables(table);
  // No walk runs (no reader): the allocated walker records go too.
  Walker* w = g_more_walkers.exchange(nullptr, std::memory_order_acquire);
  while (w != nullptr) delete std::exchange(w, w->next);
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
