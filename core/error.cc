// The public half of error reporting (core/error.h); the engine's half is
// core/internal/report.h.
#include "tls/error.h"

#include "core/internal/report.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE {

ErrorHandler SetErrorHandler(ErrorHandler handler) noexcept {
  return internal::ExchangeErrorHandler(handler);
}

}  // namespace tls::inline TLS_ABI_NAMESPACE
