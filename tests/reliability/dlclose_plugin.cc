// libtls_plugin.so: a plugin that uses the engine, with its own copy of the
// engine linked in (see BUILD), as a library that links tls statically would.
// dlclose_test loads, uses and unloads it; the ABI is in dlclose_plugin.h.
#include "tests/reliability/dlclose_plugin.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "tls/counter.h"
#include "tls/threads.h"
#include "tls/tls.h"

namespace {

std::atomic<TlsPluginRecord*> g_record{nullptr};

void Count(std::atomic<int> TlsPluginRecord::*field) {
  if (TlsPluginRecord* r = g_record.load()) (r->*field).fetch_add(1);
}

// Destroyed with the plugin's other statics: when the library is really
// unloaded, or at process exit if it never is.
struct UnloadProbe {
  ~UnloadProbe() { Count(&TlsPluginRecord::unloads); }
} g_unload_probe;

// Constructed before every other static of the plugin (init_priority), so
// destroyed after them all, the engine's stub cache included, whose
// destructor frees the registry of stubs if no thread holds a stub: counts
// the stubs the registry still has then (a walk of an empty registry reads
// nothing of the freed stubs).
struct RegistryProbe {
  ~RegistryProbe() {
    TlsPluginRecord* r = g_record.load();
    if (r == nullptr) return;
    const tls::Stats s = tls::GetStats();
    r->registry_left.store(static_cast<long>(s.threads + s.tasks + s.kept_stubs));
    r->registry_checks.fetch_add(1);
  }
};
__attribute__((init_priority(101))) RegistryProbe g_registry_probe;

struct SlotValue {
  void Close() { Count(&TlsPluginRecord::slot_closes); }
};
tls::Slot<SlotValue> g_slot;

// A Counter (a Slot with a retire function) and a retiring Slot of its own:
// each gets an engine record that must go when the plugin unloads (one
// never freed would leak 104 bytes per cycle).
tls::Counter g_counter;
struct CounterProbe {
  ~CounterProbe() {
    if (TlsPluginRecord* r = g_record.load()) r->counter_total.store(g_counter.Read());
  }
} g_counter_probe;  // constructed after g_counter, so destroyed before it
tls::Slot<int> g_retiring_slot([](int&) { Count(&TlsPluginRecord::retires); });

// Uses tls from its destructor. Registered (at first use) before the
// engine's own thread_local hook, it is destroyed after the exit sequence.
struct LateUser {
  bool armed = false;
  ~LateUser() {
    if (!armed) return;
    tls::Set("late", tls::MakeData(1, [](int&) { Count(&TlsPluginRecord::late_closes); }));
    tls::AtExit([] {
      if (tls::Get("late")) Count(&TlsPluginRecord::late_handlers);
    });
  }
};
thread_local LateUser t_late_user;

}  // namespace

extern "C" {

void tls_plugin_attach(TlsPluginRecord* record) { g_record.store(record); }

uint64_t tls_plugin_use(int values) {
  for (int i = 0; i < values; ++i) {
    tls::Set(i, tls::MakeData(i, [](int&) {
               Count(&TlsPluginRecord::closes);
               (void)tls::ID();  // a close may call tls
             }));
  }
  tls::AtExit([] {
    auto v = tls::Get(0);
    Count(v && !v->closed() ? &TlsPluginRecord::handlers : &TlsPluginRecord::handler_misses);
  });
  g_slot.Emplace();
  g_counter.Add(1);
  g_retiring_slot.Emplace(values);
  return tls::ID();
}

void tls_plugin_use_late() {
  t_late_user.armed = true;  // first use: its destructor is registered now
  tls::Set("early", tls::MakeData(0, [](int&) { Count(&TlsPluginRecord::closes); }));
}

int tls_plugin_list_threads(TlsPluginThread* out, int max) {
  const std::vector<tls::ThreadReport> all = tls::ListThreads();
  for (int i = 0; i < max && i < static_cast<int>(all.size()); ++i) {
    out[i] = TlsPluginThread{all[i].id, all[i].native, static_cast<int>(all[i].keys.size()),
                             static_cast<int>(all[i].slot_values), all[i].task ? 1 : 0};
  }
  return static_cast<int>(all.size());
}

int tls_plugin_engine_is_own() {
  Dl_info self{}, engine{};
  if (dladdr(reinterpret_cast<void*>(&tls_plugin_engine_is_own), &self) == 0) return 0;
  if (dladdr(reinterpret_cast<void*>(&tls::ID), &engine) == 0) return 0;
  return self.dli_fbase == engine.dli_fbase ? 1 : 0;
}

}  // extern "C"
