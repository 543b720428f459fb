// The churn shared by stress_test (exactly-once accounting) and rss_test
// (memory stability): `lanes` driver threads each run a chain of short-lived
// worker threads; every worker does random Set/Get/Del/Reset/Unload/AtExit/
// Slot/ID operations whose closers and handlers themselves call tls. Each
// worker keeps a shadow of what it stored (updated also from inside its
// closers and handlers, which run on the same thread), so the driver knows,
// after join, exactly which values had to be closed once (and destroyed once)
// and which handlers had to run once.
//
// Nesting is bounded so the accounting stays exact without modelling exit
// rounds: level-1 callbacks (what the body registers) may Set/AtExit level-2
// children with fresh keys, and level-1 handlers may also Del/Reset (they run
// in the first exit round, before any value is closed by exit); level-2
// callbacks only count and read. The model-based test covers arbitrary
// nesting, Unload in handlers included.
#ifndef TLS_TESTS_RELIABILITY_STRESS_CHURN_H_
#define TLS_TESTS_RELIABILITY_STRESS_CHURN_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tls/tls.h"

namespace tls_test {

// One value or handler and what happened to it.
struct Tok {
  std::atomic<int> closes{0};
  std::atomic<int> runs{0};
  std::atomic<int> destroyed{0};
  int expect = 1;  // closes (value) or runs (handler) owed; 0 once dropped
  bool handler = false;
  bool slot = false;
  uint64_t seed = 0;
};

struct Payload {
  explicit Payload(Tok* t) : tok(t) {}
  Payload(Payload&& o) noexcept : tok(std::exchange(o.tok, nullptr)) {}
  Payload& operator=(Payload&&) = delete;
  ~Payload() {
    if (tok != nullptr) tok->destroyed.fetch_add(1, std::memory_order_relaxed);
  }
  Tok* tok;
};

// What one worker stored, as it believes.
struct Shadow {
  std::vector<std::unique_ptr<Tok>> toks;
  std::map<int64_t, Tok*> values;  // key -> live value
  std::map<int, Tok*> slots;       // slot number -> live value
  std::vector<Tok*> handlers;      // registered, not yet known to run
  int64_t next_child_key = 1'000'000;
  std::string failure;  // first inconsistency seen by the worker itself

