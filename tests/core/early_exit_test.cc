// ExitCause::kEarly: the binding ends a thread's tls while the native thread
// goes on (a Python thread state ending). White-box: uses core/internal/exit.h.
#include <gtest/gtest.h>

#include <string>

#include "core/internal/exit.h"
#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

using tls::internal::ExitCause;
using tls::internal::RunThreadExit;

TEST(EarlyExit, RunsTheWholeSequenceAndTheThreadGoesOn) {
  Log log;
  RunInThread([&] {
    uint64_t first = tls::ID();
    tls::Set("k", tls::MakeData(Closer{&log, "v"}));
    tls::AtExit([&] { log.Add("handler"); });
    RunThreadExit(ExitCause::kEarly);
    EXPECT_EQ(log.events(), (Events{"handler", "close v"}));
    EXPECT_FALSE(tls::Get("k").has_value());
    EXPECT_GT(tls::ID(), first);  // a fresh stub
    tls::AtExit([&] { log.Add("native exit"); });
  });
  EXPECT_EQ(log.events(), (Events{"handler", "close v", "native exit"}));
}

// An early run after the native hook has run must leave the late hook armed
// for stubs made afterwards.
struct EarlyRunInLateDestructor {
  Log* log = nullptr;
  ~EarlyRunInLateDestructor() {
    if (log == nullptr) return;
    Log* l = log;
    RunThreadExit(ExitCause::kEarly);  // nothing to run; must not forget the phase
    tls::AtExit([l] { l->Add("late"); });
  }
};
thread_local EarlyRunInLateDestructor t_late;

TEST(EarlyExit, AfterTheNativeHookKeepsTheLateHookArmed) {
  Log log;
  RunInThread([&] {
    t_late.log = &log;  // registered before tls's hook, so it runs after it
    tls::AtExit([&] { log.Add("normal"); });
  });
  EXPECT_EQ(log.events(), (Events{"normal", "late"}));
}

}  // namespace
}  // namespace tls_test
