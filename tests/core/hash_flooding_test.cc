// The key hash resists flooding: keys built from the public source
// to collide, the way an attacker who has read key.h would build them, spread
// over the table like random keys, because the hash is keyed by a secret the
// process draws at start (core/internal/hash_secret.h).
//
// The attacker's model is the hash before the secret: the same steps with the
// public constants only (PublicHash below). Each test first checks that its
// keys do collide under that model, so it would fail on the old hash.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/internal/key_access.h"
#include "core/internal/key_table.h"
#include "gtest/gtest.h"
#include "tls/key.h"
#include "tls/tls.h"

namespace {

using tls::Key;
using tls::internal::Fold;
using tls::internal::KeyAccess;
using tls::internal::Load64;

// The constants of the unkeyed hash the engine once had, as anyone could read them.
constexpr uint64_t kPublic0 = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kPublic1 = 0xd6e8feb86659fd93ull;
constexpr uint64_t kPublic2 = 0xa0761d6478bd642full;
constexpr uint64_t kPublic3 = 0x9fb21c651e98df25ull;

uint64_t PublicHashWords(uint64_t a, uint64_t b, uint64_t seed) {
  return Fold(Fold(a ^ kPublic1, b ^ seed) ^ kPublic2, kPublic3);
}

// The hash of a string key as it was: no secret.
uint64_t PublicHash(std::string_view s) {
  if (s.size() <= tls::internal::kShortKeyBytes) {
    const auto w = tls::internal::ShortKeyWords(s.data(), s.size());
    return PublicHashWords(w.a, w.b, kPublic0 ^ s.size());
  }
  uint64_t seed = kPublic0 ^ s.size();
  for (size_t i = 0; i + 16 < s.size(); i += 16) {
    seed = Fold(Load64(s.data() + i) ^ kPublic1, Load64(s.data() + i + 8) ^ seed);
  }
  return PublicHashWords(Load64(s.data() + s.size() - 16), Load64(s.data() + s.size() - 8), seed);
}

uint64_t PublicHashInteger(uint64_t bits, uint8_t tag) {
  return Fold(bits ^ kPublic1, kPublic0 ^ tag);
}

// The recipe: the first 8 bytes equal the public seed, so the first
// multiply is 0 and bytes 8..15 are ignored. `block` such 16-byte blocks in
// front of a fixed tail make long keys of the same kind.
std::vector<std::string> CraftedKeys(size_t count, size_t prefix_blocks = 0,
                                     std::string_view tail = "") {
  char seed_bytes[8];
  std::memcpy(seed_bytes, &kPublic1, 8);
  std::vector<std::string> keys;
  keys.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    char digits[9];
    std::snprintf(digits, sizeof digits, "%08zu", i);
    std::string key;
    for (size_t b = 0; b < std::max<size_t>(prefix_blocks, 1); ++b) {
      key.append(seed_bytes, 8).append(digits, 8);
    }
    key += tail;
    keys.push_back(std::move(key));
  }
  return keys;
}

