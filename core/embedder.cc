#include "tls/embedder.h"

#include "core/internal/close_values.h"
#include "core/internal/exit.h"
#include "core/internal/report.h"
#include "core/internal/stub.h"
#include "core/internal/stub_lifecycle.h"

namespace tls::inline TLS_ABI_NAMESPACE::embedder {

void RunThreadExit(ExitCause cause) {
  internal::RunThreadExit(cause == ExitCause::kEarly ? internal::ExitCause::kEarly
                                                     : internal::ExitCause::kThreadEnd);
}

TaskId CurrentTask() noexcept { return internal::t_thread.task; }

bool TaskOpen(TaskId task) noexcept {
  if (task == nullptr) return false;
  for (const internal::TaskFrame* f = internal::t_thread.task; f != nullptr; f = f->outer) {
    if (f == task) return true;
  }
  return false;
}

bool ClosingAtEnd() noexcept { return internal::ClosingAtEnd(); }

void SetThreadStoreHook(void (*hook)() noexcept) noexcept { internal::SetThreadStoreHook(hook); }

}  // namespace tls::inline TLS_ABI_NAMESPACE::embedder
