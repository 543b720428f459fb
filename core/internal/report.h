// Internal: running user callbacks with their exceptions contained.
#ifndef TLS_CORE_INTERNAL_REPORT_H_
#define TLS_CORE_INTERNAL_REPORT_H_

#include <exception>
#include <string_view>

#include "tls/error.h"
#include "tls/internal/abi.h"
#include "tls/internal/forced_unwind.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

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
