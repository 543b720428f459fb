// Keys: kinds, equality, and lookups that never allocate.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "tls/tls.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// Count every allocation this test binary makes.
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// noinline: GCC 12 otherwise warns (-Wmismatched-new-delete) where it inlines
// the free() of memory this file's own operator new returned.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

class KeyTest : public ::testing::Test {
 protected:
  void TearDown() override { tls::Unload(); }
};

TEST_F(KeyTest, StringAndIntegerKindsNeverEqual) {
  tls::Set(1, tls::MakeData(std::string("int")));
  tls::Set("1", tls::MakeData(std::string("string")));
  EXPECT_EQ(tls::Get(1)->Value<std::string>(), "int");
  EXPECT_EQ(tls::Get("1")->Value<std::string>(), "string");
  EXPECT_FALSE(tls::Key(1) == tls::Key("1"));
}

TEST_F(KeyTest, IntegersCompareByValueAcrossTypes) {
  tls::Set(int{5}, tls::MakeData(1));
  EXPECT_TRUE(tls::Get(5L).has_value());
  EXPECT_TRUE(tls::Get(uint8_t{5}).has_value());
  EXPECT_TRUE(tls::Get(5ull).has_value());
  EXPECT_FALSE(tls::Get(6).has_value());
}

TEST_F(KeyTest, NegativeAndLargeUnsignedDoNotCollide) {
  tls::Set(-1, tls::MakeData(std::string("minus one")));
  tls::Set(std::numeric_limits<uint64_t>::max(), tls::MakeData(std::string("max")));
  EXPECT_EQ(tls::Get(-1)->Value<std::string>(), "minus one");
  EXPECT_EQ(tls::Get(std::numeric_limits<uint64_t>::max())->Value<std::string>(), "max");
}

TEST_F(KeyTest, LiteralStringViewAndStringAreOneKey) {
  tls::Set("name", tls::MakeData(1));
  std::string owned = "name";
  std::string_view view = owned;
  EXPECT_TRUE(tls::Get(owned).has_value());
  EXPECT_TRUE(tls::Get(view).has_value());
  EXPECT_TRUE(tls::Get(std::string_view("nam")) == std::nullopt);
}

TEST_F(KeyTest, StoredKeyIsACopy) {
  std::string key = "temporary";
  tls::Set(key, tls::MakeData(7));
  key.assign("overwritten");
  EXPECT_EQ(tls::Get("temporary")->Value<int>(), 7);
}

TEST_F(KeyTest, EmptyAndLongStringKeys) {
  std::string long_key(1000, 'x');
  tls::Set("", tls::MakeData(1));
  tls::Set(long_key, tls::MakeData(2));
  long_key.back() = 'y';
  tls::Set(long_key, tls::MakeData(3));
  EXPECT_EQ(tls::Get("")->Value<int>(), 1);
  EXPECT_EQ(tls::Get(long_key)->Value<int>(), 3);
  long_key.back() = 'x';
  EXPECT_EQ(tls::Get(long_key)->Value<int>(), 2);
}

// Every length from 0 to 40 bytes (the store holds keys of up to 16 bytes in
// its slots as two words, longer ones as text), and at each length keys that
// differ in one byte only, at every position: all distinct, each found,
// listed by name, and deletable.
TEST_F(KeyTest, KeysOfEveryLengthDifferingInAnyOneByteAreDistinct) {
  std::vector<std::string> keys;
  for (size_t n = 0; n <= 40; ++n) {
    const std::string base(n, 'k');
    keys.push_back(base);
    for (size_t j = 0; j < n; ++j) {
      std::string changed = base;
      changed[j] = static_cast<char>(j % 2 ? '\0' : '\xff');  // NUL and high bytes too
      keys.push_back(changed);
    }
  }
  for (size_t i = 0; i < keys.size(); ++i) tls::Set(keys[i], tls::MakeData(static_cast<int>(i)));
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(tls::Get(keys[i])->Value<int>(), static_cast<int>(i)) << i;
  }
  std::vector<std::string> listed;
  for (const tls::ThreadReport& t : tls::ListThreads()) {
    if (t.id == tls::ID()) listed = t.keys;
  }
  std::vector<std::string> expected;
  for (const std::string& k : keys) expected.push_back(tls::Key(k).ToString());
  std::sort(listed.begin(), listed.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listed, expected);
  for (size_t i = 0; i < keys.size(); i += 2) ASSERT_TRUE(tls::Del(keys[i])) << i;
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(tls::Find(keys[i]) != nullptr, i % 2 == 1) << i;
  }
}

TEST_F(KeyTest, NullCStringKeyThrows) {
  const char* null_key = nullptr;
  EXPECT_THROW(tls::Get(null_key), std::invalid_argument);
}

TEST_F(KeyTest, GetHitDoesNotAllocate) {
  tls::Set("request_id", tls::MakeData(42));
  tls::Set(99, tls::MakeData(43));
  std::string owned = "request_id";
  long before = g_allocations.load();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_NE(tls::Find("request_id"), nullptr);
    ASSERT_NE(tls::Find(std::string_view(owned)), nullptr);
    ASSERT_NE(tls::Find(owned), nullptr);
    ASSERT_NE(tls::Find(99), nullptr);
    ASSERT_TRUE(tls::Get("request_id").has_value());
    ASSERT_EQ(tls::Find("missing"), nullptr);
  }
  EXPECT_EQ(g_allocations.load(), before);
}

TEST_F(KeyTest, SetOverExistingKeyDoesNotAllocateForTheKey) {
  tls::Data d = tls::MakeData(1);
  tls::Set("k", d);
  long before = g_allocations.load();
  for (int i = 0; i < 1000; ++i) tls::Set("k", d);
  EXPECT_EQ(g_allocations.load(), before);
}

}  // namespace
