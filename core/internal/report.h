// Internal: running user callbacks with their exceptions contained.
#ifndef TLS_CORE_INTERNAL_REPORT_H_
#define TLS_CORE_INTERNAL_REPORT_H_

#include <exception>
#include <string_view>

#if defined(__GLIBCXX__)
#include <cxxabi.h>
#endif

#include "tls/error.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// A forced unwind: what pthread_exit (and thread cancellation) throws through
// C++ frames on glibc. It is not an error to contain: a catch that swallows it
// aborts the process, and so does a noexcept frame it reaches. CPython ends a
// daemon thread that wakes up during interpreter shutdown this way, from inside
// whatever Python code it was running, so every engine frame between a user
// callback and the thread's start lets it pass: RunContained, Report and the
// exit sequence rethrow it, and none of them is noexcept.
#if defined(__GLIBCXX__)
using ForcedUnwind = abi::__forced_unwind;
#else
struct ForcedUnwind {};  // never thrown: this C++ library unwinds pthread_exit otherwise
#endif

// For functions that catch ForcedUnwind: the unwind carries no C++ object, so
// UBSan's null check flags the reference the catch clause binds (a false
// positive; libstdc++ catches it the same way). GCC can only turn UBSan off
// for the whole function: these are kept small.
#if defined(__GNUC__)
#define TLS_CATCHES_FORCED_UNWIND __attribute__((no_sanitize_undefined))
#else
#define TLS_CATCHES_FORCED_UNWIND
#endif

// Installs `handler` (nullptr: print to stderr) and returns the previous one;
// tls::SetErrorHandler (core/error.cc) is this.
ErrorHandler ExchangeErrorHandler(ErrorHandler handler) noexcept;

// Hands one error to the installed ErrorHandler. Throws nothing but a forced
// unwind out of the handler.
void Report(ErrorSource source, std::string_view message, std::exception_ptr error);

// Reports `error`, a caught exception. Call it outside any catch block: the
// error handler may end the thread (a forced unwind), and the C++ runtime
// aborts when a forced unwind is caught while another exception is.
void ReportException(ErrorSource source, std::exception_ptr error);

// Runs f(); an exception it throws is reported as `source` and swallowed, so
// the caller goes on with the next handler or close. A forced unwind passes.
template <class F>
TLS_CATCHES_FORCED_UNWIND void RunContained(ErrorSource source, F&& f) {
  std::exception_ptr error;
  try {
    f();
  } catch (const ForcedUnwind&) {
    throw;
  } catch (...) {
    error = std::current_exception();
  }
  if (error) ReportException(source, std::move(error));
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_REPORT_H_
