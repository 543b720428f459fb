// tls::Slot<T>: the typed fast path follows the keyed values' rules.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tests/core/test_util.h"
#include "tls/tls.h"

namespace {

using tls_test::Closer;
using tls_test::Log;
using tls_test::RunInThread;
using Events = std::vector<std::string>;

TEST(Slot, GetNeverCreatesAndIsPerThread) {
  tls::Slot<int> slot;
  RunInThread([&] {
    EXPECT_EQ(slot.Get(), nullptr);
    slot.Set(5);
    EXPECT_EQ(*slot.Get(), 5);
  });
  EXPECT_EQ(slot.Get(), nullptr);
}

TEST(Slot, GetOrEmplaceCreatesOnce) {
  tls::Slot<std::string> slot;
  RunInThread([&] {
    slot.GetOrEmplace() += "a";
    slot.GetOrEmplace() += "b";
    EXPECT_EQ(*slot.Get(), "ab");
  });
}

TEST(Slot, ClosedAtThreadExitAfterHandlers) {
  Log log;
  tls::Slot<Closer> slot;
  RunInThread([&] {
    slot.Emplace(Closer{&log, "slot"});
    tls::AtExit([&] { log.Add(slot.Get() ? "handler sees slot" : "handler sees nothing"); });
  });
  EXPECT_EQ(log.events(), (Events{"handler sees slot", "close slot"}));
}

TEST(Slot, ResetClosesSlotValues) {
  Log log;
  tls::Slot<Closer> slot;
  RunInThread([&] {
    slot.Emplace(Closer{&log, "slot"});
    tls::Reset();
    EXPECT_EQ(slot.Get(), nullptr);
    EXPECT_EQ(log.events(), Events{"close slot"});
  });
  EXPECT_EQ(log.events(), Events{"close slot"});
}

TEST(Slot, EmplaceOverAndDelDoNotClose) {
  Log log;
  tls::Slot<Closer> slot;
  RunInThread([&] {
    slot.Emplace(Closer{&log, "first"});
    slot.Emplace(Closer{&log, "second"});
    EXPECT_TRUE(slot.Del());
    EXPECT_FALSE(slot.Del());
  });
  EXPECT_TRUE(log.events().empty());
}

TEST(Slot, UnloadDropsSlotValuesUnclosed) {
  Log log;
  tls::Slot<Closer> slot;
  RunInThread([&] {
    slot.Emplace(Closer{&log, "v"});
    tls::Unload();
    EXPECT_EQ(slot.Get(), nullptr);
  });
  EXPECT_TRUE(log.events().empty());
}

TEST(Slot, ManySlotsIndependent) {
  std::vector<std::unique_ptr<tls::Slot<int>>> slots;
  for (int i = 0; i < 100; ++i) slots.push_back(std::make_unique<tls::Slot<int>>());
  RunInThread([&] {
    for (int i = 0; i < 100; i += 3) slots[i]->Set(i);
    for (int i = 0; i < 100; ++i) {
      if (i % 3 == 0) {
        ASSERT_NE(slots[i]->Get(), nullptr);
        EXPECT_EQ(*slots[i]->Get(), i);
      } else {
        EXPECT_EQ(slots[i]->Get(), nullptr);
      }
    }
  });
}

TEST(Slot, ValueSetInSlotCloseIsClosedInTheSameExit) {
  Log log;
  static tls::Slot<Closer> second;
  struct SetsSlot {
    Log* log;
    void Close() { second.Emplace(Closer{log, "second"}); }
  };
  tls::Slot<SetsSlot> first;
  RunInThread([&] { first.Emplace(SetsSlot{&log}); });
  EXPECT_EQ(log.events(), Events{"close second"});
}

}  // namespace
