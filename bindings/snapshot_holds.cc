#include "bindings/snapshot_holds.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include "bindings/py_state.h"

namespace tls::bindings {
namespace {

struct Hold {
  uint64_t snapshots = 0;  // dict entries of live Snapshots that hold the object
  bool pending = false;    // an end left its close to the last release
};

// Object address -> Hold. Open addressing with linear probing in a
// power-of-two array, grown at half full, erased by backward shift (no
// tombstones): no allocation per entry, so counting a captured value in and
// out is a few loads and stores. Addresses are the keys; they are not chosen
// by whoever makes the objects, so a multiplicative hash is enough.
class HoldMap {
 public:
  static constexpr size_t kNone = SIZE_MAX;

  size_t size() const noexcept { return size_; }

  size_t Find(const PyObject* key) const noexcept {
    if (size_ == 0) return kNone;
    for (size_t i = Home(key);; i = (i + 1) & mask()) {
      if (slots_[i].key == key) return i;
      if (slots_[i].key == nullptr) return kNone;
    }
  }

  // The entry of `key`, added (count 0, not pending) if missing. May throw
  // std::bad_alloc (growing), leaving the map as it was.
  size_t FindOrAdd(const PyObject* key) {
    if (const size_t i = Find(key); i != kNone) return i;
    if (2 * (size_ + 1) > slots_.size()) Grow();
    size_t i = Home(key);
    while (slots_[i].key != nullptr) i = (i + 1) & mask();
    slots_[i] = Entry{key, Hold{}};
    ++size_;
    return i;
  }

  Hold& at(size_t i) noexcept { return slots_[i].hold; }

  void EraseAt(size_t i) noexcept {
    // Move each later entry of the run back into the hole if its home allows.
    for (size_t j = (i + 1) & mask(); slots_[j].key != nullptr; j = (j + 1) & mask()) {
      if (((j - Home(slots_[j].key)) & mask()) >= ((j - i) & mask())) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Entry{};
    --size_;
  }

  template <class F>
  void ForEach(F f) const {
    for (const Entry& e : slots_) {
      if (e.key != nullptr) f(e.hold);
    }
  }

 private:
  struct Entry {
    const PyObject* key = nullptr;
    Hold hold;
  };

  size_t mask() const noexcept { return slots_.size() - 1; }

  size_t Home(const PyObject* key) const noexcept {
    const uint64_t bits = reinterpret_cast<uintptr_t>(key) >> 4;  // objects are 16-aligned
    return static_cast<size_t>((bits * 0x9e3779b97f4a7c15ull) >> shift_);
  }

  void Grow() {
    std::vector<Entry> old(std::max<size_t>(16, 2 * slots_.size()));  // may throw: nothing moved
    old.swap(slots_);
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(slots_.size()));
    size_ = 0;
    for (const Entry& e : old) {
      if (e.key == nullptr) continue;
      size_t i = Home(e.key);
      while (slots_[i].key != nullptr) i = (i + 1) & mask();
      slots_[i] = e;
      ++size_;
    }
  }

