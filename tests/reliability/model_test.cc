// Model-based randomized test: random programs of tls operations, with nested
// programs inside values' closes, AtExit handlers and tasks, run on a fresh thread
// against the engine and through a small reference model of the documented
// semantics (docs/semantics.md, "Exit, precisely" and the tables). Both produce a trace of
// everything observable; the traces must be equal. On a mismatch the test
// prints the seed, shrinks the program (delta debugging) and prints the
// shortest failing program with both traces.
//
// Slot 1 is made with a retire function (slot.h, the fold behind tls::Counter):
// the model predicts each "retire" event, just before the round of closes
// that closes the value (Reset, a thread's or a task's end), and none for a
// value dropped unclosed (Del, Emplace over it, Unload, an exit that gave up).
//
// The one freedom the contract leaves, the order of closes within one round,
// is not guessed: the model closes the values it expects in that round in the
// order the engine closed them, so a wrong set of values still shows.
// A second test breaks the model on purpose and checks the comparison notices.
//
//   TLS_MODEL_CASES=N   how many seeds to run (seeds 1..N)
//   TLS_MODEL_SEED=S    replay seed S only, printing its program and trace
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/reliability/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

// --- the operation language -------------------------------------------------

enum class OpKind {
  kSet,   // Set(key, new value v<id>); `body` runs when the value is closed
  kGet,   // observes which value (if any) is under key
  kDel,   // observes whether key was present
  kCopy,  // Get(key) then Set(key2, the same Data): one value, two keys
  kId,    // observes the ID, as "same as before" / "new"
  kReset,
  kUnload,
  kAtExit,   // handler h<id>; `body` runs when it does
  kChain,    // handler h<id> that re-registers itself `count` more times
  kSlotSet,  // Slot[slot].Emplace(value v<id>); `body` runs when it is closed
             // (Slot[kRetireSlot] hands it to its retire function first)
  kSlotGet,
  kSlotDel,
  kThrow,  // only inside a body: the callback throws here
  kTask,   // runs `body` as a task (tls::Run) in a snapshot captured now: of
           // every key (count even) or of `key` only (count odd)
};

struct Op {
  OpKind kind;
  int key = 0;   // index into kKeys
  int key2 = 0;  // kCopy's target
  int slot = 0;
  int id = 0;     // value or handler id, unique in the whole program
  int count = 0;  // kChain
  std::vector<Op> body;
};
using Program = std::vector<Op>;

// Every op node executes at most once (a value closes once, a handler runs
// once), so a static id names one runtime value or handler.

// Keys in several C++ forms. Aliases must be one key (integers by value across
// types, strings whatever their form); the kinds never meet ("1" is not 1) and
// -1 is not UINT64_MAX.
struct KeySpec {
  const char* shown;      // how the printed program spells it
  const char* canonical;  // the model's identity of the key
};
constexpr KeySpec kKeys[] = {
    {"\"1\"", "s:1"},
    {"1", "i:1"},
    {"uint8_t{1}", "i:1"},
    {"std::string(\"key\")", "s:key"},
    {"std::string_view(\"key\")", "s:key"},
    {"int64_t{-1}", "i:-1"},
    {"UINT64_MAX", "i:18446744073709551615"},
    {"\"a key longer than sixteen bytes\"", "s:a key longer than sixteen bytes"},
};
constexpr int kNumKeys = sizeof(kKeys) / sizeof(kKeys[0]);
constexpr int kNumSlots = 2;
constexpr int kRetireSlot = 1;  // made with a retire function

// Calls `f` with the engine key of index `k`, built in its own C++ form.
template <class F>
void WithKey(int k, F&& f) {
  switch (k) {
    case 0: return f(tls::Key("1"));
    case 1: return f(tls::Key(1));
    case 2: return f(tls::Key(uint8_t{1}));
    case 3: return f(tls::Key(std::string("key")));
    case 4: return f(tls::Key(std::string_view("key")));
    case 5: return f(tls::Key(int64_t{-1}));
    case 6: return f(tls::Key(std::numeric_limits<uint64_t>::max()));
    default: return f(tls::Key("a key longer than sixteen bytes"));
  }
}

// --- generating programs ----------------------------------------------------

using Rng = std::mt19937_64;

