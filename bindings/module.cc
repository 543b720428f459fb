// The `tls._tls` extension: one registration call per area. The public face is
// the `tls` package (python/tls), which re-exports what is here.
#include <pybind11/pybind11.h>

#include "bindings/fast_calls.h"
#include "bindings/lifecycle.h"
#ifdef TLS_TESTING_HOOKS
#include "bindings/testing.h"  // only in the test build (bindings/BUILD)
#endif
#include "bindings/thread_end.h"

PYBIND11_MODULE(_tls, m) {
  m.doc() = "Private extension behind the `tls` package; import `tls` instead.";
  tls::bindings::RegisterThreadEndBindings(m);
  tls::bindings::RegisterFastCalls(m);
  tls::bindings::RegisterLifecycleBindings(m);
#ifdef TLS_TESTING_HOOKS
  tls::bindings::RegisterTestingBindings(m);
#endif
}
