// The `tls._tls` extension: one registration call per area. The public face is
// the `tls` package (python/tls), which re-exports what is here.
#include <pybind11/pybind11.h>

#include "bindings/fast_calls.h"
#include "bindings/lifecycle.h"
#include "bindings/testing.h"
#include "bindings/thread_end.h"

PYBIND11_MODULE(_tls, m) {
  m.doc() = "Private extension behind the `tls` package; import `tls` instead.";
  tls::bindings::RegisterThreadEndBindings(m);
  tls::bindings::RegisterFastCalls(m);
  tls::bindings::RegisterLifecycleBindings(m);
  tls::bindings::RegisterTestingBindings(m);
}
