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
// Bumped in a fork child: a walk begun before the fork (by the forking thread,
// from a visitor) must not decrement counts the child has reset.
constinit std::atomic<uint64_t> g_fork_generation{0};
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

// A walk's visitor count on one stub, handed out in batches per barrier.
constexpr int kWalkBatch = 128;

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
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  new (&g_barrier_lock) std::mutex();  // another thread may have held it at the fork
  size_t free = 0;
  for (Stub* s = g_head.load(std::memory_order_relaxed); s != nullptr; s = s->next_registered) {
    s->writing.store(0, std::memory_order_relaxed);
    s->table_visitors.store(0, std::memory_order_relaxed);
    s->slot_visitors.store(0, std::memory_order_relaxed);
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

void OwnerWriteSection::WaitForVisitors(Stub& stub, StubPart part) noexcept {
  for (;;) {
    stub.writing.store(0, std::memory_order_release);
    while (Gated(stub, part)) sched_yield();
    stub.writing.store(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (!Gated(stub, part)) return;
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

namespace {

// A walker's hold on the parts of one stub it reads.
void Gate(Stub& stub, StubPart parts) noexcept {
  if (Includes(parts, StubPart::kTable)) {
    stub.table_visitors.fetch_add(1, std::memory_order_relaxed);
  }
  if (Includes(parts, StubPart::kSlots)) {
    stub.slot_visitors.fetch_add(1, std::memory_order_relaxed);
  }
}

void Ungate(Stub& stub, StubPart parts) noexcept {
  if (Includes(parts, StubPart::kTable)) {
    stub.table_visitors.fetch_sub(1, std::memory_order_release);
  }
  if (Includes(parts, StubPart::kSlots)) {
    stub.slot_visitors.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace

void WalkLiveStubs(WalkMode mode, StubVisitor visit, void* context) {
  struct Depth {
    Depth() noexcept { ++t_walk_depth; }
    ~Depth() { --t_walk_depth; }
  } depth;
  const int batch_size = mode.batched ? kWalkBatch : 1;
  Stub* batch[kWalkBatch];
  bool gated[kWalkBatch];
  ListReader reading;
  Stub* next = g_head.load(std::memory_order_seq_cst);
  while (next != nullptr) {
    int n = 0;
    for (; next != nullptr && n < batch_size; next = next->next_registered, ++n) {
      batch[n] = next;
      gated[n] = !OwnedHere(*next);
      if (gated[n]) Gate(*next, mode.parts);
    }
    const uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
    if (std::find(gated, gated + n, true) != gated + n) HeavyBarrier();
    // Releases stub i's gate, once; not across a fork (the child reset the
    // counts). Runs for the rest of the batch if a visitor throws (or a
    // forced unwind passes): their owners would wait for ever.
    const auto ungate_one = [&](int i) noexcept {
      if (std::exchange(gated[i], false) &&
          g_fork_generation.load(std::memory_order_relaxed) == generation) {
        Ungate(*batch[i], mode.parts);
      }
    };
    int i = 0;
    struct UngateRest {
      const decltype(ungate_one)& ungate;
      int& i;
      int n;
      ~UngateRest() {
        for (; i < n; ++i) ungate(i);
      }
    } ungate_rest{ungate_one, i, n};
    for (; i < n; ++i) {
      Stub& stub = *batch[i];
      if (gated[i]) {
        while (stub.writing.load(std::memory_order_acquire) != 0) sched_yield();
      }
      const StubRole role = stub.role.load(std::memory_order_acquire);
      // Ungated: this thread's own at the batch, or so it seemed. A stub
      // given back (cached, a shell) keeps its last owner's pthread_t, which
      // glibc hands to the next thread it creates: this one, maybe. Another
      // thread that claims it stores its own pthread_t before its role
      // (release), so after reading the role (acquire) `native` tells.
      if (!gated[i] && !OwnedHere(stub)) continue;  // someone else's: not ours to read
      if (IsLive(role)) visit(context, stub);
      ungate_one(i);
    }
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
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