int Pick(Rng& rng, int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); }

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  // Nesting is bounded: bodies of depth-2 ops are empty.
  Program Generate(int depth = 0) {
    const int n = depth == 0 ? 1 + Pick(rng_, 12) : Pick(rng_, depth == 1 ? 5 : 4);
    Program p;
    for (int i = 0; i < n; ++i) p.push_back(GenerateOp(depth));
    return p;
  }

 private:
  Op GenerateOp(int depth) {
    // Weights: reads and writes dominate; state-wiping ops are rarer so
    // programs keep something for exit to do.
    static constexpr std::pair<OpKind, int> kWeights[] = {
        {OpKind::kSet, 20},  {OpKind::kGet, 14},    {OpKind::kDel, 7},     {OpKind::kCopy, 6},
        {OpKind::kId, 8},    {OpKind::kReset, 5},   {OpKind::kUnload, 3},  {OpKind::kAtExit, 14},
        {OpKind::kChain, 2}, {OpKind::kSlotSet, 6}, {OpKind::kSlotGet, 5}, {OpKind::kSlotDel, 3},
        {OpKind::kThrow, 3}, {OpKind::kTask, 5},
    };
    int total = 0;
    for (auto [kind, w] : kWeights) total += (kind == OpKind::kThrow && depth == 0) ? 0 : w;
    int r = Pick(rng_, total);
    OpKind kind = OpKind::kGet;
    for (auto [k, w] : kWeights) {
      if (k == OpKind::kThrow && depth == 0) continue;
      if (r < w) {
        kind = k;
        break;
      }
      r -= w;
    }
    Op op{kind, 0, 0, 0, 0, 0, {}};
    op.key = Pick(rng_, kNumKeys);
    op.key2 = Pick(rng_, kNumKeys);
    op.slot = Pick(rng_, kNumSlots);
    op.id = next_id_++;
    // Mostly short chains; sometimes one long enough to hit kMaxExitRounds.
    op.count = Pick(rng_, 8) == 0 ? tls::kMaxExitRounds - 4 + Pick(rng_, 8) : Pick(rng_, 4);
    const bool has_body = kind == OpKind::kSet || kind == OpKind::kAtExit ||
                          kind == OpKind::kSlotSet || kind == OpKind::kTask;
    if (has_body && depth < 2 && Pick(rng_, 3) != 0) op.body = Generate(depth + 1);
    return op;
  }

  Rng rng_;
  int next_id_ = 1;
};

// --- printing ---------------------------------------------------------------

std::string KeyName(int k) { return kKeys[k].shown; }

std::string OpHead(const Op& op) {
  const std::string v = "v" + std::to_string(op.id);
  const std::string h = "h" + std::to_string(op.id);
  const std::string s = "Slot" + std::to_string(op.slot);
  switch (op.kind) {
    case OpKind::kSet: return "Set(" + KeyName(op.key) + ", " + v + ")";
    case OpKind::kGet: return "Get(" + KeyName(op.key) + ")";
    case OpKind::kDel: return "Del(" + KeyName(op.key) + ")";
    case OpKind::kCopy: return "Copy(" + KeyName(op.key) + " -> " + KeyName(op.key2) + ")";
    case OpKind::kId: return "ID()";
    case OpKind::kReset: return "Reset()";
    case OpKind::kUnload: return "Unload()";
    case OpKind::kAtExit: return "AtExit(" + h + ")";
    case OpKind::kChain:
      return "AtExit(" + h + ": re-registers itself " + std::to_string(op.count) + " times)";
    case OpKind::kSlotSet: return s + ".Emplace(" + v + ")";
    case OpKind::kSlotGet: return s + ".Get()";
    case OpKind::kSlotDel: return s + ".Del()";
    case OpKind::kThrow: return "throw";
    case OpKind::kTask:
      return op.count % 2 == 0 ? "Task(Capture())" : "Task(Capture({" + KeyName(op.key) + "}))";
  }
  return "?";
}

void Print(const Program& p, int indent, std::string* out) {
  for (const Op& op : p) {
    out->append(indent, ' ');
    out->append(OpHead(op));
    if (!op.body.empty()) {
      out->append(op.kind == OpKind::kAtExit || op.kind == OpKind::kTask ? " runs {\n"
                                                                         : " closes with {\n");
      Print(op.body, indent + 2, out);
      out->append(indent, ' ');
      out->append("}");
    }
    out->append("\n");
  }
}

std::string ToString(const Program& p) {
  std::string out;
  Print(p, 2, &out);
  return out;
}

int CountOps(const Program& p) {
  int n = 0;
  for (const Op& op : p) n += 1 + CountOps(op.body);
  return n;
}

// --- traces -----------------------------------------------------------------

// Everything observable, in order. Both sides format events with the helpers
// below so only behaviour can differ, never spelling.
struct Trace {
  std::vector<std::string> events;
  // Raw IDs in order of first sighting: "#0" is the first ID seen, and so on,
  // so "same ID" and "new ID" compare without knowing the global counter.
  std::vector<uint64_t> ids;
  // Engine only: when each value was first closed, used by the model to follow
  // the engine's (unspecified) order within one close round.
  std::map<int, size_t> close_position;

