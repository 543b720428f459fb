// The registry of stubs and the walker's side of the write-section protocol
// (registry.h).
#include "core/internal/registry.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <utility>

#include "core/internal/fork.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {
namespace {

constinit std::atomic<Stub*> g_head{nullptr};  // newest first; push-only
constinit std::atomic<size_t> g_free_shells{0};
// A shell freed lately. Published with release and taken with acquire: the
// claimer may know the stub only from here (not from g_head, whose acquire
// would order the stub's construction before its claim).
constinit std::atomic<Stub*> g_free_hint{nullptr};
thread_local constinit int t_walk_depth = 0;
// Threads reading the list (walks, shell claims, counts): FreeRegistryIfUnused
// frees the stubs only when there are none (a thread may still walk while the
// process exits and static destructors run).
constinit std::atomic<int> g_readers{0};

class ListReader {
 public:
  ListReader() noexcept { g_readers.fetch_add(1, std::memory_order_seq_cst); }
  ~ListReader() { g_readers.fetch_sub(1, std::memory_order_release); }
  ListReader(const ListReader&) = delete;
  ListReader& operator=(const ListReader&) = delete;
};

// One walk's record: which stub it is reading now. Owners in the fenced path
// of a write section look for their stub in every claimed record.
struct Walker {
  // The stub being read, with the StubPart bits it reads in the low bits
  // (a Stub is 8-aligned); 0 between stubs.
  std::atomic<uintptr_t> visiting{0};
  std::atomic<bool> claimed{false};
  uint32_t walks_unit = 0;  // what this walk added to g_walks (while claimed)
  pthread_t walking{};      // the claiming thread (a fork child frees others')
  Walker* next = nullptr;   // allocated records: push-only, immutable once pushed
};

static_assert(alignof(Stub) > static_cast<size_t>(StubPart::kAll),
              "the visited parts are kept in a Stub pointer's low bits");

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
  w.walking = pthread_self();
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

uintptr_t Marked(const Stub& stub, StubPart parts) noexcept {
  return reinterpret_cast<uintptr_t>(&stub) | static_cast<uintptr_t>(parts);
}

// Whether some walker is reading `part` of `stub` (acquire: a record that
// moved on has finished reading it).
bool Visited(const Stub& stub, StubPart part) noexcept {
  bool visited = false;
  const uintptr_t address = reinterpret_cast<uintptr_t>(&stub);
  ForEachWalkerRecord([&](Walker& w) {
    const uintptr_t v = w.visiting.load(std::memory_order_acquire);
    visited |= (v & ~static_cast<uintptr_t>(StubPart::kAll)) == address &&
               (v & static_cast<uintptr_t>(part)) != 0;
  });
  return visited;
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

bool TryClaim(Stub* stub) noexcept {
  StubRole expected = StubRole::kFree;
  if (!stub->role.compare_exchange_strong(expected, StubRole::kClaimed,
                                          std::memory_order_acquire)) {
    return false;
  }
  g_free_shells.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

Stub* ClaimShell() noexcept {
  // While this thread walks, a shell could still carry its visitor count,
  // and its first write section would wait for this very thread.
  if (WalkingOnThisThread() || g_free_shells.load(std::memory_order_relaxed) == 0) return nullptr;
  ListReader reading;
  if (Stub* hint = g_free_hint.exchange(nullptr, std::memory_order_acquire)) {
    if (TryClaim(hint)) return hint;
  }
  for (Stub* s = g_head.load(std::memory_order_seq_cst); s != nullptr; s = s->next_registered) {
    if (s->role.load(std::memory_order_relaxed) == StubRole::kFree && TryClaim(s)) return s;
  }
  return nullptr;
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
    if (pthread_equal(w.walking, pthread_self()) != 0) {
      walks += w.walks_unit;
    } else {
      w.claimed.store(false, std::memory_order_relaxed);
    }
  });
  g_walks.store(walks, std::memory_order_relaxed);
  size_t free = 0;
  for (Stub* s = g_head.load(std::memory_order_relaxed); s != nullptr; s = s->next_registered) {
    s->writing.store(0, std::memory_order_relaxed);
    const StubRole role = s->role.load(std::memory_order_relaxed);
    if (role == StubRole::kFree) {
      ++free;
    } else if (role == StubRole::kCached || role == StubRole::kClaimed || !OwnedHere(*s)) {
      s->role.store(StubRole::kLost, std::memory_order_relaxed);
    }
  }
  g_free_shells.store(free, std::memory_order_relaxed);
  g_free_hint.store(nullptr, std::memory_order_relaxed);
}

void RegisterForkReset() noexcept {
  static pthread_once_t once = PTHREAD_ONCE_INIT;  // fork.h: why not a static
  pthread_once(&once,
               [] { RegisterForkHandlers(ForkUnit::kRegistry, {.child = &ResetInForkChild}); });
}

void Push(Stub* stub) noexcept {
  Stub* head = g_head.load(std::memory_order_relaxed);
  do {
    stub->next_registered = head;
  } while (!g_head.compare_exchange_weak(head, stub, std::memory_order_release,
                                         std::memory_order_relaxed));
}

}  // namespace