  std::vector<Entry> slots_;
  size_t size_ = 0;
  unsigned shift_ = 64;
};

// Constructed on first use and never destroyed: a Snapshot may be released
// from a destructor that runs while the process exits.
struct Table {
  std::mutex mutex;
  HoldMap holds;
  std::atomic<size_t> size{0};  // holds.size(), for the unlocked "nothing held" check
};

Table& table() {
  static Table* const t = new Table;
  return *t;
}

// Never held across fork: the child gets the table as the parent had it (the
// Snapshots it counts are copied with the process), with the mutex free.
[[maybe_unused]] const int g_fork_handlers = pthread_atfork(
    [] { table().mutex.lock(); }, [] { table().mutex.unlock(); }, [] { table().mutex.unlock(); });

}  // namespace

// Whether `value` can have a close(), so its count matters. Instances of the
// built-in types below have none, and neither a __dict__ nor a __class__ that
// can change, so they are never counted: most captured values (request IDs,
// user IDs, flags, small dicts) cost no table entry.
//
// One load of the type's flags first: most values are (exact) str or int,
// and the subclass bits tell those from everything else without walking the
// list; a closer (another type) then takes five compares.
bool MayHaveClose(PyObject* value) {
  PyTypeObject* const type = Py_TYPE(value);
  constexpr unsigned long kBuiltinSubclass =
      Py_TPFLAGS_LONG_SUBCLASS | Py_TPFLAGS_UNICODE_SUBCLASS | Py_TPFLAGS_BYTES_SUBCLASS |
      Py_TPFLAGS_TUPLE_SUBCLASS | Py_TPFLAGS_LIST_SUBCLASS | Py_TPFLAGS_DICT_SUBCLASS;
  if ((type->tp_flags & kBuiltinSubclass) != 0) {
    return !(type == &PyUnicode_Type || type == &PyLong_Type || type == &PyBool_Type ||
             type == &PyTuple_Type || type == &PyDict_Type || type == &PyList_Type ||
             type == &PyBytes_Type);
  }
  return !(value == Py_None || type == &PyFloat_Type || type == &PySet_Type ||
           type == &PyFrozenSet_Type || type == &PyComplex_Type);
}

namespace {

void NoteSize(Table& t) { t.size.store(t.holds.size(), std::memory_order_relaxed); }

// Counts `value` out once; whether the release must now close it (its count
// reached 0 and its close is pending: the entry is kept, count 0, for
// TakeOwedClose).
bool CountOut(Table& t, const PyObject* value) {
  const size_t i = t.holds.Find(value);
  if (i == HoldMap::kNone) return false;
  Hold& hold = t.holds.at(i);
  if (hold.snapshots == 0) return false;  // taken already
  if (--hold.snapshots != 0) return false;
  if (hold.pending) return true;
  t.holds.EraseAt(i);
  return false;
}

// Whether this release closes `value`: its entry has no holder and a pending
// close, which this takes (so a duplicate under another key closes nothing).
// A snapshot made meanwhile that holds it again keeps the close pending.
bool TakeOwedClose(const PyObject* value) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  const size_t i = t.holds.Find(value);
  if (i == HoldMap::kNone || t.holds.at(i).snapshots != 0 || !t.holds.at(i).pending) return false;
  t.holds.EraseAt(i);
  NoteSize(t);
  return true;
}

}  // namespace

int HoldSnapshotValues(PyObject* values) {
  Table& t = table();
  std::unique_lock<std::mutex> lock(t.mutex, std::defer_lock);  // taken for the first closer
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  try {
    while (PyDict_Next(values, &pos, &key, &value)) {
      if (!MayHaveClose(value)) continue;
      if (!lock.owns_lock()) lock.lock();
      ++t.holds.at(t.holds.FindOrAdd(value)).snapshots;
    }
  } catch (const std::bad_alloc&) {
    // Undo the values counted before the one that failed (`pos` is past it).
    const Py_ssize_t failed_at = pos;
    pos = 0;
    while (PyDict_Next(values, &pos, &key, &value) && pos < failed_at) {
      if (MayHaveClose(value)) CountOut(t, value);
    }
    NoteSize(t);
    PyErr_NoMemory();
    return -1;
  }
  if (!lock.owns_lock()) return 0;  // plain values only: nothing counted
  NoteSize(t);
  return 1;
}

void ReleaseSnapshotValues(PyObject* values) {
  bool closes_owed = false;
  {
    Table& t = table();
    std::lock_guard<std::mutex> lock(t.mutex);
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(values, &pos, &key, &value)) {
      if (MayHaveClose(value)) closes_owed |= CountOut(t, value);
    }
    NoteSize(t);
  }
  if (!closes_owed) return;
  // A deallocation may run with an exception set: keep it aside. `values`
  // keeps each object alive while its close() runs.
  PyObject *type, *error, *traceback;
  PyErr_Fetch(&type, &error, &traceback);
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  while (PyDict_Next(values, &pos, &key, &value)) {
    if (MayHaveClose(value) && TakeOwedClose(value)) CloseValue(value);
  }
  PyErr_Restore(type, error, traceback);
}

bool LeaveCloseToSnapshots(PyObject* value, uint64_t stranded) {
  Table& t = table();
  if (t.size.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(t.mutex);
  const size_t i = t.holds.Find(value);
  if (i == HoldMap::kNone || t.holds.at(i).snapshots <= stranded) return false;
  t.holds.at(i).pending = true;
  return true;
}

void ClosingNow(PyObject* value) {
  Table& t = table();
  if (t.size.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard<std::mutex> lock(t.mutex);
  const size_t i = t.holds.Find(value);
  if (i == HoldMap::kNone) return;
  t.holds.at(i).pending = false;
  if (t.holds.at(i).snapshots == 0) {  // a release is about to take it: owes nothing now
    t.holds.EraseAt(i);
    NoteSize(t);
  }
}

SnapshotHoldCounts CountSnapshotHolds() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  SnapshotHoldCounts counts{0, 0};
  t.holds.ForEach([&counts](const Hold& hold) {
    if (hold.snapshots != 0) ++counts.held;
    if (hold.pending) ++counts.pending;
  });
  return counts;
}

}  // namespace tls::bindings