  void Add(std::string e) { events.push_back(std::move(e)); }

  // 0 means "no stub". A new ID must be larger than every one seen before.
  std::string IdName(uint64_t raw) {
    if (raw == 0) return "none";
    auto it = std::find(ids.begin(), ids.end(), raw);
    std::string name = "#" + std::to_string(it - ids.begin());
    if (it == ids.end()) {
      if (!ids.empty() && raw < *std::max_element(ids.begin(), ids.end())) {
        name += " (smaller than an earlier ID!)";
      }
      ids.push_back(raw);
    }
    return name;
  }
};

std::string ValueName(std::optional<int> id) {
  return id ? "v" + std::to_string(*id) : std::string("none");
}
std::string Bool(bool b) { return b ? "true" : "false"; }
constexpr char kThreadEnds[] = "-- thread function returns --";

std::string OpEvent(const Op& op) { return OpHead(op); }
std::string ResultEvent(const Op& op, const std::string& result) {
  return OpHead(op) + " -> " + result;
}
std::string TaskEndEvent(const Op& op, bool threw) {
  return OpHead(op) + (threw ? " ended by a throw" : " ended");
}
std::string CloseEvent(int id) { return "close v" + std::to_string(id); }
std::string RetireEvent(int id) { return "retire v" + std::to_string(id); }
std::string RunEvent(int id) { return "run h" + std::to_string(id); }
std::string ChainEvent(int id, int left) {
  return "run h" + std::to_string(id) + " (" + std::to_string(left) + " re-registrations left)";
}
std::string ErrorEvent(tls::ErrorSource source, const std::string& id) {
  const char* what = source == tls::ErrorSource::kClose           ? "close threw"
                     : source == tls::ErrorSource::kAtExitHandler ? "handler threw"
                                                                  : "exit gave up after 64 rounds";
  return std::string("error reported: ") + what + " (thread " + id + ")";
}

// --- the engine side --------------------------------------------------------

struct ProgramThrow : std::runtime_error {
  ProgramThrow() : std::runtime_error("thrown by the test program") {}
};

// The trace of the case running on this thread. Trivially destructible, so it
// is still readable while the exit sequence runs after the thread function.
thread_local constinit Trace* t_trace = nullptr;

void RecordError(const tls::ErrorInfo& e) {
  if (t_trace != nullptr) t_trace->Add(ErrorEvent(e.source, t_trace->IdName(e.thread_id)));
}

void RunOnEngine(const Program& p);

// A keyed value; its closer (not the value) knows the close program.
struct Val {
  int id;
};

void Closed(int id, const Program* body) {
  if (t_trace->close_position.count(id) == 0) t_trace->close_position[id] = t_trace->events.size();
  t_trace->Add(CloseEvent(id));
  RunOnEngine(*body);
}

// A slot value closes through its own Close(), as MakeData's values may.
struct SlotVal {
  SlotVal(int i, const Program* b) : id(i), body(b) {}
  void Close() { Closed(id, body); }
  int id;
  const Program* body;
};

tls::Slot<SlotVal>& TestSlot(int i) {
  static tls::Slot<SlotVal> plain;
  static tls::Slot<SlotVal> retiring([](SlotVal& v) { t_trace->Add(RetireEvent(v.id)); });
  static_assert(kNumSlots == 2 && kRetireSlot == 1);
  return i == kRetireSlot ? retiring : plain;
}

void RegisterChain(int id, int left) {
  tls::AtExit([id, left] {
    t_trace->Add(ChainEvent(id, left));
    if (left > 0) RegisterChain(id, left - 1);
  });
}

std::optional<int> IdOf(const tls::Data* d) {
  if (d == nullptr) return std::nullopt;
  return d->Value<Val>().id;
}

