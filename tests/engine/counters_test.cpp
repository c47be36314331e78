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

// A thread_local object constructed before the thread first counted is destroyed after the
// thread's block was folded into the registry: what its destructor counts must still arrive
// (before, it went into the freed block and was lost).
TEST(counters, a_count_after_the_threads_block_was_folded_still_arrives) {
  registry& r = registry::global();
  const id c = r.define("test_late_count_total", "help");
  struct counts_at_exit {
    id counter;
    ~counts_at_exit() { add(counter, 5); }
  };
  std::thread([c] {
    thread_local counts_at_exit late{c}; // constructed before the thread's block
    (void)late;
    add(c, 2); // attaches the block, destroyed before `late`
  }).join();
  EXPECT_EQ(r.read(c), 7u);
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

// Histograms: cumulative buckets, +Inf, count, and a seconds family keeping its sum in nanoseconds;
// observations from several threads add up.
TEST(counters, histograms_are_cumulative_and_summed_over_threads) {
  registry& r = registry::global();
  histogram h("test_latency_seconds", "h", {0.001, 0.01, 0.1}, {{"server", "s"}});
  h.observe(0.002);
  std::thread t([&] {
    h.observe(0.02);
    h.observe(5);
  });
  t.join();
  auto bucket = [&](const char* le) { return r.read("test_latency_seconds_bucket", {{"server", "s"}, {"le", le}}); };
  EXPECT_EQ(bucket("0.001"), 0u);
  EXPECT_EQ(bucket("0.01"), 1u);
  EXPECT_EQ(bucket("0.1"), 2u);
  EXPECT_EQ(bucket("+Inf"), 3u);
  EXPECT_EQ(r.read("test_latency_seconds_count", {{"server", "s"}}), 3u);
  EXPECT_EQ(r.read("test_latency_seconds_sum", {{"server", "s"}}), 5'022'000'000u);
  histogram sizes("test_batch_events", "h", {10, 100});
  sizes.observe(400);
  EXPECT_EQ(r.read("test_batch_events_sum", {}), 400u); // not a seconds family: kept as observed
  EXPECT_EQ(r.read("test_batch_events_bucket", {{"le", "100"}}), 0u);
}

// A label fed from outside (a webhook client's address) can define label sets without bound:
// past the registry's limit, new ones share one counter instead of stopping the process. Last in
// this file: it fills the global registry, so a test after it in the same process (the binary run
// whole; ctest runs each test alone) could define nothing new.
TEST(counters, label_sets_past_the_limit_share_one_counter_and_the_process_keeps_running) {
  registry& r = registry::global();
  const id before = r.define("test_before_limit_total", "h");
  id last = 0;
  for (std::uint32_t i = 0; i < registry::max_counters; ++i) {
    last = r.define("test_limit_total", "h", {{"i", std::to_string(i)}});
  }
  EXPECT_EQ(last, registry::max_counters - 1);
  const id again = r.define("test_limit_more_total", "h");
  EXPECT_EQ(again, last);
  EXPECT_EQ(r.define("test_before_limit_total", "h"), before); // what was defined still resolves
  add(again, 2);
  add(last, 3);
  add(before);
  EXPECT_EQ(r.read("vigil_counters_overflowed_total", {}), 5u);
  EXPECT_EQ(r.read(before), 1u);
  std::size_t overflow_samples = 0;
  for (const sample& s : r.snapshot()) {
    overflow_samples += s.name == "vigil_counters_overflowed_total" ? 1 : 0;
  }
  EXPECT_EQ(overflow_samples, 1u);
}

} // namespace
} // namespace vigil::counters