  Tok* NewTok(uint64_t seed, bool handler, bool slot) {
    toks.push_back(std::make_unique<Tok>());
    Tok* t = toks.back().get();
    t->seed = seed;
    t->handler = handler;
    t->slot = slot;
    return t;
  }
  void Fail(std::string what) {
    if (failure.empty()) failure = std::move(what);
  }
};

inline thread_local constinit Shadow* t_shadow = nullptr;

void RunCallback(Tok* tok, int level);

struct SlotValue {
  explicit SlotValue(Tok* t) : p(t) {}
  void Close() {
    p.tok->closes.fetch_add(1, std::memory_order_relaxed);
    RunCallback(p.tok, 1);
  }
  Payload p;
};

inline tls::Slot<SlotValue>& StressSlot(int i) {
  static tls::Slot<SlotValue> slots[3];
  return slots[i];
}

inline constexpr int kMainKeys = 8;

inline tls::Data MakeCounted(Tok* tok, int level) {
  return tls::MakeData(Payload(tok), [level](Payload& p) {
    p.tok->closes.fetch_add(1, std::memory_order_relaxed);
    RunCallback(p.tok, level);
  });
}

inline void AddHandler(Shadow& s, Tok* tok, int level) {
  s.handlers.push_back(tok);
  tls::AtExit([tok, level] {
    tok->runs.fetch_add(1, std::memory_order_relaxed);
    RunCallback(tok, level);
  });
}

// The nested calls a closer or handler makes.
inline void RunCallback(Tok* tok, int level) {
  Shadow* s = t_shadow;
  std::mt19937_64 rng(tok->seed);
  (void)tls::Get(static_cast<int>(rng() % kMainKeys));
  (void)tls::Find("s");
  (void)StressSlot(static_cast<int>(rng() % 3)).Get();
  (void)tls::ID();
  if (level >= 2 || s == nullptr) return;
  const int ops = static_cast<int>(rng() % 3);
  for (int i = 0; i < ops; ++i) {
    switch (rng() % (tok->handler ? 5 : 3)) {
      case 0: {  // a child value under a fresh key: closed once, later
        Tok* child = s->NewTok(rng(), false, false);
        const int64_t key = s->next_child_key++;
        s->values[key] = child;
        tls::Set(key, MakeCounted(child, 2));
        break;
      }
      case 1: {  // a child handler: runs once, in a later round
        AddHandler(*s, s->NewTok(rng(), true, false), 2);
        break;
      }
      case 2: (void)tls::Get(s->next_child_key - 1); break;
      case 3: {  // handlers only: Del drops without closing
        const int64_t key = static_cast<int64_t>(rng() % kMainKeys);
        auto it = s->values.find(key);
        const bool had = it != s->values.end();
        if (had) {
          it->second->expect = 0;
          s->values.erase(it);
        }
        if (tls::Del(key) != had) s->Fail("Del in a handler disagreed");
        break;
      }
      case 4:  // handlers only: Reset closes what is stored now
        s->values.clear();
        s->slots.clear();
        tls::Reset();
        break;
    }
  }
}

// The body of one worker thread.
inline void WorkerBody(Shadow& s, uint64_t seed, int ops, std::latch* all_alive,
                       std::vector<uint64_t>* ids) {
  t_shadow = &s;
  std::mt19937_64 rng(seed);
  uint64_t id = 0;
  auto check_id = [&] {
    const uint64_t now = tls::ID();
    if (id != 0 && now != id) s.Fail("ID changed without Unload");
    if (id == 0) ids->push_back(now);
    id = now;
  };
  for (int i = 0; i < ops; ++i) {
    if (all_alive != nullptr && i == ops / 2) {
      check_id();
      all_alive->arrive_and_wait();  // every lane's worker is alive and holds values
    }
    const int64_t key = static_cast<int64_t>(rng() % kMainKeys);
    switch (rng() % 16) {
      case 0:
      case 1:
      case 2:
      case 3: {  // Set (over an old value: old is dropped)
        Tok* t = s.NewTok(rng(), false, false);
        auto it = s.values.find(key);
        if (it != s.values.end()) it->second->expect = 0;
        s.values[key] = t;
        tls::Set(key, MakeCounted(t, 1));
        break;
      }
      case 4:
      case 5: {  // Get matches the shadow
        std::optional<tls::Data> d = tls::Get(key);
        auto it = s.values.find(key);
        Tok* want = it == s.values.end() ? nullptr : it->second;
        Tok* got = d ? d->Value<Payload>().tok : nullptr;
        if (want != got) s.Fail("Get returned another value");
        break;
      }
      case 6: {  // Del drops without closing
        auto it = s.values.find(key);
        const bool had = it != s.values.end();
        if (had) {
          it->second->expect = 0;
          s.values.erase(it);
        }
        if (tls::Del(key) != had) s.Fail("Del disagreed");
        break;
      }
      case 7:  // Reset closes everything stored now, keeps handlers and ID
        s.values.clear();
        s.slots.clear();
        tls::Reset();
        if (id != 0 && tls::ID() != id) s.Fail("Reset changed the ID");
        break;
      case 8:
        if (rng() % 4 == 0) {  // Unload drops everything unclosed, unrun
          for (auto& [k, t] : s.values) t->expect = 0;
          for (auto& [k, t] : s.slots) t->expect = 0;
          for (Tok* t : s.handlers) t->expect = 0;
          s.values.clear();
          s.slots.clear();
          s.handlers.clear();
          tls::Unload();
          if (id != 0) {
            const uint64_t fresh = tls::ID();
            if (fresh <= id) s.Fail("ID after Unload not fresh");
            ids->push_back(fresh);
            id = fresh;
          }
        }
        break;
      case 9:
      case 10: AddHandler(s, s.NewTok(rng(), true, false), 1); break;
      case 11: {  // Slot emplace (over an old value: dropped)
        const int n = static_cast<int>(rng() % 3);
        Tok* t = s.NewTok(rng(), false, true);
        auto it = s.slots.find(n);
        if (it != s.slots.end()) it->second->expect = 0;
        s.slots[n] = t;
        StressSlot(n).Emplace(t);
        break;
      }
      case 12: {  // Slot get / del
        const int n = static_cast<int>(rng() % 3);
        auto it = s.slots.find(n);
        Tok* want = it == s.slots.end() ? nullptr : it->second;
        SlotValue* v = StressSlot(n).Get();
        if ((v ? v->p.tok : nullptr) != want) s.Fail("Slot Get returned another value");
        if (rng() % 2) {
          if (want != nullptr) {
            want->expect = 0;
            s.slots.erase(it);
          }
          if (StressSlot(n).Del() != (want != nullptr)) s.Fail("Slot Del disagreed");
        }
        break;
      }
      case 13: check_id(); break;
      case 14: {  // string keys share the table with integer keys
        Tok* t = s.NewTok(rng(), false, false);
        const int64_t skey = -1 - key;  // shadow name for the string key
        auto it = s.values.find(skey);
        if (it != s.values.end()) it->second->expect = 0;
        s.values[skey] = t;
        tls::Set("s" + std::to_string(key), MakeCounted(t, 1));
        break;
      }
      default: (void)tls::Find(key); break;
    }
  }
}

struct ChurnTotals {
  std::atomic<uint64_t> lifetimes{0}, closes{0}, runs{0}, dropped{0};
  std::atomic<uint64_t> failures{0};
  std::string first_failure;  // guarded by failure_mu
  std::mutex failure_mu;
  void Fail(const std::string& what) {
    if (failures.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> lock(failure_mu);
      first_failure = what;
    }
  }
};

// Checks one finished worker's tokens against what it owed.
inline void Verify(Shadow& s, uint64_t seed, ChurnTotals& totals) {
  if (!s.failure.empty()) totals.Fail("seed " + std::to_string(seed) + ": " + s.failure);
  for (auto& t : s.toks) {
    if (t->handler) {
      if (t->runs.load() != t->expect) {
        totals.Fail("seed " + std::to_string(seed) + ": handler ran " +
                    std::to_string(t->runs.load()) + " times, owed " + std::to_string(t->expect));
      }
      totals.runs += t->runs.load();
    } else {
      if (t->closes.load() != t->expect || t->destroyed.load() != 1) {
        totals.Fail("seed " + std::to_string(seed) + (t->slot ? ": slot" : ": keyed") +
                    " value closed " + std::to_string(t->closes.load()) + " times (owed " +
                    std::to_string(t->expect) + "), destroyed " +
                    std::to_string(t->destroyed.load()) + " times (owed 1)");
      }
      totals.closes += t->closes.load();
    }
    if (t->expect == 0) ++totals.dropped;
  }
}

// Runs `lifetimes` worker threads on `lanes` lanes (so `lanes` workers live
// at once). `on_progress(done)` is called by lane 0 now and then.
inline void Churn(int lanes, long lifetimes, int ops, ChurnTotals& totals,
                  std::vector<uint64_t>* all_ids,
                  const std::function<void(long)>& on_progress = nullptr) {
  std::latch all_alive(lanes);
  std::vector<std::vector<uint64_t>> ids(lanes);
  std::vector<std::thread> lane_threads;
  std::atomic<long> next{0};
  for (int lane = 0; lane < lanes; ++lane) {
    lane_threads.emplace_back([&, lane] {
      bool first = true;
      for (long n; (n = next.fetch_add(1)) < lifetimes;) {
        const uint64_t seed = 0x5eed0000ull + static_cast<uint64_t>(n);
        auto s = std::make_unique<Shadow>();
        std::thread worker(WorkerBody, std::ref(*s), seed, ops, first ? &all_alive : nullptr,
                           &ids[lane]);
        worker.join();
        first = false;
        Verify(*s, seed, totals);
        ++totals.lifetimes;
        if (lane == 0 && on_progress) on_progress(n);
      }
      if (first) all_alive.count_down();  // never ran a worker: do not block the rest
    });
  }
  for (std::thread& t : lane_threads) t.join();
  if (all_ids != nullptr) {
    for (auto& v : ids) all_ids->insert(all_ids->end(), v.begin(), v.end());
  }
}

}  // namespace tls_test

#endif  // TLS_TESTS_RELIABILITY_STRESS_CHURN_H_
