// File: core/error.h
//
// Where the engine reports errors it catches. An AtExit handler or a value's close
// that throws does not stop the others and never reaches std::terminate: the
// exception is caught and handed to the error handler, then the next handler or
// close runs. The default handler prints one line on stderr.
//
// Example:
//   tls::SetErrorHandler([](const tls::ErrorInfo& e) {
//     LOG(WARNING) << "tls: " << e.message << " on thread " << e.thread_id;
//   });
#include "tls/internal/require_cxx20.h"  // before C++20: one line, and stop
#ifndef TLS_CORE_ERROR_H_
#define TLS_CORE_ERROR_H_

#include <cstdint>
#include <exception>
#include <string_view>

#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE {

enum class ErrorSource {
  kAtExitHandler,  // an AtExit handler threw
  kClose,          // a value's close threw (at Reset or thread exit)
  kExitRounds,     // thread exit gave up after kMaxExitRounds rounds
  kRetire,         // a Slot's retire function threw (slot.h)
};

struct ErrorInfo {
  ErrorSource source;
  uint64_t thread_id;            // the thread's tls::ID() when it happened (0: none)
  std::string_view message;      // one line, e.g. "AtExit handler threw: <what()>"
  std::exception_ptr exception;  // what was thrown; null for kExitRounds
};

// Called on the thread where the error happened. It must not throw (what it
// throws is dropped). It may call any tls function.
using ErrorHandler = void (*)(const ErrorInfo&);

// Installs `handler` for every thread and returns the previous one; nullptr
// restores the default (one line on stderr). Lock-free; safe at any time.
TLS_API ErrorHandler SetErrorHandler(ErrorHandler handler) noexcept;

}  // namespace tls::inline TLS_ABI_NAMESPACE

#endif  // TLS_CORE_ERROR_H_