void RunOpOnEngine(const Op& op) {
  Trace& t = *t_trace;
  switch (op.kind) {
    case OpKind::kSet: {
      t.Add(OpEvent(op));
      const Program* body = &op.body;
      const int id = op.id;
      WithKey(op.key, [&](const tls::Key& k) {
        tls::Set(k, tls::MakeData(Val{id}, [id, body](Val&) { Closed(id, body); }));
      });
      break;
    }
    case OpKind::kGet:
      WithKey(op.key, [&](const tls::Key& k) {
        std::optional<tls::Data> d = tls::Get(k);
        std::string result = ValueName(IdOf(d ? &*d : nullptr));
        // Find must agree with Get; the model never says otherwise.
        if (IdOf(tls::Find(k)) != IdOf(d ? &*d : nullptr)) result += " (but Find disagrees!)";
        t.Add(ResultEvent(op, result));
      });
      break;
    case OpKind::kDel:
      WithKey(op.key, [&](const tls::Key& k) { t.Add(ResultEvent(op, Bool(tls::Del(k)))); });
      break;
    case OpKind::kCopy: {
      std::optional<tls::Data> d;
      WithKey(op.key, [&](const tls::Key& k) { d = tls::Get(k); });
      t.Add(ResultEvent(op, ValueName(IdOf(d ? &*d : nullptr))));
      if (d) WithKey(op.key2, [&](const tls::Key& k) { tls::Set(k, *d); });
      break;
    }
    case OpKind::kId: t.Add(ResultEvent(op, t.IdName(tls::ID()))); break;
    case OpKind::kReset:
      t.Add(OpEvent(op));
      tls::Reset();
      break;
    case OpKind::kUnload:
      t.Add(OpEvent(op));
      tls::Unload();
      break;
    case OpKind::kAtExit: {
      t.Add(OpEvent(op));
      const Program* body = &op.body;
      const int id = op.id;
      tls::AtExit([id, body] {
        t_trace->Add(RunEvent(id));
        RunOnEngine(*body);
      });
      break;
    }
    case OpKind::kChain:
      t.Add(OpEvent(op));
      RegisterChain(op.id, op.count);
      break;
    case OpKind::kSlotSet:
      t.Add(OpEvent(op));
      TestSlot(op.slot).Emplace(op.id, &op.body);
      break;
    case OpKind::kSlotGet: {
      const SlotVal* v = TestSlot(op.slot).Get();
      t.Add(ResultEvent(op, ValueName(v ? std::optional<int>(v->id) : std::nullopt)));
      break;
    }
    case OpKind::kSlotDel: t.Add(ResultEvent(op, Bool(TestSlot(op.slot).Del()))); break;
    case OpKind::kThrow: t.Add(OpEvent(op)); throw ProgramThrow();
    case OpKind::kTask: {
      t.Add(OpEvent(op));
      tls::Snapshot snapshot;
      if (op.count % 2 == 0) {
        snapshot = tls::Capture();
      } else {
        WithKey(op.key, [&](const tls::Key& k) { snapshot = tls::Capture({k}); });
      }
      // The ways to run a task, which must behave the same: Run (borrowing the
      // snapshot), a TaskScope (owning it), and, for a capture of every key,
      // Wrap (capturing itself, as the snapshot above did).
      const int way = op.id % (op.count % 2 == 0 ? 3 : 2);
      bool threw = false;
      try {
        if (way == 0) {
          tls::Run(snapshot, [&] { RunOnEngine(op.body); });
        } else if (way == 1) {
          tls::TaskScope scope(std::move(snapshot));
          RunOnEngine(op.body);
        } else {
          tls::Wrap([&] { RunOnEngine(op.body); })();
        }
      } catch (const ProgramThrow&) {
        threw = true;  // after the task's exit ran
      }
      t.Add(TaskEndEvent(op, threw));
      break;
    }
  }
}

void RunOnEngine(const Program& p) {
  for (const Op& op : p) RunOpOnEngine(op);
}

// Runs `p` on a fresh thread; the trace ends when the thread's exit sequence
// has finished (join waits for it).
Trace EngineTrace(const Program& p) {
  Trace trace;
  std::thread([&] {
    t_trace = &trace;
    try {
      RunOnEngine(p);
    } catch (const ProgramThrow&) {
      trace.Add("throw escaped the thread function!");  // the generator never puts one there
    }
    trace.Add(kThreadEnds);
  }).join();
  return trace;
}

// --- the reference model ----------------------------------------------------

// Deliberate bugs, so a test can check that the comparison catches them.
enum class Mutation {
  kNone,
  kClosesBeforeHandlers,  // exit closes values while handlers are pending
  kHandlersOldestFirst,
  kUnloadKeepsTheRound,  // Unload in a handler lets the round's rest run
  kCopiesCloseTwice,     // forgets that copies of one Data share the close
  kTaskClosesCaptured,   // a task's end closes the values it was given too
  kRetireAfterClose,     // a round's retires come after its closes
  kRetireWhenDropped,    // Del, Emplace over a value and Unload retire it too
};

// The documented semantics, on plain containers.
class Model {
 public:
  Model(const std::map<int, size_t>& engine_close_position, Mutation mutation)
      : engine_close_position_(engine_close_position), mutation_(mutation) {}

  Trace Run(const Program& p) {
    RunProgram(p);  // a throw at the top level is never generated
    trace_.Add(kThreadEnds);
    ThreadExit();
    return std::move(trace_);
  }

