#include "engine/util/key_counts.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/count_allocations.h"

namespace {

using vigil::engine::key_counts;

// prefix + i, appended (GCC 12 warns, wrongly, of an overlapping copy in "literal" + std::string).
std::string key(const char* prefix, int i) {
  std::string k = prefix;
  k += std::to_string(i);
  return k;
}

std::map<std::string, std::uint64_t> as_map(const key_counts& c) {
  std::map<std::string, std::uint64_t> m;
  c.for_each([&m](std::string_view k, std::uint64_t n) {
    EXPECT_TRUE(m.emplace(std::string(k), n).second) << "key listed twice: " << k;
  });
  return m;
}

TEST(key_counts, counts_each_key_through_growth) {
  // 300 keys (the table starts at 16 slots and doubles several times), visited in an order that
  // alternates runs of one key (the remembered key) with jumps between keys; each key i is
  // counted i + 1 times.
  key_counts c;
  std::map<std::string, std::uint64_t> want;
  for (int round = 0; round < 300; ++round) {
    for (int i = round; i < 300; ++i) {
      const std::string k = key("resource-", i);
      c.add(k);
      if (i % 7 == 0) {
        c.add(k); // the same key again at once
        ++want[k];
      }
      ++want[k];
    }
  }
  EXPECT_EQ(c.size(), 300u);
  EXPECT_EQ(c.others(), 0u);
  EXPECT_EQ(as_map(c), want);
}

TEST(key_counts, keys_that_share_a_prefix_or_a_length_stay_apart) {
  key_counts c;
  for (const char* k : {"", "a", "b", "ab", "ba", "pods", "pods/exec", "pods/log", "abcdefgh", "abcdefgi",
                        "abcdefghijklmnop", "abcdefghijklmnoq"}) {
    c.add(k);
  }
  c.add("pods");
  const auto m = as_map(c);
  EXPECT_EQ(m.size(), 12u);
  EXPECT_EQ(m.at("pods"), 2u);
  EXPECT_EQ(m.at(""), 1u);
  EXPECT_EQ(m.at("abcdefghijklmnoq"), 1u);
}

TEST(key_counts, holds_at_most_its_bound_and_counts_the_rest_unnamed) {
  key_counts c(100);
  for (int i = 0; i < 1000; ++i) {
    c.add(key("k", i));
  }
  c.add("k5");   // a named key is still counted by name
  c.add("k999"); // a key beyond the bound is counted among the others again
  EXPECT_EQ(c.size(), 100u);
  EXPECT_EQ(c.others(), 901u);
  const auto m = as_map(c);
  EXPECT_EQ(m.size(), 100u);
  EXPECT_EQ(m.at("k5"), 2u);
  EXPECT_EQ(m.count("k999"), 0u);
  std::uint64_t named = 0;
  for (const auto& [k, n] : m) {
    named += n;
  }
  EXPECT_EQ(named + c.others(), 1002u);
}

TEST(key_counts, known_keys_do_not_allocate) {
  key_counts c;
  const std::string keys[] = {"get", "list", "watch", "create", "update", "patch", "delete",
                              "a-resource-name-longer-than-the-small-string-buffer"};
  for (const auto& k : keys) {
    c.add(k);
  }
  const std::uint64_t before = vigil::test::allocations.load();
  for (int i = 0; i < 10000; ++i) {
    c.add(keys[i % 8]);
    c.add(keys[(i * 5) % 8]);
  }
  EXPECT_EQ(vigil::test::allocations.load(), before);
  EXPECT_EQ(as_map(c).at("get"), 1u + 1250u + 1250u); // i % 8 == 0 picks it in both adds
}

} // namespace
