#include "bindings/snapshot_holds.h"

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <unordered_map>

#include "bindings/py_state.h"

namespace tls::bindings {
namespace {

struct Hold {
  uint64_t snapshots = 0;  // dict entries of live Snapshots that hold the object
  bool pending = false;    // an end left its close to the last release
};

// Constructed on first use and never destroyed: a Snapshot may be released
// from a destructor that runs while the process exits.
struct Table {
  std::mutex mutex;
  std::unordered_map<const PyObject*, Hold> holds;
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

void NoteSize(Table& t) { t.size.store(t.holds.size(), std::memory_order_relaxed); }

// Counts `value` out once; whether the release must now close it (its count
// reached 0 and its close is pending: the entry is kept, count 0, for
// TakeOwedClose).
bool CountOut(Table& t, const PyObject* value) {
  auto it = t.holds.find(value);
  if (it == t.holds.end() || it->second.snapshots == 0) return false;  // taken already
  if (--it->second.snapshots != 0) return false;
  if (it->second.pending) return true;
  t.holds.erase(it);
  return false;
}

// Whether this release closes `value`: its entry has no holder and a pending
// close, which this takes (so a duplicate under another key closes nothing).
// A snapshot made meanwhile that holds it again keeps the close pending.
bool TakeOwedClose(const PyObject* value) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.holds.find(value);
  if (it == t.holds.end() || it->second.snapshots != 0 || !it->second.pending) return false;
  t.holds.erase(it);
  NoteSize(t);
  return true;
}

}  // namespace

int HoldSnapshotValues(PyObject* values) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  try {
    while (PyDict_Next(values, &pos, &key, &value)) ++t.holds[value].snapshots;
  } catch (const std::bad_alloc&) {
    // Undo the values counted before the one that failed (`pos` is past it).
    const Py_ssize_t failed_at = pos;
    pos = 0;
    while (PyDict_Next(values, &pos, &key, &value) && pos < failed_at) CountOut(t, value);
    NoteSize(t);
    PyErr_NoMemory();
    return -1;
  }
  NoteSize(t);
  return 0;
}

void ReleaseSnapshotValues(PyObject* values) {
  bool closes_owed = false;
  {
    Table& t = table();
    std::lock_guard<std::mutex> lock(t.mutex);
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(values, &pos, &key, &value)) closes_owed |= CountOut(t, value);
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
    if (TakeOwedClose(value)) CloseValue(value);
  }
  PyErr_Restore(type, error, traceback);
}

bool LeaveCloseToSnapshots(PyObject* value, uint64_t stranded) {
  Table& t = table();
  if (t.size.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.holds.find(value);
  if (it == t.holds.end() || it->second.snapshots <= stranded) return false;
  it->second.pending = true;
  return true;
}

void ClosingNow(PyObject* value) {
  Table& t = table();
  if (t.size.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.holds.find(value);
  if (it == t.holds.end()) return;
  it->second.pending = false;
  if (it->second.snapshots == 0) {  // a release is about to take it: owes nothing now
    t.holds.erase(it);
    NoteSize(t);
  }
}

SnapshotHoldCounts CountSnapshotHolds() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  SnapshotHoldCounts counts{0, 0};
  for (const auto& [object, hold] : t.holds) {
    if (hold.snapshots != 0) ++counts.held;
    if (hold.pending) ++counts.pending;
  }
  return counts;
}

}  // namespace tls::bindings