std::vector<std::string> RandomKeys(size_t count, size_t length, unsigned seed) {
  std::vector<std::string> keys;
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < count; ++i) {
    std::string key(length, '\0');
    for (char& c : key) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      c = static_cast<char>('a' + x % 26);
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

size_t DistinctHashes(const std::vector<std::string>& keys) {
  std::set<uint64_t> hashes;
  for (const std::string& k : keys) hashes.insert(KeyAccess::Hash(Key(k)));
  return hashes.size();
}

size_t DistinctPublicHashes(const std::vector<std::string>& keys) {
  std::set<uint64_t> hashes;
  for (const std::string& k : keys) hashes.insert(PublicHash(k));
  return hashes.size();
}

double MeanProbes(const std::vector<std::string>& keys) {
  tls::internal::KeyTable table;
  for (size_t i = 0; i < keys.size(); ++i) table.Put(Key(keys[i]), tls::MakeData(int(i)));
  size_t total = 0;
  for (const std::string& k : keys) total += table.ProbesFor(Key(k));
  return double(total) / double(keys.size());
}

TEST(HashFlooding, KeysThatSharedOneHashUnderThePublicSeedsNoLongerDo) {
  const std::vector<std::string> keys = CraftedKeys(50'000);
  ASSERT_EQ(keys[0].size(), 16u);
  ASSERT_EQ(DistinctPublicHashes(keys), 1u) << "the attack as it was: 50,000 keys, one hash";
  EXPECT_EQ(DistinctHashes(keys), keys.size());
}

TEST(HashFlooding, LongKeysThatSharedOneHashPerBlockNoLongerDo) {
  // Three crafted blocks and a 16-byte tail: 64-byte keys.
  const std::vector<std::string> keys = CraftedKeys(50'000, 3, "0123456789abcdef");
  ASSERT_EQ(keys[0].size(), 64u);
  ASSERT_EQ(DistinctPublicHashes(keys), 1u);
  EXPECT_EQ(DistinctHashes(keys), keys.size());
}

TEST(HashFlooding, CraftedKeysCostTheTableNoMoreThanRandomKeys) {
  // Slots a lookup examines: the table's work per Set and Find, counted
  // rather than timed (the timed comparison is table_bench's flood rows).
  const double crafted = MeanProbes(CraftedKeys(50'000));
  const double random = MeanProbes(RandomKeys(50'000, 16, 1));
  EXPECT_LE(crafted, 2 * random) << "crafted " << crafted << ", random " << random;
  EXPECT_LT(crafted, 3.0);
}

// Keys chosen so that their public hashes share the low `bits` bits (a table
// slot of a table of 2^bits slots), the cheaper attack a brute-force search
// over the public constants makes: it needs no special structure.
template <class Make, class PublicHashOf>
std::vector<decltype(std::declval<Make>()(0))> SameSlotKeys(size_t count, int bits, Make make,
                                                            PublicHashOf public_hash) {
  std::vector<decltype(make(0))> keys;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  for (uint64_t i = 0; keys.size() < count; ++i) {
    auto k = make(i);
    if ((public_hash(k) & mask) == 0) keys.push_back(k);
  }
  return keys;
}

template <class K>
size_t FullestSlot(const std::vector<K>& keys, int bits) {
  std::unordered_map<uint64_t, size_t> per_slot;
  size_t fullest = 0;
  for (const K& k : keys) {
    fullest = std::max(fullest, ++per_slot[KeyAccess::Hash(Key(k)) & ((uint64_t{1} << bits) - 1)]);
  }
  return fullest;
}

TEST(HashFlooding, StringKeysSearchedToShareASlotSpreadOut) {
  constexpr int kBits = 12;
  const auto keys = SameSlotKeys(
      2'000, kBits, [](uint64_t i) { return "user-" + std::to_string(i); },
      [](const std::string& k) { return PublicHash(k); });
  // 2,000 keys over 4,096 slots: a random hash fills none with more than ~6.
  EXPECT_LE(FullestSlot(keys, kBits), 12u);
}

TEST(HashFlooding, IntegerKeysSearchedToShareASlotSpreadOut) {
  constexpr int kBits = 12;
  const auto keys = SameSlotKeys(
      2'000, kBits, [](uint64_t i) { return int64_t(i); },
      [](int64_t k) { return PublicHashInteger(uint64_t(k), KeyAccess::kTagNonNegative); });
  EXPECT_LE(FullestSlot(keys, kBits), 12u);
}

// The hash of one key in a fresh process (this binary, re-executed).
constexpr const char* kPrintHashEnv = "TLS_HASH_FLOODING_TEST_PRINT";

std::string HashInFreshProcess() {
  char self[4096] = {};
  EXPECT_GT(readlink("/proc/self/exe", self, sizeof self - 1), 0);
  // The child must not write this run's XML report or shard files.
  const std::string command =
      "env -u XML_OUTPUT_FILE -u GTEST_OUTPUT -u TEST_PREMATURE_EXIT_FILE -u GTEST_SHARD_INDEX "
      "-u GTEST_TOTAL_SHARDS -u GTEST_SHARD_STATUS_FILE " +
      std::string(kPrintHashEnv) + "=1 '" + self +
      "' --gtest_filter=HashFlooding.PrintHashForParent";
  FILE* p = popen(command.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  char buf[256];
  while (p && std::fgets(buf, sizeof buf, p)) {
    if (std::strncmp(buf, "hash=", 5) == 0) out = buf + 5;
  }
  if (p) {
    EXPECT_EQ(pclose(p), 0);
  }
  return out;
}

TEST(HashFlooding, PrintHashForParent) {
  if (!std::getenv(kPrintHashEnv)) GTEST_SKIP() << "run by SecretDiffersBetweenProcesses";
  // Eight threads race to draw the secret; all must hash alike.
  std::array<uint64_t, 8> seen{};
  std::vector<std::thread> threads;
  for (uint64_t& h : seen) threads.emplace_back([&h] { h = KeyAccess::Hash(Key("request_id")); });
  for (std::thread& t : threads) t.join();
  for (uint64_t h : seen) ASSERT_EQ(h, seen[0]);
  std::printf("hash=%llx\n", static_cast<unsigned long long>(seen[0]));
}

TEST(HashFlooding, SecretDiffersBetweenProcesses) {
  std::set<std::string> hashes;
  for (int i = 0; i < 3; ++i) {
    const std::string h = HashInFreshProcess();
    ASSERT_FALSE(h.empty());
    hashes.insert(h);
  }
  EXPECT_EQ(hashes.size(), 3u) << "three processes, one hash of \"request_id\"";
}

TEST(HashFlooding, SecretIsStableWithinAProcessAndAcrossFork) {
  const uint64_t before = KeyAccess::Hash(Key("request_id"));
  tls::Set("request_id", tls::MakeData(7));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child's tables were hashed with the parent's secret.
    const bool same =
        KeyAccess::Hash(Key("request_id")) == before && tls::Find("request_id") != nullptr;
    _exit(same ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(KeyAccess::Hash(Key("request_id")), before);
  tls::Reset();
}

}  // namespace
