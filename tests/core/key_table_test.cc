// The per-thread key table (core/internal/key_table.h), through the API that
// uses it: it grows, and deletes by shifting later entries back, without
// losing a key. Key kinds, equality and allocation-free lookups: key_test.cc;
// crafted keys that would flood it: hash_flooding_test.cc.
#include <gtest/gtest.h>

#include "tls/tls.h"

namespace {

class KeyTableTest : public ::testing::Test {
 protected:
  void TearDown() override { tls::Unload(); }
};

TEST_F(KeyTableTest, ManyKeysAllFoundAfterGrowthAndDeletion) {
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) tls::Set(i, tls::MakeData(i));
  for (int i = 0; i < kN; i += 2) ASSERT_TRUE(tls::Del(i));
  for (int i = 0; i < kN; ++i) {
    auto d = tls::Get(i);
    ASSERT_EQ(d.has_value(), i % 2 == 1) << i;
    if (d) {
      ASSERT_EQ(d->Value<int>(), i);
    }
  }
}

}  // namespace
