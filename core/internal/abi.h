// ABI markers, used by every header and source of the engine. Not API.
//
// TLS_ABI_NAMESPACE: the inline namespace everything lives in, so that
// tls::Set is emitted as tls::v0::Set. Two engine builds whose ABIs differ get
// different names: mixing them fails at link time instead of misbehaving.
// Bump it with TLS_SOVERSION (CMakeLists.txt) on every ABI break. Code opens it
// as
//   namespace tls::inline TLS_ABI_NAMESPACE {            // or ...::internal {
// and names it only as tls:: (inline namespaces are transparent to users).
//
// TLS_API: marks what the engine exports. A shared build compiles with
// -fvisibility=hidden and TLS_BUILDING_SHARED_LIBRARY (CMakeLists.txt), so the
// public functions, plus the few internals the headers' templates call, are
// the only symbols libtls-core.so exports (tests/abi/exported_symbols.txt
// holds the list, checked by tests/abi/check_exports.sh). In a static build
// TLS_API is empty: an engine linked into a plugin stays private to it.
#ifndef TLS_CORE_INTERNAL_ABI_H_
#define TLS_CORE_INTERNAL_ABI_H_

#define TLS_ABI_NAMESPACE v3

#if defined(TLS_BUILDING_SHARED_LIBRARY)
#define TLS_API __attribute__((visibility("default")))
#else
#define TLS_API
#endif

#endif  // TLS_CORE_INTERNAL_ABI_H_