 private:
  struct Value {
    int id;
    const Program* body;  // the close program
  };
  struct Handler {
    int id;
    const Program* body;  // null for a chain
    int chain_left = 0;
  };

  // Set, ID, AtExit and slot stores create the stub; a new stub has a new ID.
  void EnsureStub() {
    if (!has_stub_) {
      has_stub_ = true;
      generation_ = ++last_generation_;
    }
  }
  std::string CurrentId() { return trace_.IdName(has_stub_ ? generation_ : 0); }

  std::optional<int> Lookup(int key) const {
    auto it = values_.find(kKeys[key].canonical);
    if (it == values_.end()) return std::nullopt;
    return it->second.id;
  }

  // Returns false if the program threw (the rest of it does not run).
  bool RunProgram(const Program& p) {
    for (const Op& op : p) {
      if (!RunOp(op)) return false;
    }
    return true;
  }

  bool RunOp(const Op& op) {
    switch (op.kind) {
      case OpKind::kSet:
        trace_.Add(OpEvent(op));
        EnsureStub();
        values_[kKeys[op.key].canonical] = Value{op.id, &op.body};
        break;  // the replaced value is not closed
      case OpKind::kGet: trace_.Add(ResultEvent(op, ValueName(Lookup(op.key)))); break;
      case OpKind::kDel: {
        auto it = values_.find(kKeys[op.key].canonical);
        trace_.Add(ResultEvent(op, Bool(it != values_.end())));
        if (it != values_.end()) values_.erase(it);  // not closed
        break;
      }
      case OpKind::kCopy: {
        auto it = values_.find(kKeys[op.key].canonical);
        trace_.Add(ResultEvent(op, ValueName(Lookup(op.key))));
        if (it != values_.end()) values_[kKeys[op.key2].canonical] = it->second;
        break;
      }
      case OpKind::kId:
        EnsureStub();
        trace_.Add(ResultEvent(op, CurrentId()));
        break;
      case OpKind::kReset:
        trace_.Add(OpEvent(op));
        if (has_stub_) CloseAll();  // keeps the ID and the handlers
        break;
      case OpKind::kUnload:
        trace_.Add(OpEvent(op));
        Unload();
        break;
      case OpKind::kAtExit:
        trace_.Add(OpEvent(op));
        EnsureStub();
        handlers_.push_back(Handler{op.id, &op.body});
        break;
      case OpKind::kChain:
        trace_.Add(OpEvent(op));
        EnsureStub();
        handlers_.push_back(Handler{op.id, nullptr, op.count});
        break;
      case OpKind::kSlotSet:
        trace_.Add(OpEvent(op));
        EnsureStub();
        if (auto it = slots_.find(op.slot); it != slots_.end())
          RetireIfMutated(op.slot, it->second);
        slots_[op.slot] = Value{op.id, &op.body};  // the replaced one is not closed, not retired
        break;
      case OpKind::kSlotGet: {
        auto it = slots_.find(op.slot);
        trace_.Add(ResultEvent(
            op, ValueName(it == slots_.end() ? std::nullopt : std::optional<int>(it->second.id))));
        break;
      }
      case OpKind::kSlotDel: {
        auto it = slots_.find(op.slot);
        trace_.Add(ResultEvent(op, Bool(it != slots_.end())));
        if (it != slots_.end()) {
          RetireIfMutated(op.slot, it->second);
          slots_.erase(it);  // not closed, not retired
        }
        break;
      }
      case OpKind::kThrow: trace_.Add(OpEvent(op)); return false;
      case OpKind::kTask: RunTask(op); break;
    }
    return true;
  }

  // core/task.h: the task starts with the snapshot's values (and no slot
  // values, no handlers, no stub unless it has values: a new ID); its end is
  // an exit over its own state that never closes a captured value; then the
  // state from before is back. A throw ends it early, after its exit.
  void RunTask(const Op& op) {
    trace_.Add(OpEvent(op));
    std::map<std::string, Value> snapshot;
    if (op.count % 2 == 0) {
      snapshot = values_;
    } else if (auto it = values_.find(kKeys[op.key].canonical); it != values_.end()) {
      snapshot.insert(*it);
    }
    Frame saved{has_stub_, generation_, std::move(values_), std::move(slots_),
                std::move(handlers_)};
    std::set<int> captured;
    for (const auto& [key, v] : snapshot) captured.insert(v.id);
    captured_.push_back(std::move(captured));
    values_ = std::move(snapshot);
    slots_.clear();
    handlers_.clear();
    has_stub_ = false;
    if (!values_.empty()) EnsureStub();
    const bool completed = RunProgram(op.body);
    ThreadExit();
    captured_.pop_back();
    has_stub_ = saved.has_stub;
    generation_ = saved.generation;
    values_ = std::move(saved.values);
    slots_ = std::move(saved.slots);
    handlers_ = std::move(saved.handlers);
    trace_.Add(TaskEndEvent(op, !completed));
  }

