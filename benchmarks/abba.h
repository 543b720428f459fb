// Two measurements alternated in ABBA rounds (A B, B A, B A, A B, ...), so
// that drift on a shared machine hits both alike; the median of each. For the
// benchmarks that time a whole workload per round (table_bench flood,
// reset_bench) rather than through Google Benchmark.
#ifndef TLS_BENCHMARKS_ABBA_H_
#define TLS_BENCHMARKS_ABBA_H_

#include <algorithm>
#include <utility>
#include <vector>

namespace tls_bench {

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs a() and b() once each per round, `rounds` rounds; returns the medians
// of what each returned (a time, say).
template <class A, class B>
std::pair<double, double> AbbaMedians(int rounds, A&& a, B&& b) {
  std::vector<double> as, bs;
  for (int r = 0; r < rounds; ++r) {
    const bool a_first = r % 4 == 0 || r % 4 == 3;
    if (a_first) as.push_back(a());
    bs.push_back(b());
    if (!a_first) as.push_back(a());
  }
  return {Median(std::move(as)), Median(std::move(bs))};
}

}  // namespace tls_bench

#endif  // TLS_BENCHMARKS_ABBA_H_
