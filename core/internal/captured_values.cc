// What a Snapshot holds, and whether a value came from one (captured_values.h).
#include "core/internal/captured_values.h"

#include "core/internal/report.h"
#include "core/internal/stub.h"
#include "tls/data.h"
#include "tls/internal/abi.h"
#include "tls/internal/data_box.h"
#include "tls/internal/task_frame.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

CapturedValues::~CapturedValues() {
  // A close here runs on whichever thread let the last snapshot go: a pool
  // thread after its task, or the capturer. Not inside a noexcept frame of
  // ours, but a shared_ptr's release is one: a forced unwind out of such a
  // close terminates (core/task.h says so).
  table.ForEach([](Data& d) {
    if (DataBox* box = DataAccess::Box(d)) {
      RunContained(ErrorSource::kClose, [box] { box->ReleaseCapture(); });
    }
  });
}

bool CapturedByOpenTask(const Data& d) noexcept {
  for (const TaskFrame* f = t_thread.task; f != nullptr; f = f->outer) {
    if (f->captured != nullptr && f->captured->Holds(d)) return true;
  }
  return false;
}

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal
