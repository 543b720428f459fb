#include "core/internal/report.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "core/internal/stub.h"

namespace tls {
namespace internal {
namespace {

std::atomic<ErrorHandler> g_error_handler{nullptr};

void PrintToStderr(const ErrorInfo& e) {
  std::fprintf(stderr, "tls: %.*s (thread %llu)\n", static_cast<int>(e.message.size()),
               e.message.data(), static_cast<unsigned long long>(e.thread_id));
}

const char* Prefix(ErrorSource source) {
  switch (source) {
    case ErrorSource::kAtExitHandler:
      return "AtExit handler threw: ";
    case ErrorSource::kClose:
      return "close threw: ";
    case ErrorSource::kExitRounds:
      break;
  }
  return "";
}

}  // namespace

void Report(ErrorSource source, std::string_view message, std::exception_ptr error) noexcept {
  ErrorHandler handler = g_error_handler.load(std::memory_order_acquire);
  ErrorInfo info{source, t_thread.id, message, std::move(error)};
  try {
    (handler != nullptr ? handler : &PrintToStderr)(info);
  } catch (...) {
    // A throwing error handler must not take the exit sequence down with it.
  }
}

void ReportCurrentException(ErrorSource source) noexcept {
  std::exception_ptr error = std::current_exception();
  try {
    std::string message = Prefix(source);
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message += e.what();
    } catch (...) {
      message += "an exception not derived from std::exception";
    }
    Report(source, message, error);
  } catch (...) {
    Report(source, Prefix(source), error);  // out of memory building the message
  }
}

}  // namespace internal

ErrorHandler SetErrorHandler(ErrorHandler handler) noexcept {
  return internal::g_error_handler.exchange(handler, std::memory_order_acq_rel);
}

}  // namespace tls