  bool CapturedByOpenTask(int id) const {
    if (mutation_ == Mutation::kTaskClosesCaptured) return false;
    for (const std::set<int>& c : captured_) {
      if (c.count(id) != 0) return true;
    }
    return false;
  }

  // A mutation: a value dropped unclosed is retired all the same.
  void RetireIfMutated(int slot, const Value& v) {
    if (mutation_ == Mutation::kRetireWhenDropped && slot == kRetireSlot) {
      trace_.Add(RetireEvent(v.id));
    }
  }

  // Values and handlers go unclosed and unrun (slot values unretired); the
  // next use makes a new stub.
  void Unload() {
    if (auto it = slots_.find(kRetireSlot); it != slots_.end())
      RetireIfMutated(it->first, it->second);
    has_stub_ = false;
    values_.clear();
    slots_.clear();
    handlers_.clear();
  }

  // Reset and an exit close round: a value of a Slot made with a retire
  // function goes to that function first; then every value is detached (the
  // store looks empty to the closes) and closed once. Within the batch the
  // order is unspecified, so follow the engine's; a value it never closed
  // goes last.
  void CloseAll() {
    std::vector<Value> batch;
    for (auto& [key, v] : values_) batch.push_back(v);
    for (auto& [slot, v] : slots_) batch.push_back(v);
    values_.clear();
    std::optional<Value> retired;
    if (auto it = slots_.find(kRetireSlot); it != slots_.end()) retired = it->second;
    slots_.clear();
    if (retired && mutation_ != Mutation::kRetireAfterClose) trace_.Add(RetireEvent(retired->id));
    auto position = [&](const Value& v) {
      auto it = engine_close_position_.find(v.id);
      return std::make_pair(it == engine_close_position_.end() ? SIZE_MAX : it->second, v.id);
    };
    std::sort(batch.begin(), batch.end(),
              [&](const Value& a, const Value& b) { return position(a) < position(b); });
    for (const Value& v : batch) {
      if (!CapturedByOpenTask(v.id)) Close(v);
    }
    if (retired && mutation_ == Mutation::kRetireAfterClose) trace_.Add(RetireEvent(retired->id));
  }

  // At most once per value, however many keys held it.
  void Close(const Value& v) {
    if (!closed_.insert(v.id).second && mutation_ != Mutation::kCopiesCloseTwice) return;
    trace_.Add(CloseEvent(v.id));
    if (!RunProgram(*v.body)) trace_.Add(ErrorEvent(tls::ErrorSource::kClose, CurrentId()));
  }

  void RunHandler(const Handler& h) {
    if (h.body == nullptr) {
      trace_.Add(ChainEvent(h.id, h.chain_left));
      if (h.chain_left > 0) {
        EnsureStub();
        handlers_.push_back(Handler{h.id, nullptr, h.chain_left - 1});
      }
      return;
    }
    trace_.Add(RunEvent(h.id));
    if (!RunProgram(*h.body)) {
      trace_.Add(ErrorEvent(tls::ErrorSource::kAtExitHandler, CurrentId()));
    }
  }

  // Takes all pending handlers and runs them newest first. An Unload in one
  // drops the rest of the round (they belonged to the unloaded stub).
  void HandlerRound() {
    std::vector<Handler> round = std::move(handlers_);
    handlers_.clear();
    if (mutation_ != Mutation::kHandlersOldestFirst) std::reverse(round.begin(), round.end());
    const uint64_t generation = generation_;
    for (const Handler& h : round) {
      const bool unloaded = !has_stub_ || generation_ != generation;
      if (unloaded && mutation_ != Mutation::kUnloadKeepsTheRound) break;
      RunHandler(h);
    }
  }

  // docs/semantics.md "Exit, precisely": rounds of handlers, else closes, until a round
  // finds the stub empty; after kMaxExitRounds the rest is dropped, reported.
  void ThreadExit() {
    for (int round = 0; has_stub_; ++round) {
      if (values_.empty() && slots_.empty() && handlers_.empty()) break;
      if (round == tls::kMaxExitRounds) {
        trace_.Add(ErrorEvent(tls::ErrorSource::kExitRounds, CurrentId()));
        Unload();
        break;
      }
      const bool close_first =
          mutation_ == Mutation::kClosesBeforeHandlers && (!values_.empty() || !slots_.empty());
      if (!handlers_.empty() && !close_first) {
        HandlerRound();
      } else {
        CloseAll();
      }
    }
    has_stub_ = false;
  }

