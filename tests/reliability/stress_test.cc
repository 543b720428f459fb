// Stress: 64 threads at once, 100,000 thread lifetimes in all, random
// operations whose closers and handlers call tls; every close and handler
// run is checked exactly-once against what its thread owed (stress_churn.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "tests/reliability/stress_churn.h"
#include "tests/reliability/test_util.h"

namespace tls_test {
namespace {

TEST(Stress, ExactlyOnceUnderChurn) {
  // TLS_STRESS_LIFETIMES overrides; sanitizers make each thread ~10x dearer.
  const long lifetimes = Scaled("TLS_STRESS_LIFETIMES", 100'000, 12'000, 6'000);
  constexpr int kLanes = 64;
  ChurnTotals totals;
  std::vector<uint64_t> ids;
  const double start = NowSeconds();
  Churn(kLanes, lifetimes, 24, totals, &ids);
  std::printf("Stress: %ld lifetimes in %.1f s: %llu closes, %llu handler runs, %llu dropped\n",
              lifetimes, NowSeconds() - start,
              static_cast<unsigned long long>(totals.closes.load()),
              static_cast<unsigned long long>(totals.runs.load()),
              static_cast<unsigned long long>(totals.dropped.load()));
  EXPECT_EQ(totals.lifetimes.load(), static_cast<uint64_t>(lifetimes));
  EXPECT_EQ(totals.failures.load(), 0u)
      << totals.failures.load() << " failures; first: " << totals.first_failure;
  // The workload really exercised closing, running and dropping.
  EXPECT_GT(totals.closes.load(), static_cast<uint64_t>(lifetimes));
  EXPECT_GT(totals.runs.load(), static_cast<uint64_t>(lifetimes));
  EXPECT_GT(totals.dropped.load(), 0u);
  // IDs are unique across every thread and every Unload.
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "an ID was reused";
  EXPECT_GT(ids.size(), static_cast<size_t>(lifetimes / 2));
}

}  // namespace
}  // namespace tls_test
