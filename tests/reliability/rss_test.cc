// Stress, memory side: after a warm-up, further thread churn must not grow
// RSS (a per-thread leak of a stub, a value or a handler would). Tagged
// notsan: sanitizers keep freed memory in quarantine.
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/reliability/stress_churn.h"
#include "tests/reliability/test_util.h"

namespace tls_test {
namespace {

TEST(Stress, RssStableAfterWarmUp) {
  const long lifetimes = Scaled("TLS_STRESS_LIFETIMES", 100'000, 100'000, 100'000);
  const long warm_up = lifetimes / 5;
  constexpr int kLanes = 64;
  ChurnTotals warm_totals, totals;
  Churn(kLanes, warm_up, 24, warm_totals, nullptr);
  const long after_warm_up = ResidentBytes();
  Churn(kLanes, lifetimes - warm_up, 24, totals, nullptr);
  const long at_end = ResidentBytes();
  ASSERT_GT(after_warm_up, 0);
  std::printf("RSS after %ld warm-up lifetimes: %.1f MiB; after %ld more: %.1f MiB\n", warm_up,
              after_warm_up / 1048576.0, lifetimes - warm_up, at_end / 1048576.0);
  EXPECT_EQ(warm_totals.failures.load() + totals.failures.load(), 0u);
  // Generous: allocator noise is a few MiB; leaking even ~150 bytes per
  // thread lifetime would add > 11 MiB here.
  EXPECT_LT(at_end - after_warm_up, 8l << 20) << "RSS grew across thread churn";
}

}  // namespace
}  // namespace tls_test
