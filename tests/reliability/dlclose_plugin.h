// The C ABI between dlclose_test and libtls_plugin.so, a shared library that
// links its own copy of the engine. The test finds these functions with
// dlsym. Everything the plugin's callbacks count goes into a TlsPluginRecord
// owned by the test binary, so the counts stay readable whenever and wherever
// the callbacks run, and after the plugin is gone.
#ifndef TLS_TESTS_RELIABILITY_DLCLOSE_PLUGIN_H_
#define TLS_TESTS_RELIABILITY_DLCLOSE_PLUGIN_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>

extern "C" {

struct TlsPluginRecord {
  std::atomic<int> handlers{0};         // AtExit handlers run that saw their value
  std::atomic<int> handler_misses{0};   // AtExit handlers run that did not
  std::atomic<int> closes{0};           // keyed values closed
  std::atomic<int> slot_closes{0};      // Slot values closed
  std::atomic<int> retires{0};          // values of the retiring Slot retired
  std::atomic<long> counter_total{-1};  // the plugin's Counter, read as it unloads
  std::atomic<int> late_handlers{0};    // handlers of stubs made after the exit sequence
  std::atomic<int> late_closes{0};      // values of such stubs closed
  std::atomic<int> unloads{0};          // the plugin's static destructors ran
  // Written by the plugin's last static destructor, after the engine's own
  // (the stub cache's, which frees the registry of stubs if no thread holds
  // one): how many stubs the plugin's registry still had (0: it was freed).
  std::atomic<int> registry_checks{0};
  std::atomic<long> registry_left{-1};
};

// One thread (or task) as the plugin's engine lists it (tls::ListThreads).
struct TlsPluginThread {
  uint64_t id;
  pthread_t native;
  int keys;
  int slot_values;
  int task;
};

// Points the plugin's counts at `record`. Call first, after every dlopen.
using TlsPluginAttachFn = void (*)(TlsPluginRecord* record);
inline constexpr char kTlsPluginAttach[] = "tls_plugin_attach";

// On the calling thread: `values` keyed values with closers that call tls,
// one AtExit handler that reads value 0, one Slot value. Returns tls::ID()
// (the plugin's engine's ID).
using TlsPluginUseFn = uint64_t (*)(int values);
inline constexpr char kTlsPluginUse[] = "tls_plugin_use";

// On a thread that has not used the plugin yet: arms a thread_local of the
// plugin whose destructor, registered before the engine's hook and so run
// after the thread's exit sequence, uses tls (a value and a handler, counted
// as late_*). That stub is run by the late hook (a pthread key). Also stores
// one ordinary value (counted in closes).
using TlsPluginUseLateFn = void (*)();
inline constexpr char kTlsPluginUseLate[] = "tls_plugin_use_late";

// The plugin's engine's tls::ListThreads: fills up to `max` entries of `out`
// and returns how many threads (and tasks) it listed.
using TlsPluginListThreadsFn = int (*)(TlsPluginThread* out, int max);
inline constexpr char kTlsPluginListThreads[] = "tls_plugin_list_threads";

// 1 if the engine's code that the plugin calls is inside the plugin itself
// (not some other copy the process happens to contain).
using TlsPluginEngineIsOwnFn = int (*)();
inline constexpr char kTlsPluginEngineIsOwn[] = "tls_plugin_engine_is_own";

}  // extern "C"

#endif  // TLS_TESTS_RELIABILITY_DLCLOSE_PLUGIN_H_
