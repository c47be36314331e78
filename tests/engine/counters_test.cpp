#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/counters/counters.h"

namespace vigil::counters {
namespace {

TEST(counters, define_is_idempotent_and_labels_distinguish) {
  registry& r = registry::global();
  const id a = r.define("test_define_total", "help", {{"kind", "a"}});
  const id a2 = r.define("test_define_total", "help", {{"kind", "a"}});
  const id b = r.define("test_define_total", "help", {{"kind", "b"}});
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  add(a, 3);
  add(b);
  EXPECT_EQ(r.read(a), 3u);
  EXPECT_EQ(r.read("test_define_total", {{"kind", "b"}}), 1u);
  EXPECT_EQ(r.read_all("test_define_total"), 4u);
}

// Several threads count concurrently; the sum is exact, including after the threads exit
// (their totals fold into the registry).
TEST(counters, per_thread_slots_sum_exactly_across_live_and_exited_threads) {
  registry& r = registry::global();
  const id c = r.define("test_threads_total", "help");
  constexpr int threads = 4;
  constexpr int per_thread = 100000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([c] {
      for (int i = 0; i < per_thread; ++i) {
        add(c);
      }
    });
  }
  for (auto& t : pool) {
    t.join();
  }
  EXPECT_EQ(r.read(c), static_cast<std::uint64_t>(threads) * per_thread);
}

TEST(counters, snapshot_renders_labels_and_escapes) {
  registry& r = registry::global();
  const id c = r.define("test_snapshot_total", "a help", {{"path", "a\"b\\c"}, {"x", "y"}});
  add(c, 7);
  bool found = false;
  for (const sample& s : r.snapshot()) {
    if (s.name == "test_snapshot_total") {
      found = true;
      EXPECT_EQ(s.labels, R"(path="a\"b\\c",x="y")");
      EXPECT_EQ(s.value, 7u);
      EXPECT_EQ(s.help, "a help");
    }
  }
  EXPECT_TRUE(found);
}

TEST(counters, counters_beyond_the_first_chunk_work) {
  registry& r = registry::global();
  id last = 0;
  for (int i = 0; i < 1500; ++i) {
    last = r.define("test_many_total", "h", {{"i", std::to_string(i)}});
  }
  EXPECT_GE(last, registry::chunk_size);
  add(last, 5);
  EXPECT_EQ(r.read(last), 5u);
}

} // namespace
} // namespace vigil::counters
