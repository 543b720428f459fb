// File: core/threads.h
//
// Introspection, for debugging and leak hunting: what every live thread (and
// open task) holds, read from any thread. Included by "tls/tls.h".
//
// Keys and counts only, never values: another thread's values are its own
// (use Slot<T>::ForEachThread to read a value type made for it). Both calls
// walk the registry of stubs (core/README.md "All threads at once"): safe
// while threads start, store, and end, and their owners' Get/Set/Del pay
// nothing for it; each call costs one system call and, per thread, a fence
// and a read of its table. Figures are a snapshot: a thread that stores or
// ends during the call may be counted before or after.
//
// Example:
//   for (const tls::ThreadReport& t : tls::ListThreads()) {
//     std::printf("id %llu%s: %zu keys, %zu bytes\n", (unsigned long long)t.id,
//                 t.task ? " (task)" : "", t.keys.size(), t.bytes);
//     for (const std::string& k : t.keys) std::printf("  %s\n", k.c_str());
//   }
//   tls::Stats s = tls::GetStats();   // totals over the same walk
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_THREADS_H_
#define TLS_CORE_THREADS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "tls/internal/abi.h"
#include "tls/thread_info.h"

namespace tls::inline TLS_ABI_NAMESPACE {

struct ThreadReport : ThreadInfo {
  std::vector<std::string> keys;  // sorted, as Key::ToString writes them: "\"user\"", "42"
  size_t slot_values = 0;         // Slot<T> values it holds
  size_t handlers = 0;            // AtExit handlers waiting
  size_t bytes = 0;               // approximate heap bytes its stub holds, room included
};

struct Stats {
  size_t threads = 0;      // live threads with a stub (a thread that never used tls has none)
  size_t tasks = 0;        // open tasks with a stub of their own
  size_t values = 0;       // keyed values, over all of them (a task's own, not its snapshot's)
  size_t slot_values = 0;  // Slot<T> values
  size_t handlers = 0;     // AtExit handlers waiting
  size_t bytes = 0;        // approximate heap bytes of all stubs, those kept for reuse included
  size_t kept_stubs = 0;   // emptied stubs kept for the next thread or task (no values)
};

// One report per live thread and open task holding a stub, newest stub first.
TLS_API std::vector<ThreadReport> ListThreads();

// Process-wide totals.
TLS_API Stats GetStats();

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_THREADS_H_
