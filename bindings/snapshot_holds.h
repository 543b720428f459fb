// File: bindings/snapshot_holds.h
//
// The Python side of "a captured value closes once, when its thread's store
// and every snapshot holding it have let go" (core/task.h). A C++ value counts
// its snapshots in its box (tls/internal/data_box.h); a Python value has no
// box, so this table counts, per object, the live Snapshots whose dict holds
// it (once per key it is under there). Then:
//   - the end of a thread or task (PyState::Close under ClosingAtEnd) leaves
//     the close of an object the table counts to the snapshots: it marks it
//     pending and does not close it;
//   - the release that takes an object's count to 0 (a Snapshot's dealloc or
//     clear, on whichever thread drops it) calls its close() if it is pending;
//   - an explicit close (Reset) closes at once and clears the mark, so no
//     release closes it again.
// An object is in the table only while counted, and the counted dicts hold
// it, so no entry outlives its object.
//
// A mutex guards the table (3.13t runs without the GIL); it is never held
// while Python code runs, and never across fork (held by no thread then).
// A thread's end with nothing captured anywhere reads one atomic count.
//
// Example (tasks.cc):
//   if (HoldSnapshotValues(values) < 0) return nullptr;   // a new Snapshot
//   ...
//   ReleaseSnapshotValues(values);                        // it goes: may close
#ifndef TLS_BINDINGS_SNAPSHOT_HOLDS_H_
#define TLS_BINDINGS_SNAPSHOT_HOLDS_H_

#include <Python.h>

#include <cstdint>

namespace tls::bindings {

// Counts each value of `values` (a new Snapshot's dict, never changed after)
// as held by one more snapshot, except values of built-in types that have no
// close() (str, int, None, tuple, dict, ...: never counted, never deferred).
// Returns 1 if it counted any, 0 if none (then nothing needs releasing), -1
// with MemoryError set (nothing counted) on failure. Runs no Python code.
int HoldSnapshotValues(PyObject* values);

// Counts the values of `values` out again (the Snapshot holding it goes), then
// calls close() on each whose last hold this was and whose close a thread's or
// task's end left pending, in the dict's order; their errors go to
// sys.unraisablehook. The caller holds `values` and an attached thread state.
void ReleaseSnapshotValues(PyObject* values);

// Whether `value` can have a close(): false for instances of the built-in
// types HoldSnapshotValues never counts (str, int, None, tuple, dict, ...),
// which neither a close nor a snapshot's hold concerns. Runs no Python code.
bool MayHaveClose(PyObject* value);

// For PyState::Close at a thread's or task's end: whether a live snapshot
// holds `value`, other than the `stranded` holds that will never be released
// (CapturedObjects::StrandedHolds); if so, its close is left to the last
// release.
bool LeaveCloseToSnapshots(PyObject* value, uint64_t stranded);

// For PyState::Close in Reset, about to close `value` at once: clears a
// pending close left by an earlier end, so no release closes it again.
void ClosingNow(PyObject* value);

// Live holds, for tests and stats: the objects counted, and those pending.
struct SnapshotHoldCounts {
  Py_ssize_t held;
  Py_ssize_t pending;
};
SnapshotHoldCounts CountSnapshotHolds();

}  // namespace tls::bindings

#endif  // TLS_BINDINGS_SNAPSHOT_HOLDS_H_
