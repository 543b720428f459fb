// The baselines the engine is measured against, compiled in their own
// translation unit and marked noipa so every call is a real call: the
// "non-inlined thread_local read" of issue 4, not a value the optimiser keeps
// in a register across the loop.
#ifndef TLS_BENCHMARKS_PEERS_H_
#define TLS_BENCHMARKS_PEERS_H_

namespace tls_bench {

// A plain `thread_local int`, read and written through a non-inlined call.
int ThreadLocalGet();
void ThreadLocalSet(int v);

// A `thread_local uint64_t` id, as ID()'s baseline.
unsigned long ThreadLocalId();

}  // namespace tls_bench

#endif  // TLS_BENCHMARKS_PEERS_H_
