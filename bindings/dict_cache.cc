#include "bindings/dict_cache.h"

#ifdef TLS_TESTING_HOOKS
#include <cstdio>
#include <cstdlib>
#endif

#include "bindings/py_state.h"

namespace tls::bindings {

// Constant-initialized and trivially destructible: readable from the engine's
// native exit hook too, after the thread's other C++ thread_locals are gone.
thread_local constinit PyObject* t_cached_dict [[gnu::tls_model("initial-exec")]] = nullptr;

PyObject* DictFromSlot() noexcept {
  PyState* state = PyStates().Get();
  if (state == nullptr) return nullptr;
  // A task's borrowed view is read, never cached: get/set's cache is the
  // dict that set may write into (dict_cache.h).
  if (state->borrowed()) return state->dict();
  t_cached_dict = state->dict();
  return t_cached_dict;
}

#ifdef TLS_TESTING_HOOKS
void CheckCachedDict(PyObject* dict) noexcept {
  PyState* state = PyStates().Get();
  PyObject* current = state == nullptr ? nullptr : state->dict();
  if (current == dict) return;
  std::fprintf(stderr, "tls: stale cached dict %p, the thread's is %p (bindings/dict_cache.h)\n",
               static_cast<void*>(dict), static_cast<void*>(current));
  std::abort();
}
#endif

}  // namespace tls::bindings
