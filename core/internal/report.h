// Internal: running user callbacks with their exceptions contained.
#ifndef TLS_CORE_INTERNAL_REPORT_H_
#define TLS_CORE_INTERNAL_REPORT_H_

#include <exception>
#include <string_view>

#include "core/error.h"

namespace tls::internal {

// Hands one error to the installed ErrorHandler (never throws).
void Report(ErrorSource source, std::string_view message, std::exception_ptr error) noexcept;

// Reports the exception being handled (call from a catch block).
void ReportCurrentException(ErrorSource source) noexcept;

// Runs f(); an exception it throws is reported as `source` and swallowed, so
// the caller goes on with the next handler or close.

template <class F>
void RunContained(ErrorSource source, F&& f) noexcept {
  try {
    f();
  } catch (...) {
    ReportCurrentException(source);
  }
}

}  // namespace tls::internal

#endif  // TLS_CORE_INTERNAL_REPORT_H_