constinit std::atomic<uint32_t> g_walks{0};

void OwnerWriteSection::WaitWhileVisited(Stub& stub, StubPart part) noexcept {
  for (;;) {
    // writing == 1 here. With the walker's fence after its record store:
    // either it sees writing == 1 (and waits), or this sees its record.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!Visited(stub, part)) return;
    stub.writing.store(0, std::memory_order_release);
    while (Visited(stub, part)) sched_yield();
    stub.writing.store(1, std::memory_order_relaxed);
  }
}

bool WalkingOnThisThread() noexcept { return t_walk_depth != 0; }

Stub* ClaimOrAllocateStub() {
  if (Stub* shell = ClaimShell()) return shell;
  RegisterForkReset();
  auto* stub = new Stub();  // role kClaimed
  Push(stub);
  return stub;
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
  g_free_shells.fetch_add(1, std::memory_order_relaxed);
  g_free_hint.store(stub, std::memory_order_release);
  // `contents` goes now: value and handler destructors (user code) may call
  // tls, and may claim this very shell again.
}

void WalkLiveStubs(StubPart parts, StubVisitor visit, void* context) {
  struct Walk {
    Walk() noexcept { ++t_walk_depth; }
    ~Walk() {
      if (record != nullptr) {
        record->visiting.store(0, std::memory_order_release);
        g_walks.fetch_sub(record->walks_unit, std::memory_order_release);
        record->claimed.store(false, std::memory_order_release);
      }
      --t_walk_depth;
    }
    Walker* record = nullptr;  // claimed at the first stub of another thread
  } walk;
  ListReader reading;
  for (Stub* s = g_head.load(std::memory_order_seq_cst); s != nullptr; s = s->next_registered) {
    Stub& stub = *s;
    // Shells, cached and spare stubs cost one load. A stub that becomes live
    // after this is a thread or task that began during the walk: missed.
    if (!IsLive(stub.role.load(std::memory_order_acquire))) continue;
    // A stub given back (cached, a shell) keeps its last owner's pthread_t,
    // which glibc hands to the next thread it creates: this one, maybe.
    // Another thread that claims it stores its own pthread_t before its role
    // (release), so after reading the role (acquire) `native` tells.
    if (OwnedHere(stub)) {
      if (walk.record != nullptr) walk.record->visiting.store(0, std::memory_order_release);
      visit(context, stub);  // this thread's own: nothing to hold off
      continue;
    }
    if (walk.record == nullptr) {
      // The first stub of another thread: count the walk, then the barrier
      // after which every owner section that begins sees the count.
      Walker& record = ClaimWalker();
      record.walks_unit = WalksUnit(parts);
      g_walks.fetch_add(record.walks_unit, std::memory_order_relaxed);
      walk.record = &record;
      HeavyBarrier();
    }
    // Ends the previous stub's visit (release) and marks this one; the fence
    // pairs with the owner's fenced path.
    walk.record->visiting.store(Marked(stub, parts), std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    while (stub.writing.load(std::memory_order_acquire) != 0) sched_yield();
    if (IsLive(stub.role.load(std::memory_order_acquire))) visit(context, stub);
  }
}

size_t CountKeptStubs() noexcept {
  size_t kept = 0;
  ListReader reading;
  for (Stub* s = g_head.load(std::memory_order_seq_cst); s != nullptr; s = s->next_registered) {
    const StubRole role = s->role.load(std::memory_order_relaxed);
    kept += role == StubRole::kCached || role == StubRole::kSpare || role == StubRole::kFree;
  }
  return kept;
}

void FreeRegistryIfUnused() noexcept {
  for (Stub* s = g_head.load(std::memory_order_acquire); s != nullptr; s = s->next_registered) {
    if (s->role.load(std::memory_order_relaxed) != StubRole::kFree) return;
  }
  Stub* s = g_head.exchange(nullptr, std::memory_order_seq_cst);
  // A reader that began before the exchange may be on the list: leave it all
  // (this is process exit with a thread still walking). One that begins after
  // it finds the list empty (both sides sequentially consistent).
  if (g_readers.load(std::memory_order_seq_cst) != 0) {
    g_head.store(s, std::memory_order_release);
    return;
  }
  g_free_shells.store(0, std::memory_order_relaxed);
  g_free_hint.store(nullptr, std::memory_order_relaxed);
  while (s != nullptr) delete std::exchange(s, s->next_registered);
  // No walk runs (no reader): the allocated walker records go too.
  Walker* w = g_more_walkers.exchange(nullptr, std::memory_order_acquire);
  while (w != nullptr) delete std::exchange(w, w->next);
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