  const std::map<int, size_t>& engine_close_position_;
  const Mutation mutation_;
  Trace trace_;
  bool has_stub_ = false;
  uint64_t generation_ = 0;  // the model's raw ID: one per stub
  uint64_t last_generation_ = 0;
  std::map<std::string, Value> values_;
  std::map<int, Value> slots_;
  std::vector<Handler> handlers_;
  std::set<int> closed_;
  // What a task hides: the state from before it began.
  struct Frame {
    bool has_stub;
    uint64_t generation;
    std::map<std::string, Value> values;
    std::map<int, Value> slots;
    std::vector<Handler> handlers;
  };
  std::vector<std::set<int>> captured_;  // ids captured by each open task
};

// --- comparing and shrinking ------------------------------------------------

struct Outcome {
  Trace engine, model;
  bool match() const { return engine.events == model.events; }
};

Outcome RunCase(const Program& p, Mutation mutation) {
  Outcome o;
  o.engine = EngineTrace(p);
  o.model = Model(o.engine.close_position, mutation).Run(p);
  return o;
}

// Applies `edit` to the n-th op in pre-order; returns whether it existed.
bool EditNth(Program& p, int& n, const std::function<bool(Program&, size_t)>& edit) {
  for (size_t i = 0; i < p.size(); ++i) {
    if (n-- == 0) return edit(p, i);
    if (EditNth(p[i].body, n, edit)) return true;
  }
  return false;
}

// Candidate simplifications of the n-th op, biggest first: drop it (with its
// body), empty its body, shorten its chain.
std::vector<std::function<bool(Program&, size_t)>> Simplifications() {
  return {
      [](Program& p, size_t i) {
        p.erase(p.begin() + static_cast<long>(i));
        return true;
      },
      [](Program& p, size_t i) {
        if (p[i].body.empty()) return false;
        p[i].body.clear();
        return true;
      },
      [](Program& p, size_t i) {
        if (p[i].kind != OpKind::kChain || p[i].count == 0) return false;
        p[i].count /= 2;
        return true;
      },
  };
}

// Delta debugging to a fixpoint: keep any simplification that still fails.
Program Shrink(Program p, Mutation mutation) {
  for (bool progress = true; progress;) {
    progress = false;
    for (const auto& edit : Simplifications()) {
      for (int n = 0; n < CountOps(p);) {
        Program candidate = p;
        int index = n;
        if (EditNth(candidate, index, edit) && !RunCase(candidate, mutation).match()) {
          p = std::move(candidate);
          progress = true;  // the same index now names the next op
        } else {
          ++n;
        }
      }
    }
  }
  return p;
}

std::string SideBySide(const Outcome& o) {
  const auto& a = o.engine.events;
  const auto& b = o.model.events;
  size_t first = 0;
  while (first < a.size() && first < b.size() && a[first] == b[first]) ++first;
  std::string out = "engine trace:\n";
  for (size_t i = 0; i < a.size(); ++i) {
    out += (i == first ? "  >> " : "     ") + a[i] + "\n";
  }
  out += "model trace (the documented semantics):\n";
  for (size_t i = 0; i < b.size(); ++i) {
    out += (i == first ? "  >> " : "     ") + b[i] + "\n";
  }
  if (a == b) return out + "(the traces are equal)\n";
  return out + "(>> marks the first difference, event " + std::to_string(first) + ")\n";
}

std::string DescribeFailure(uint64_t seed, const Program& original, const Program& shrunk,
                            Mutation mutation) {
  return "engine and model disagree for seed " + std::to_string(seed) +
         " (replay: TLS_MODEL_SEED=" + std::to_string(seed) + ")\nshrunk from " +
         std::to_string(CountOps(original)) + " to " + std::to_string(CountOps(shrunk)) +
         " operations:\n" + ToString(shrunk) + SideBySide(RunCase(shrunk, mutation));
}

// How often the matching traces exercised the parts of the contract that need
// nesting, so a generator that drifts into trivial programs is noticed.
struct Coverage {
  std::map<std::string, long> counts;

