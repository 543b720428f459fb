#include "core/internal/report.h"

#include <atomic>
#include <cstdio>
#include <new>
#include <string>

#include "core/internal/stub.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE {
namespace internal {
namespace {

std::atomic<ErrorHandler> g_error_handler{nullptr};

void PrintToStderr(const ErrorInfo& e) {
  std::fprintf(stderr, "tls: %.*s (thread %llu)\n", static_cast<int>(e.message.size()),
               e.message.data(), static_cast<unsigned long long>(e.thread_id));
}

const char* Prefix(ErrorSource source) {
  switch (source) {
    case ErrorSource::kAtExitHandler: return "AtExit handler threw: ";
    case ErrorSource::kClose: return "close threw: ";
    case ErrorSource::kRetire: return "Slot retire function threw: ";
    case ErrorSource::kExitRounds: break;
  }
  return "";
}

}  // namespace

TLS_CATCHES_FORCED_UNWIND void Report(ErrorSource source, std::string_view message,
                                      std::exception_ptr error) {
  ErrorHandler handler = g_error_handler.load(std::memory_order_acquire);
  ErrorInfo info{source, t_thread.id, message, std::move(error)};
  try {
    (handler != nullptr ? handler : &PrintToStderr)(info);
  } catch (const ForcedUnwind&) {
    throw;
  } catch (...) {
    // A throwing error handler must not take the exit sequence down with it.
  }
}

void ReportException(ErrorSource source, std::exception_ptr error) {
  std::string message;
  try {
    message = Prefix(source);
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message += e.what();
    } catch (...) {
      message += "an exception not derived from std::exception";
    }
  } catch (const std::bad_alloc&) {
    message.clear();  // out of memory building the message: report the prefix alone
  }
  Report(source, message.empty() ? std::string_view(Prefix(source)) : message, std::move(error));
}

ErrorHandler ExchangeErrorHandler(ErrorHandler handler) noexcept {
  return g_error_handler.exchange(handler, std::memory_order_acq_rel);
}

}  // namespace internal
}  // namespace tls::inline TLS_ABI_NAMESPACE
