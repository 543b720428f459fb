// Loading, inspecting and unloading libtls_plugin*.so, shared by dlclose_test
// and dlclose_helper. Neither links an engine: the plugin's is the only one.
#ifndef TLS_TESTS_RELIABILITY_DLCLOSE_PLUGIN_LOADER_H_
#define TLS_TESTS_RELIABILITY_DLCLOSE_PLUGIN_LOADER_H_

#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/reliability/dlclose_plugin.h"

namespace tls_test {

// `path` resolved: /proc/self/maps shows that name, and using one name for
// every dlopen keeps the loader's idea of the object simple.
inline std::string ResolvedPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

// Whether the object at `path` (resolved) is mapped in this process. Unlike
// dlopen(RTLD_NOLOAD), looking has no effect on it.
inline bool Mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  const std::string suffix = " " + path;
  for (std::string line; std::getline(maps, line);) {
    if (line.size() >= suffix.size() &&
        line.compare(line.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return true;
    }
  }
  return false;
}

// Unloads the object if nothing holds it any more, the way any later dlclose
// in the process would: glibc looks at deferred objects again then. Takes a
// reference only if it is loaded (RTLD_NOLOAD) and drops it. Returns whether
// the object is gone.
inline bool UnloadIfUnused(const std::string& path) {
  for (int i = 0; i < 3; ++i) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) return true;
    dlclose(h);
  }
  return !Mapped(path);
}

// Whether the shared object exports a STB_GNU_UNIQUE symbol. glibc marks an
// object that defines one as never to be unloaded once it is bound, so
// dlclose leaves such a plugin mapped for good. GCC gives C++ inline
// functions' statics that binding (e.g. libstdc++'s make_shared tag).
inline bool HasGnuUniqueSymbols(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  const std::string elf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (elf.size() < sizeof(Elf64_Ehdr)) return false;
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof eh);
  for (int i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    const size_t at = eh.e_shoff + static_cast<size_t>(i) * eh.e_shentsize;
    if (at + sizeof sh > elf.size()) return false;
    std::memcpy(&sh, elf.data() + at, sizeof sh);
    if (sh.sh_type != SHT_DYNSYM || sh.sh_entsize != sizeof(Elf64_Sym)) continue;
    for (size_t off = 0; off + sizeof(Elf64_Sym) <= sh.sh_size; off += sizeof(Elf64_Sym)) {
      if (sh.sh_offset + off + sizeof(Elf64_Sym) > elf.size()) return false;
      Elf64_Sym sym;
      std::memcpy(&sym, elf.data() + sh.sh_offset + off, sizeof sym);
      if (ELF64_ST_BIND(sym.st_info) == STB_GNU_UNIQUE && sym.st_shndx != SHN_UNDEF) return true;
    }
  }
  return false;
}

// The plugin's functions, loaded from `path`.
class Plugin {
 public:
  Plugin(const std::string& path, TlsPluginRecord* record)
      : handle_(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    if (handle_ == nullptr) {
      const char* e = dlerror();
      error_ = e != nullptr ? e : "dlopen failed";
      return;
    }
    const auto attach = Sym<TlsPluginAttachFn>(kTlsPluginAttach);
    use = Sym<TlsPluginUseFn>(kTlsPluginUse);
    use_late = Sym<TlsPluginUseLateFn>(kTlsPluginUseLate);
    engine_is_own = Sym<TlsPluginEngineIsOwnFn>(kTlsPluginEngineIsOwn);
    list_threads = Sym<TlsPluginListThreadsFn>(kTlsPluginListThreads);
    if (attach == nullptr || use == nullptr || use_late == nullptr || engine_is_own == nullptr ||
        list_threads == nullptr) {
      error_ = "missing symbol";
      return;
    }
    attach(record);
  }
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;
  ~Plugin() { Close(); }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // dlclose. The function pointers must not be called afterwards.
  void Close() {
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = nullptr;
  }

  TlsPluginUseFn use = nullptr;
  TlsPluginUseLateFn use_late = nullptr;
  TlsPluginEngineIsOwnFn engine_is_own = nullptr;
  TlsPluginListThreadsFn list_threads = nullptr;

 private:
  template <class F>
  F Sym(const char* name) {
    return reinterpret_cast<F>(dlsym(handle_, name));
  }

  void* handle_;
  std::string error_;
};

// If the plugin at `path` is loaded, stops it counting into the record it
// was given (which may be about to go out of scope).
inline void DetachRecordIfLoaded(const std::string& path) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return;
  if (auto attach = reinterpret_cast<TlsPluginAttachFn>(dlsym(h, kTlsPluginAttach))) {
    attach(nullptr);
  }
  dlclose(h);
}

inline std::string Counts(const TlsPluginRecord& r) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "handlers=%d misses=%d closes=%d slot_closes=%d retires=%d counter_total=%ld "
                "late_handlers=%d late_closes=%d unloads=%d registry_checks=%d registry_left=%ld",
                r.handlers.load(), r.handler_misses.load(), r.closes.load(), r.slot_closes.load(),
                r.retires.load(), r.counter_total.load(), r.late_handlers.load(),
                r.late_closes.load(), r.unloads.load(), r.registry_checks.load(),
                r.registry_left.load());
  return buf;
}

}  // namespace tls_test

#endif  // TLS_TESTS_RELIABILITY_DLCLOSE_PLUGIN_LOADER_H_