  void Add(const Trace& t) {
    bool exiting = false;
    for (const std::string& e : t.events) {
      auto starts = [&](std::string_view prefix) { return e.rfind(prefix, 0) == 0; };
      if (e == kThreadEnds) exiting = true;
      if (starts("close v")) ++counts[exiting ? "closes during exit" : "closes by Reset"];
      if (starts("retire v")) ++counts[exiting ? "retires during exit" : "retires before it"];
      if (starts("run h")) ++counts["handler runs"];
      if (exiting && starts("Set(")) ++counts["Set during exit"];
      if (exiting && starts("AtExit(")) ++counts["AtExit during exit"];
      if (exiting && starts("Reset(")) ++counts["Reset during exit"];
      if (exiting && starts("Unload(")) ++counts["Unload during exit"];
      if (starts("Copy(") && e.find("-> none") == std::string::npos) ++counts["shared values"];
      if (starts("ID()") && e.find("#0") == std::string::npos) ++counts["IDs after Unload"];
      if (starts("error reported: close") || starts("error reported: handler")) {
        ++counts["contained throws"];
      }
      if (starts("error reported: exit gave up")) ++counts["exits that gave up"];
      if (starts("Task(") && e.ends_with(" ended")) ++counts["tasks"];
      if (starts("Task(") && e.ends_with("ended by a throw")) ++counts["tasks ended by a throw"];
      if (exiting && starts("Task(") && e.ends_with("ended")) ++counts["tasks during exit"];
    }
  }
  std::string ToString() const {
    std::string out;
    for (const auto& [what, n] : counts) out += "  " + what + ": " + std::to_string(n) + "\n";
    return out;
  }
};

// Runs seeds [first, first + count); returns the first failure's report (with
// the shrunk program in `shrunk`), or "" if all matched.
std::string CheckSeeds(uint64_t first, long count, Mutation mutation, Program* shrunk = nullptr,
                       Coverage* coverage = nullptr) {
  for (long i = 0; i < count; ++i) {
    const uint64_t seed = first + static_cast<uint64_t>(i);
    const Program p = Generator(seed).Generate();
    const Outcome o = RunCase(p, mutation);
    if (o.match()) {
      if (coverage != nullptr) coverage->Add(o.engine);
      continue;
    }
    Program small = Shrink(p, mutation);
    if (shrunk != nullptr) *shrunk = small;
    return DescribeFailure(seed, p, small, mutation);
  }
  return "";
}

class ModelTest : public ::testing::Test {
 protected:
  // Errors become trace events instead of stderr lines.
  void SetUp() override { previous_ = tls::SetErrorHandler(&RecordError); }
  void TearDown() override { tls::SetErrorHandler(previous_); }
  tls::ErrorHandler previous_ = nullptr;
};

TEST_F(ModelTest, EngineMatchesModelOnRandomPrograms) {
  if (const char* s = std::getenv("TLS_MODEL_SEED"); s != nullptr && *s != '\0') {
    const uint64_t seed = std::strtoull(s, nullptr, 10);
    const Program p = Generator(seed).Generate();
    const Outcome o = RunCase(p, Mutation::kNone);
    std::printf("seed %llu:\n%s%s", static_cast<unsigned long long>(seed), ToString(p).c_str(),
                SideBySide(o).c_str());
    const std::string failure = CheckSeeds(seed, 1, Mutation::kNone);
    if (!failure.empty()) FAIL() << failure;
    return;
  }
  const long cases = Scaled("TLS_MODEL_CASES", 30'000, 6'000, 12'000);
  const double start = NowSeconds();
  Coverage coverage;
  const std::string failure = CheckSeeds(1, cases, Mutation::kNone, nullptr, &coverage);
  if (!failure.empty()) FAIL() << failure;
  std::printf("Model: %ld programs in %.1f s, covering:\n%s", cases, NowSeconds() - start,
              coverage.ToString().c_str());
  if (cases >= 1'000) {
    for (const char* what :
         {"closes during exit", "closes by Reset", "handler runs", "Set during exit",
          "AtExit during exit", "Reset during exit", "Unload during exit", "shared values",
          "IDs after Unload", "contained throws", "exits that gave up", "tasks",
          "tasks ended by a throw", "tasks during exit", "retires during exit",
          "retires before it"}) {
      EXPECT_GT(coverage.counts[what], 0) << what << " never happened";
    }
  }
}

// The comparison is only worth something if it notices a wrong model: each
// deliberate bug must be caught, and shrunk to a program a person can read.
TEST_F(ModelTest, CatchesAndShrinksDeliberateModelBugs) {
  for (Mutation m :
       {Mutation::kClosesBeforeHandlers, Mutation::kHandlersOldestFirst,
        Mutation::kUnloadKeepsTheRound, Mutation::kCopiesCloseTwice, Mutation::kTaskClosesCaptured,
        Mutation::kRetireAfterClose, Mutation::kRetireWhenDropped}) {
    Program shrunk;
    const std::string failure = CheckSeeds(1, 5'000, m, &shrunk);
    ASSERT_NE(failure, "") << "mutation " << static_cast<int>(m) << " went unnoticed";
    // Readable: a handful of ops (drop, empty-body and shorten moves only).
    EXPECT_LE(CountOps(shrunk), 8) << failure;
  }
}

}  // namespace
}  // namespace tls_test
