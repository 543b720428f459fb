// Internal: closing and releasing a stub's values, shared by Reset and exit.
#ifndef TLS_CORE_INTERNAL_CLOSE_VALUES_H_
#define TLS_CORE_INTERNAL_CLOSE_VALUES_H_

#include "core/internal/stub.h"
#include "tls/internal/abi.h"

namespace tls::inline TLS_ABI_NAMESPACE::internal {

// Detaches every value of `stub` (keyed values and slot values) so the stub is
// empty of values, then closes each detached value once (errors reported, not
// thrown), then releases them. User code runs only after the detach and never
// through `stub`, so closes and destructors may call any tls function,
// Unload included.
void CloseAllValues(Stub& stub);

}  // namespace tls::inline TLS_ABI_NAMESPACE::internal

#endif  // TLS_CORE_INTERNAL_CLOSE_VALUES_H_
