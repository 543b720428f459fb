#include "benchmarks/peers.h"

namespace tls_bench {
namespace {
thread_local int t_value = 0;
thread_local unsigned long t_id = 1;
}  // namespace

__attribute__((noinline, noipa)) int ThreadLocalGet() { return t_value; }
__attribute__((noinline, noipa)) void ThreadLocalSet(int v) { t_value = v; }
__attribute__((noinline, noipa)) unsigned long ThreadLocalId() { return t_id; }

}  // namespace tls_bench
