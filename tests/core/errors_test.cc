// Errors the engine catches (core/error.h): an AtExit handler or a close that
// throws is reported to the error handler (SetErrorHandler) and the others
// still run; a throwing error handler is contained. Never std::terminate.
#include <gtest/gtest.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace tls_test {
namespace {

struct Captured {
  tls::ErrorSource source;
  std::string message;
  uint64_t thread_id;
};
std::mutex g_captured_mu;
std::vector<Captured> g_captured;

void Capture(const tls::ErrorInfo& e) {
  std::lock_guard<std::mutex> lock(g_captured_mu);
  g_captured.push_back({e.source, std::string(e.message), e.thread_id});
}

class ErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_captured.clear();
    previous_ = tls::SetErrorHandler(&Capture);
  }
  void TearDown() override { tls::SetErrorHandler(previous_); }
  tls::ErrorHandler previous_ = nullptr;
};

TEST_F(ErrorsTest, ThrowingHandlerIsReportedAndOthersStillRun) {
  Log log;
  uint64_t id = 0;
  RunInThread([&] {
    id = tls::ID();
    tls::AtExit([&] { log.Add("first registered"); });
    tls::AtExit([] { throw std::runtime_error("handler failed"); });
    tls::AtExit([&] { log.Add("last registered"); });
    tls::Set("k", tls::MakeData(Closer{&log, "v"}));
  });
  EXPECT_EQ(log.events(), (Events{"last registered", "first registered", "close v"}));
  ASSERT_EQ(g_captured.size(), 1u);
  EXPECT_EQ(g_captured[0].source, tls::ErrorSource::kAtExitHandler);
  EXPECT_EQ(g_captured[0].message, "AtExit handler threw: handler failed");
  EXPECT_EQ(g_captured[0].thread_id, id);
}

TEST_F(ErrorsTest, ThrowingCloseIsReportedAndOtherValuesStillClose) {
  Log log;
  struct Throws {
    void Close() { throw 42; }
  };
  RunInThread([&] {
    tls::Set("bad", tls::MakeData(Throws{}));
    tls::Set("good", tls::MakeData(Closer{&log, "good"}));
  });
  EXPECT_EQ(log.events(), Events{"close good"});
  ASSERT_EQ(g_captured.size(), 1u);
  EXPECT_EQ(g_captured[0].source, tls::ErrorSource::kClose);
  EXPECT_EQ(g_captured[0].message, "close threw: an exception not derived from std::exception");
}

TEST_F(ErrorsTest, ThrowingCloseDuringResetIsReported) {
  struct Throws {
    void Close() { throw std::logic_error("reset close"); }
  };
  RunInThread([] {
    tls::Set("bad", tls::MakeData(Throws{}));
    tls::Reset();  // does not throw
    EXPECT_FALSE(tls::Get("bad").has_value());
  });
  ASSERT_EQ(g_captured.size(), 1u);
  EXPECT_EQ(g_captured[0].message, "close threw: reset close");
}

TEST_F(ErrorsTest, ThrowingErrorHandlerIsContained) {
  tls::SetErrorHandler(
      [](const tls::ErrorInfo&) { throw std::runtime_error("handler of handler"); });
  Log log;
  RunInThread([&] {
    tls::AtExit([&] { log.Add("still runs"); });
    tls::AtExit([] { throw std::runtime_error("x"); });
  });
  EXPECT_EQ(log.events(), Events{"still runs"});
}

}  // namespace
}  // namespace tls_test
