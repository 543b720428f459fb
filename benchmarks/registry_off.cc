// The registry of stubs switched off, for benchmarks only: linked into
// :core_without_registry in place of core/internal/registry.cc, so that thread
// churn and thread cost can be measured with and without the registry in one
// run (churn_bench.cc, thread_cost.cc). Stubs are allocated and deleted, walks
// visit nothing, nothing is kept. Owner write sections stay as in the engine
// (two plain stores and a load; with no walk they never wait). Never for real use.
#include "core/internal/registry.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

constinit std::atomic<uint32_t> g_walks{0};  // never changes: no walk runs

void OwnerWriteSection::WaitWhileVisited(Stub&, StubPart) noexcept {}
bool WalkingOnThisThread() noexcept { return false; }
Stub* ClaimOrAllocateStub() { return new Stub(); }
void RetireStubToShell(Stub* stub) noexcept { delete stub; }
void WalkLiveStubs(StubPart, StubVisitor, void*) {}
size_t CountKeptStubs() noexcept { return 0; }
void FreeRegistryIfUnused() noexcept {}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
