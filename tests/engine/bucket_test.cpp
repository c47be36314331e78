// Leaky buckets on manual event time: CrowdSec's documented cases (pkg/leakybucket/tests) and
// the engine's own contracts (out-of-order time, expiry, recycling without allocation).

#include <atomic>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/bucket/bucket.h"
#include "engine/counters/counters.h"
#include "engine/event/timestamp.h"
#include "tests/support/count_allocations.h"

namespace vigil::engine {
namespace {

constexpr unix_nanos ms = 1'000'000;
constexpr unix_nanos sec = 1'000 * ms;
constexpr unix_nanos minute = 60 * sec;

unix_nanos at(const char* rfc3339) { return *parse_rfc3339(rfc3339); }

event_payload payload(unix_nanos t, std::string entry) {
  event_payload p;
  p.time = t;
  p.meta = {{"entry", std::move(entry)}, {"source_ip", "1.2.3.4"}};
  return p;
}

struct recorded {
  std::uint32_t scenario;
  std::string key;
  std::uint64_t events_count;
  unix_nanos first, last, at;
  std::vector<unix_nanos> times;
  std::vector<std::string> entries;
  bool blackholed;
};

struct recording_sink final : overflow_sink {
  std::vector<recorded> got;
  std::uint64_t poured = 0; // pour_n's pours that pour() said count in cs_bucket_poured_total
  void on_overflow(const overflow& ov) override {
    recorded r{ov.scenario, std::string(ov.key), ov.events_count, ov.first, ov.last, ov.at, {}, {},
               ov.blackholed};
    for (const event_payload* p : ov.events) {
      r.times.push_back(p->time);
      r.entries.emplace_back(p->get("entry"));
    }
    got.push_back(std::move(r));
  }
  [[nodiscard]] std::size_t kept() const {
    std::size_t n = 0;
    for (const auto& r : got) {
      n += r.blackholed ? 0 : 1;
    }
    return n;
  }
};

bucket_spec leaky(std::string name, std::int64_t capacity, unix_nanos leakspeed) {
  bucket_spec s;
  s.name = std::move(name);
  s.type = bucket_type::leaky;
  s.capacity = capacity;
  s.leakspeed = leakspeed;
  return s;
}

bucket_spec trigger(std::string name) {
  bucket_spec s;
  s.name = std::move(name);
  s.type = bucket_type::trigger;
  return s;
}

bucket_spec counter(std::string name, unix_nanos duration) {
  bucket_spec s;
  s.name = std::move(name);
  s.type = bucket_type::counter;
  s.capacity = -1;
  s.duration = duration;
  return s;
}

std::uint64_t metric(const char* name, const std::string& scenario) {
  return counters::registry::global().read(name, {{"name", scenario}});
}

// Pours event number n (1-based, "entry" meta = n) at t under key into scenario 0.
void pour_n(bucket_set& b, recording_sink& sink, int n, unix_nanos t, std::string_view key = "c/1.2.3.4",
            std::string_view distinct = {}) {
  if (b.pour(0, key, distinct, t, payload(t, std::to_string(n)), sink)) {
    ++sink.poured;
  }
}

// --- leaky ------------------------------------------------------------------------------------

// k8s bruteforce shape (capacity 5, leakspeed 10s): five 401s then quiet never overflow, and the
// bucket expires (underflow) (capacity+1) x leakspeed = 60 s after its last event, not before.
TEST(bucket_leaky, five_events_then_quiet_underflow_after_60s) {
  const std::string name = "t/five-then-quiet";
  bucket_set b({leaky(name, 5, 10 * sec)});
  recording_sink sink;
  const unix_nanos t0 = at("2023-05-17T15:00:00Z");
  for (int i = 0; i < 5; ++i) {
    pour_n(b, sink, i + 1, t0 + i * sec);
  }
  const unix_nanos last = t0 + 4 * sec;
  EXPECT_TRUE(sink.got.empty());
  EXPECT_EQ(b.live(), 1u);
  EXPECT_EQ(metric("cs_buckets", name), 1u);
  b.advance(last + 60 * sec, sink); // exactly the deadline: not yet (strictly after)
  EXPECT_EQ(b.live(), 1u);
  EXPECT_EQ(metric("cs_bucket_underflowed_total", name), 0u);
  b.advance(last + 60 * sec + 1, sink);
  EXPECT_EQ(b.live(), 0u);
  EXPECT_TRUE(sink.got.empty());
  EXPECT_EQ(metric("cs_bucket_underflowed_total", name), 1u);
  EXPECT_EQ(metric("cs_bucket_overflowed_total", name), 0u);
  EXPECT_EQ(sink.poured, 5u);
  EXPECT_EQ(metric("cs_bucket_instantiation_total", name), 1u);
  EXPECT_EQ(metric("cs_buckets", name), 0u);
}

// A bucket set destroyed with live buckets (what a rule reload does) takes its share of the
// cs_buckets gauge with it.
TEST(bucket_leaky, destroyed_set_leaves_no_live_buckets_in_the_gauge) {
  const std::string name = "t/destroyed-with-live";
  {
    bucket_set b({leaky(name, 5, 10 * sec)});
    recording_sink sink;
    const unix_nanos t0 = at("2023-05-17T15:00:00Z");
    pour_n(b, sink, 1, t0, "c/1.1.1.1");
    pour_n(b, sink, 2, t0, "c/2.2.2.2");
    EXPECT_EQ(metric("cs_buckets", name), 2u);
  }
  EXPECT_EQ(metric("cs_buckets", name), 0u);
  EXPECT_EQ(metric("cs_bucket_instantiation_total", name), 2u);
}

// A rule reload keeps the buckets of the scenarios it leaves as they were: three 401s before it
// and three after overflow, and the blackhole opened before it still holds after it. A scenario
// whose parameters changed starts afresh; the gauge counts what moved, once.
TEST(bucket_leaky, a_reload_keeps_the_buckets_of_unchanged_scenarios) {
  const std::string kept = "t/reload-kept", changed = "t/reload-changed";
  bucket_spec k = leaky(kept, 5, 10 * sec);
  k.blackhole = minute;
  recording_sink sink;
  const unix_nanos t0 = at("2023-05-17T15:00:00Z");
  auto before = std::make_unique<bucket_set>(std::vector<bucket_spec>{k, leaky(changed, 5, 10 * sec)});
  for (int i = 1; i <= 3; ++i) {
    pour_n(*before, sink, i, t0 + i * sec);
    ASSERT_TRUE(before->pour(1, "c/1.2.3.4", {}, t0 + i * sec, payload(t0, "x"), sink));
  }
  pour_n(*before, sink, 1, t0, "c/9.9.9.9");
  for (int i = 1; i <= 6; ++i) { // another key overflows: its blackhole runs to t0 + 1m
    pour_n(*before, sink, i, t0 + i * 100 * ms, "c/6.6.6.6");
  }
  ASSERT_EQ(sink.kept(), 1u);
  // The reload: scenario order changes, the second scenario's capacity too.
  auto after = std::make_unique<bucket_set>(std::vector<bucket_spec>{leaky(changed, 6, 10 * sec), k});
  after->adopt(*before);
  before.reset();
  EXPECT_EQ(after->live(), 2u); // 1.2.3.4 and 9.9.9.9 of the kept scenario
  EXPECT_EQ(metric("cs_buckets", kept), 2u);
  EXPECT_EQ(metric("cs_buckets", changed), 0u);
  for (int i = 4; i <= 6; ++i) {
    EXPECT_TRUE(after->pour(1, "c/1.2.3.4", {}, t0 + i * sec, payload(t0 + i * sec, std::to_string(i)), sink));
    EXPECT_TRUE(after->pour(0, "c/1.2.3.4", {}, t0 + i * sec, payload(t0, "x"), sink));
  }
  ASSERT_EQ(sink.got.size(), 2u);
  const recorded& r = sink.got[1];
  EXPECT_EQ(r.scenario, 1u); // the kept scenario's index in the new rules
  EXPECT_EQ(r.events_count, 6u);
  EXPECT_EQ(r.entries, (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));
  EXPECT_FALSE(r.blackholed);
  for (int i = 1; i <= 6; ++i) { // still inside the blackhole opened before the reload
    after->pour(1, "c/6.6.6.6", {}, t0 + 20 * sec + i * 100 * ms, payload(t0, "y"), sink);
  }
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_TRUE(sink.got[2].blackholed);
  // The changed scenario started afresh: 3 events, far from its new capacity of 6.
  EXPECT_EQ(metric("cs_buckets", changed), 1u);
  // A scenario whose keys or distinct values are made another way starts afresh too.
  bucket_spec regrouped = k;
  regrouped.keyed_by = "evt.Meta.user\n";
  auto third = std::make_unique<bucket_set>(std::vector<bucket_spec>{regrouped});
  third->adopt(*after);
  EXPECT_EQ(third->live(), 0u);
}

// Six events within 10 s overflow on the sixth with events_count 6 and all six payloads in order.
TEST(bucket_leaky, six_events_in_ten_seconds_overflow) {
  const std::string name = "t/six-in-ten";
  bucket_set b({leaky(name, 5, 10 * sec)});
  recording_sink sink;
  const unix_nanos t0 = at("2023-05-17T15:00:00Z");
  const unix_nanos times[] = {t0, t0 + 2 * sec, t0 + 4 * sec, t0 + 6 * sec, t0 + 8 * sec, t0 + 9 * sec};
  for (int i = 0; i < 6; ++i) {
    pour_n(b, sink, i + 1, times[i]);
    EXPECT_EQ(sink.got.size(), i < 5 ? 0u : 1u) << "event " << i + 1;
  }
  ASSERT_EQ(sink.got.size(), 1u);
  const recorded& r = sink.got[0];
  EXPECT_EQ(r.scenario, 0u);
  EXPECT_EQ(r.key, "c/1.2.3.4");
  EXPECT_EQ(r.events_count, 6u);
  EXPECT_EQ(r.first, t0);
  EXPECT_EQ(r.last, t0 + 9 * sec);
  EXPECT_EQ(r.at, t0 + 9 * sec);
  EXPECT_FALSE(r.blackholed);
  EXPECT_EQ(r.entries, (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));
  EXPECT_EQ(r.times, (std::vector<unix_nanos>(std::begin(times), std::end(times))));
  EXPECT_EQ(b.live(), 0u); // the instance dies with its overflow
  EXPECT_EQ(metric("cs_bucket_overflowed_total", name), 1u);
}

// 20 events in 10 s with blackhole 1m: overflows on events 6, 12 and 18; only the first is kept.
TEST(bucket_leaky, twenty_events_blackhole_keeps_one) {
  const std::string name = "t/twenty-bh";
  bucket_spec s = leaky(name, 5, 10 * sec);
  s.blackhole = minute;
  bucket_set b({s});
  recording_sink sink;
  const unix_nanos t0 = at("2023-05-17T15:00:00Z");
  for (int i = 0; i < 20; ++i) {
    pour_n(b, sink, i + 1, t0 + i * 500 * ms);
  }
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_EQ(sink.kept(), 1u);
  EXPECT_FALSE(sink.got[0].blackholed);
  EXPECT_EQ(sink.got[0].entries.back(), "6");
  EXPECT_TRUE(sink.got[1].blackholed);
  EXPECT_EQ(sink.got[1].entries.front(), "7"); // a fresh instance after the first overflow
  EXPECT_EQ(sink.got[1].events_count, 6u);
  EXPECT_TRUE(sink.got[2].blackholed);
  EXPECT_EQ(metric("cs_bucket_overflowed_total", name), 3u);
  EXPECT_EQ(metric("vigil_bucket_blackholed_total", name), 2u);
  EXPECT_EQ(metric("cs_bucket_instantiation_total", name), 4u);
}

// Events spaced exactly one leakspeed apart never overflow; faster ones drain the bucket. At 9 s
// spacing each event nets -0.1 token: event 41 finds exactly 1.0 token (allowed), event 42 finds
// 0.9 and overflows. Exact nanosecond token maths is what makes event 41 pass.
TEST(bucket_leaky, leaks_over_time) {
  {
    bucket_set b({leaky("t/leak-slow", 5, 10 * sec)});
    recording_sink sink;
    for (int i = 0; i < 200; ++i) {
      pour_n(b, sink, i + 1, i * 10 * sec);
    }
    EXPECT_TRUE(sink.got.empty());
    EXPECT_EQ(b.live(), 1u);
  }
  {
    bucket_set b({leaky("t/leak-fast", 5, 10 * sec)});
    recording_sink sink;
    int n = 0;
    while (sink.got.empty() && n < 1000) {
      ++n;
      pour_n(b, sink, n, (n - 1) * 9 * sec);
    }
    ASSERT_EQ(sink.got.size(), 1u);
    EXPECT_EQ(n, 42);
    EXPECT_EQ(sink.got[0].events_count, 42u);
    EXPECT_EQ(sink.got[0].entries, (std::vector<std::string>{"37", "38", "39", "40", "41", "42"}));
    EXPECT_EQ(sink.got[0].first, 0);
    EXPECT_EQ(sink.got[0].at, 41 * 9 * sec);
  }
}

// rate.Limiter boundary: capacity 1, leakspeed 1s. At exactly 1 s the token is whole again;
// 1 ns short of the next second it is not.
TEST(bucket_leaky, token_boundary_is_exact) {
  bucket_set b({leaky("t/boundary", 1, sec)});
  recording_sink sink;
  pour_n(b, sink, 1, 0);
  pour_n(b, sink, 2, sec);
  EXPECT_TRUE(sink.got.empty());
  pour_n(b, sink, 3, 2 * sec - 1);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].events_count, 3u);
  EXPECT_EQ(sink.got[0].at, 2 * sec - 1);
}

// CrowdSec pkg/leakybucket/tests/simple-leaky-overflow: capacity 1, leakspeed 10s, events at
// 10:00:00 and 10:00:05 -> one overflow with events_count 2.
TEST(bucket_crowdsec, simple_leaky_overflow) {
  bucket_set b({leaky("test/simple-leaky-ovfl", 1, 10 * sec)});
  recording_sink sink;
  pour_n(b, sink, 1, at("2020-01-01T10:00:00+00:00"), "1.2.3.4");
  pour_n(b, sink, 2, at("2020-01-01T10:00:05+00:00"), "1.2.3.4");
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].events_count, 2u);
  EXPECT_EQ(sink.got[0].first, at("2020-01-01T10:00:00Z"));
  EXPECT_EQ(sink.got[0].at, at("2020-01-01T10:00:05Z"));
  EXPECT_EQ(sink.got[0].entries, (std::vector<std::string>{"1", "2"}));
}

// CrowdSec simple-leaky-blackhole: capacity 1, leakspeed 10s, blackhole 1m; events at 10:00:00,
// :04, :15, :16, 10:01:15, :16. Overflow at :04 kept; at :16 blackholed (until 10:01:04);
// at 10:01:16 kept again. Each kept one has events_count 2.
TEST(bucket_crowdsec, simple_leaky_blackhole) {
  bucket_spec s = leaky("test/simple-leaky-blackhole", 1, 10 * sec);
  s.blackhole = minute;
  bucket_set b({s});
  recording_sink sink;
  const char* times[] = {"2020-01-01T10:00:00Z", "2020-01-01T10:00:04Z", "2020-01-01T10:00:15Z",
                         "2020-01-01T10:00:16Z", "2020-01-01T10:01:15Z", "2020-01-01T10:01:16Z"};
  for (int i = 0; i < 6; ++i) {
    b.advance(at(times[i]), sink);
    pour_n(b, sink, i + 1, at(times[i]), "1.2.3.4");
  }
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_FALSE(sink.got[0].blackholed);
  EXPECT_EQ(sink.got[0].events_count, 2u);
  EXPECT_EQ(sink.got[0].at, at("2020-01-01T10:00:04Z"));
  EXPECT_TRUE(sink.got[1].blackholed);
  EXPECT_EQ(sink.got[1].at, at("2020-01-01T10:00:16Z"));
  EXPECT_FALSE(sink.got[2].blackholed);
  EXPECT_EQ(sink.got[2].events_count, 2u);
  EXPECT_EQ(sink.got[2].entries, (std::vector<std::string>{"5", "6"}));
  EXPECT_EQ(sink.kept(), 2u);
}

// CrowdSec simple-leaky-uniq: capacity 1, distinct uniq_key; values aaa, aaa, aab at 10:00:00,
// :01, :02 -> the second is ignored, the third overflows with events_count 2.
TEST(bucket_crowdsec, simple_leaky_uniq) {
  const std::string name = "test/simple-leaky-uniq";
  bucket_spec s = leaky(name, 1, 10 * sec);
  s.has_distinct = true;
  bucket_set b({s});
  recording_sink sink;
  pour_n(b, sink, 1, at("2020-01-01T10:00:00Z"), "1.2.3.4", "aaa");
  pour_n(b, sink, 2, at("2020-01-01T10:00:01Z"), "1.2.3.4", "aaa");
  EXPECT_TRUE(sink.got.empty());
  pour_n(b, sink, 3, at("2020-01-01T10:00:02Z"), "1.2.3.4", "aab");
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].events_count, 2u);
  EXPECT_EQ(sink.got[0].entries, (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(sink.poured, 2u); // the repeated "aaa" is not counted
}

// Distinct values are per instance: a fresh instance accepts a value its predecessor saw; and the
// distinct set keeps working past its linear-scan size.
TEST(bucket_leaky, distinct_is_per_instance_and_scales) {
  bucket_spec s = leaky("t/distinct-many", 100, sec);
  s.has_distinct = true;
  bucket_set b({s});
  recording_sink sink;
  for (int i = 0; i < 100; ++i) {
    pour_n(b, sink, i + 1, 0, "k", std::string("v").append(std::to_string(i)));
    pour_n(b, sink, 1000 + i, 0, "k", std::string("v").append(std::to_string(i / 2))); // all already seen
  }
  EXPECT_TRUE(sink.got.empty());
  pour_n(b, sink, 101, 0, "k", "v0"); // seen: ignored
  EXPECT_TRUE(sink.got.empty());
  pour_n(b, sink, 102, 0, "k", "new");
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].events_count, 101u);
  pour_n(b, sink, 103, sec, "k", "v0"); // new instance: v0 is new again
  EXPECT_EQ(b.live(), 1u);
  pour_n(b, sink, 104, sec, "k", "v1");
  EXPECT_EQ(sink.got.size(), 1u); // 2 events, capacity 100: no overflow
}

// Two keys poured alternately fill independently.
TEST(bucket_leaky, interleaved_keys_are_independent) {
  bucket_set b({leaky("t/two-keys", 2, 10 * sec)});
  recording_sink sink;
  for (int i = 0; i < 3; ++i) {
    pour_n(b, sink, i + 1, i * sec, "c/10.0.0.1");
    pour_n(b, sink, 10 + i, i * sec, "c/10.0.0.2");
  }
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[0].key, "c/10.0.0.1");
  EXPECT_EQ(sink.got[0].entries, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(sink.got[1].key, "c/10.0.0.2");
  EXPECT_EQ(sink.got[1].entries, (std::vector<std::string>{"10", "11", "12"}));
  // A third key only slightly behind is still under capacity.
  pour_n(b, sink, 20, 3 * sec, "c/10.0.0.3");
  EXPECT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(b.live(), 1u);
}

// The same key in two scenarios is two buckets.
TEST(bucket_leaky, same_key_in_two_scenarios_is_two_buckets) {
  bucket_set b({leaky("t/scen-a", 1, 10 * sec), leaky("t/scen-b", 3, 10 * sec)});
  recording_sink sink;
  for (int i = 0; i < 2; ++i) {
    b.pour(0, "k", {}, i, payload(i, "a"), sink);
    b.pour(1, "k", {}, i, payload(i, "b"), sink);
  }
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].scenario, 0u);
  EXPECT_EQ(b.live(), 1u);
}

// cache_size shrinks the queue (CrowdSec Queue(cache_size) keeps cache_size+1) but events_count
// still counts every event.
TEST(bucket_leaky, cache_size_caps_queue_not_count) {
  bucket_spec s = leaky("t/cache-size", 5, 10 * sec);
  s.cache_size = 2;
  bucket_set b({s});
  recording_sink sink;
  for (int i = 0; i < 6; ++i) {
    pour_n(b, sink, i + 1, i * sec);
  }
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].events_count, 6u);
  EXPECT_EQ(sink.got[0].entries, (std::vector<std::string>{"4", "5", "6"}));
  EXPECT_EQ(sink.got[0].first, 0);
}

// Out-of-order: an event older than its bucket's last event counts at the bucket's time.
// Capacity 2, leakspeed 10s: events at 100 s, 95 s, 111 s. Counted at 100, 100, 111: the third
// finds 1.1 tokens, no overflow. (Token maths going back to 95 s would have overflowed.)
TEST(bucket_leaky, older_event_counts_at_bucket_time) {
  bucket_set b({leaky("t/ooo", 2, 10 * sec)});
  recording_sink sink;
  pour_n(b, sink, 1, 100 * sec);
  pour_n(b, sink, 2, 95 * sec);
  pour_n(b, sink, 3, 111 * sec);
  EXPECT_TRUE(sink.got.empty());
  pour_n(b, sink, 4, 90 * sec); // counted at 111 s: 0.1 token left -> overflow
  ASSERT_EQ(sink.got.size(), 1u);
  const recorded& r = sink.got[0];
  EXPECT_EQ(r.first, 100 * sec);
  EXPECT_EQ(r.last, 111 * sec);
  EXPECT_EQ(r.at, 111 * sec);
  EXPECT_EQ(r.events_count, 4u);
  // The queued payloads keep their own event times.
  EXPECT_EQ(r.times, (std::vector<unix_nanos>{95 * sec, 111 * sec, 90 * sec}));
}

// After an overflow the instance dies; the next event starts a new one (instantiation counter).
TEST(bucket_leaky, new_instance_after_overflow) {
  const std::string name = "t/reborn";
  bucket_set b({leaky(name, 1, 10 * sec)});
  recording_sink sink;
  pour_n(b, sink, 1, 0);
  pour_n(b, sink, 2, 0);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(b.live(), 0u);
  EXPECT_EQ(metric("cs_bucket_instantiation_total", name), 1u);
  pour_n(b, sink, 3, sec);
  EXPECT_EQ(b.live(), 1u);
  EXPECT_EQ(metric("cs_bucket_instantiation_total", name), 2u);
  pour_n(b, sink, 4, 2 * sec);
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[1].events_count, 2u); // only the new instance's events
  EXPECT_EQ(sink.got[1].first, sec);
  EXPECT_EQ(sink.got[1].entries, (std::vector<std::string>{"3", "4"}));
}

// Without advance(), a pour that finds its bucket idle past the expiry underflows it and starts
// fresh; at exactly the deadline it is still the same bucket.
TEST(bucket_leaky, lazy_expiry_on_pour) {
  const std::string name = "t/lazy";
  bucket_set b({leaky(name, 1, 10 * sec)});
  recording_sink sink;
  pour_n(b, sink, 1, 0);
  pour_n(b, sink, 2, 20 * sec); // exactly last + (1+1) x 10 s: same instance, token refilled
  EXPECT_EQ(metric("cs_bucket_instantiation_total", name), 1u);
  pour_n(b, sink, 3, 40 * sec + 1); // past the deadline: underflow + fresh instance
  EXPECT_EQ(metric("cs_bucket_underflowed_total", name), 1u);
  EXPECT_EQ(metric("cs_bucket_instantiation_total", name), 2u);
  EXPECT_TRUE(sink.got.empty());
  pour_n(b, sink, 4, 40 * sec + 2);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].events_count, 2u);
  // advance() afterwards does not underflow the already-replaced instance again.
  b.advance(10 * minute, sink);
  EXPECT_EQ(metric("cs_bucket_underflowed_total", name), 1u);
  EXPECT_EQ(b.live(), 0u);
}

// advance() keeps a poured bucket alive: its deadline moves with each event.
TEST(bucket_leaky, advance_follows_moving_deadline) {
  bucket_set b({leaky("t/moving", 5, 10 * sec)});
  recording_sink sink;
  for (int i = 0; i < 10; ++i) {
    pour_n(b, sink, i + 1, i * 50 * sec);
    b.advance(i * 50 * sec + 30 * sec, sink);
    EXPECT_EQ(b.live(), 1u) << i;
  }
  b.advance(9 * 50 * sec + 60 * sec + 1, sink);
  EXPECT_EQ(b.live(), 0u);
  EXPECT_TRUE(sink.got.empty());
}

// --- trigger ----------------------------------------------------------------------------------

TEST(bucket_trigger, every_event_overflows_alone) {
  const std::string name = "t/trigger";
  bucket_set b({trigger(name)});
  recording_sink sink;
  for (int i = 0; i < 3; ++i) {
    pour_n(b, sink, i + 1, 100 * sec - i * sec); // order does not matter for triggers
  }
  ASSERT_EQ(sink.got.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const recorded& r = sink.got[static_cast<std::size_t>(i)];
    EXPECT_EQ(r.events_count, 1u);
    EXPECT_EQ(r.first, 100 * sec - i * sec);
    EXPECT_EQ(r.last, r.first);
    EXPECT_EQ(r.at, r.first);
    EXPECT_EQ(r.entries, (std::vector<std::string>{std::to_string(i + 1)}));
    EXPECT_FALSE(r.blackholed);
  }
  EXPECT_EQ(b.live(), 0u);
  EXPECT_EQ(metric("cs_bucket_instantiation_total", name), 3u);
  EXPECT_EQ(metric("cs_bucket_overflowed_total", name), 3u);
  EXPECT_EQ(sink.poured, 0u); // CrowdSec counts pours after the processors
}

TEST(bucket_trigger, blackhole_per_key) {
  bucket_spec s = trigger("t/trigger-bh");
  s.blackhole = minute;
  bucket_set b({s});
  recording_sink sink;
  pour_n(b, sink, 1, 0, "a");
  pour_n(b, sink, 2, 30 * sec, "a");
  pour_n(b, sink, 3, 30 * sec, "b");
  b.advance(59 * sec, sink);
  pour_n(b, sink, 4, 59 * sec, "a");
  b.advance(60 * sec, sink);
  pour_n(b, sink, 5, 60 * sec, "a"); // exactly 1m after the kept one: no longer blackholed
  ASSERT_EQ(sink.got.size(), 5u);
  EXPECT_EQ((std::vector<bool>{sink.got[0].blackholed, sink.got[1].blackholed, sink.got[2].blackholed,
                               sink.got[3].blackholed, sink.got[4].blackholed}),
            (std::vector<bool>{false, true, false, true, false}));
  b.flush(sink);
  EXPECT_EQ(sink.got.size(), 5u);
}

// --- counter ----------------------------------------------------------------------------------

TEST(bucket_counter, overflows_after_duration_with_all_events) {
  const std::string name = "t/counter";
  bucket_set b({counter(name, minute)});
  recording_sink sink;
  pour_n(b, sink, 1, 0, "a");
  pour_n(b, sink, 2, 10 * sec, "a");
  pour_n(b, sink, 3, 5 * sec, "b");
  pour_n(b, sink, 4, 60 * sec, "a"); // exactly first + duration: still in
  b.advance(60 * sec, sink);
  EXPECT_TRUE(sink.got.empty());
  EXPECT_EQ(b.live(), 2u);
  b.advance(65 * sec + 1, sink); // both due, fired in due order
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[0].key, "a");
  EXPECT_EQ(sink.got[0].events_count, 3u);
  EXPECT_EQ(sink.got[0].first, 0);
  EXPECT_EQ(sink.got[0].last, 60 * sec);
  EXPECT_EQ(sink.got[0].at, 60 * sec);
  EXPECT_EQ(sink.got[0].entries, (std::vector<std::string>{"1", "2", "4"}));
  EXPECT_EQ(sink.got[1].key, "b");
  EXPECT_EQ(sink.got[1].at, 65 * sec);
  EXPECT_EQ(b.live(), 0u);
  EXPECT_EQ(metric("cs_bucket_overflowed_total", name), 2u);
  EXPECT_EQ(metric("cs_bucket_underflowed_total", name), 0u);
}

// A pour past a counter's window fires it first (same result as if advance() had run), then
// starts a new counter with this event.
// A counter whose end lies past what 64-bit nanoseconds reach (first + duration after 2262)
// has no timer; the end of the input still ends it with its alert, as it ends the others.
TEST(bucket_counter, an_end_past_the_clock_still_alerts_at_flush) {
  const std::string name = "t/counter-far";
  bucket_set b({counter(name, std::numeric_limits<unix_nanos>::max() - sec)});
  recording_sink sink;
  const unix_nanos t0 = at("2026-01-01T00:00:00Z");
  pour_n(b, sink, 1, t0);
  pour_n(b, sink, 2, t0 + sec);
  b.advance(t0 + 365 * 24 * 3600 * sec, sink);
  EXPECT_TRUE(sink.got.empty());
  b.flush(sink);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].events_count, 2u);
  EXPECT_EQ(b.live(), 0u);
  EXPECT_EQ(metric("cs_buckets", name), 0u);
}

TEST(bucket_counter, lazy_fire_on_pour) {
  bucket_set b({counter("t/counter-lazy", minute)});
  recording_sink sink;
  pour_n(b, sink, 1, 0);
  pour_n(b, sink, 2, 61 * sec);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].events_count, 1u);
  EXPECT_EQ(sink.got[0].at, 60 * sec);
  EXPECT_EQ(b.live(), 1u);
  b.advance(121 * sec + 1, sink);
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[1].first, 61 * sec);
  EXPECT_EQ(sink.got[1].at, 121 * sec);
}

// A counter's queue is unbounded unless cache_size is set; events_count counts everything.
TEST(bucket_counter, queue_unbounded_or_cache_size) {
  bucket_spec capped = counter("t/counter-cache", minute);
  capped.cache_size = 3;
  // A queue of 11: its ring grows past its first 8 slots to the limit, then wraps.
  bucket_spec capped_more = counter("t/counter-cache-10", minute);
  capped_more.cache_size = 10;
  bucket_set b({counter("t/counter-all", minute), capped, capped_more});
  recording_sink sink;
  for (int i = 0; i < 100; ++i) {
    b.pour(0, "k", {}, i * 100 * ms, payload(i, std::to_string(i)), sink);
    b.pour(1, "k", {}, i * 100 * ms, payload(i, std::to_string(i)), sink);
    b.pour(2, "k", {}, i * 100 * ms, payload(i, std::to_string(i)), sink);
  }
  b.advance(2 * minute, sink);
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_EQ(sink.got[2].events_count, 100u);
  EXPECT_EQ(sink.got[2].entries,
            (std::vector<std::string>{"89", "90", "91", "92", "93", "94", "95", "96", "97", "98", "99"}));
  EXPECT_EQ(sink.got[0].events_count, 100u);
  EXPECT_EQ(sink.got[0].entries.size(), 100u);
  EXPECT_EQ(sink.got[0].entries.front(), "0");
  EXPECT_EQ(sink.got[0].entries.back(), "99");
  EXPECT_EQ(sink.got[1].events_count, 100u);
  EXPECT_EQ(sink.got[1].entries, (std::vector<std::string>{"96", "97", "98", "99"}));
}

// flush(): live counters overflow (at = first + duration); live leaky buckets vanish without an
// overflow or an underflow; everything is dropped, blackholes included.
TEST(bucket_flush, counters_fire_leaky_dropped) {
  bucket_spec lk = leaky("t/flush-leaky", 5, 10 * sec);
  lk.blackhole = minute;
  bucket_set b({counter("t/flush-counter", 5 * minute), lk});
  recording_sink sink;
  b.pour(0, "a", {}, 0, payload(0, "c1"), sink);
  b.pour(0, "a", {}, sec, payload(sec, "c2"), sink);
  b.pour(1, "a", {}, 0, payload(0, "l1"), sink);
  for (int i = 0; i < 6; ++i) {
    b.pour(1, "z", {}, 0, payload(0, "z"), sink); // overflow: sets a blackhole on "z"
  }
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(b.live(), 2u);
  b.flush(sink);
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[1].scenario, 0u);
  EXPECT_EQ(sink.got[1].events_count, 2u);
  EXPECT_EQ(sink.got[1].at, 5 * minute);
  EXPECT_EQ(b.live(), 0u);
  EXPECT_EQ(metric("cs_bucket_underflowed_total", "t/flush-leaky"), 0u);
  EXPECT_EQ(metric("cs_buckets", "t/flush-leaky"), 0u);
  // The blackhole on "z" is gone: a new overflow right away is kept.
  for (int i = 0; i < 6; ++i) {
    b.pour(1, "z", {}, sec, payload(sec, "z"), sink);
  }
  ASSERT_EQ(sink.got.size(), 3u);
  EXPECT_FALSE(sink.got[2].blackholed);
}

// --- misc -------------------------------------------------------------------------------------

TEST(bucket_set_spec, invalid_specs_throw) {
  EXPECT_THROW(bucket_set({leaky("t/bad", 0, sec)}), std::invalid_argument);
  EXPECT_THROW(bucket_set({leaky("t/bad", 5, 0)}), std::invalid_argument);
  EXPECT_THROW(bucket_set({counter("t/bad", 0)}), std::invalid_argument);
}

// Many keys: the table grows, buckets expire and the table empties again.
TEST(bucket_set_table, many_keys_grow_and_drain) {
  bucket_set b({leaky("t/many", 1, sec)}, 4);
  recording_sink sink;
  for (int i = 0; i < 5000; ++i) {
    pour_n(b, sink, i, i, "key-" + std::to_string(i));
  }
  EXPECT_EQ(b.live(), 5000u);
  for (int i = 0; i < 5000; i += 2) { // every other key overflows
    pour_n(b, sink, i, 5000, "key-" + std::to_string(i));
  }
  EXPECT_EQ(sink.got.size(), 2500u);
  EXPECT_EQ(b.live(), 2500u);
  for (int i = 1; i < 5000; i += 2) { // the others are still there, one token short
    pour_n(b, sink, i, 5001, "key-" + std::to_string(i));
  }
  EXPECT_EQ(sink.got.size(), 5000u);
  b.advance(10 * sec, sink);
  EXPECT_EQ(b.live(), 0u);
}

struct counting_sink final : overflow_sink {
  std::uint64_t n = 0;
  std::uint64_t events = 0;
  void on_overflow(const overflow& ov) override {
    ++n;
    events += ov.events.size();
  }
};

// Once warm, pouring (new instances, overflows, blackholes, distinct, counters, expiry) does not
// allocate.
TEST(bucket_set_alloc, no_heap_allocation_once_warm) {
  bucket_spec lk = leaky("t/alloc-leaky", 5, 10 * sec);
  lk.blackhole = minute;
  lk.has_distinct = true;
  bucket_spec ct = counter("t/alloc-counter", 30 * sec);
  ct.cache_size = 10;
  bucket_spec tg = trigger("t/alloc-trigger");
  tg.blackhole = minute;
  bucket_set b({lk, ct, tg});
  counting_sink sink;
  std::vector<std::string> keys;
  std::vector<std::string> distinct;
  for (int i = 0; i < 200; ++i) {
    keys.push_back("cluster-a/10.0.0." + std::to_string(1000 + i)); // longer than SSO
  }
  for (int i = 0; i < 16; ++i) {
    distinct.push_back("distinct-value-number-" + std::to_string(100 + i));
  }
  const event_payload p = payload(0, "a-fairly-long-entry-value-beyond-sso");
  unix_nanos t = 0;
  const auto cycle = [&] {
    for (int round = 0; round < 12; ++round) {
      for (std::size_t k = 0; k < keys.size(); ++k) {
        b.pour(0, keys[k], distinct[(round + k) % distinct.size()], t, p, sink);
        b.pour(1, keys[k], {}, t, p, sink);
        if (k % 7 == 0) {
          b.pour(2, keys[k], {}, t, p, sink);
        }
      }
      t += 100 * ms;
      b.advance(t, sink);
    }
    t += 5 * minute; // everything expires, fires or leaves its blackhole
    b.advance(t, sink);
  };
  for (int warm = 0; warm < 3; ++warm) {
    cycle();
  }
  const std::uint64_t overflows_before = sink.n;
  const std::uint64_t before = test::allocations.load();
  cycle();
  cycle();
  const std::uint64_t after = test::allocations.load();
  EXPECT_EQ(after - before, 0u);
  EXPECT_GT(sink.n, overflows_before); // the measured cycles did real work
  EXPECT_EQ(b.live(), 0u);
}

// A bucket's queue grows with what is poured into it, not with its capacity: a scenario of
// capacity 100,000 that sees 50 keys once each holds 50 short queues (its rings were sized to
// the capacity up front: about 5 MB a key). It still overflows at capacity + 1.
TEST(bucket_set_alloc, a_large_capacity_costs_memory_only_as_events_come) {
  bucket_set b({leaky("t/large", 100000, 10 * sec)});
  counting_sink sink;
  const event_payload p = payload(0, "entry");
  const std::uint64_t before = test::allocated_bytes.load();
  for (int k = 0; k < 50; ++k) {
    b.pour(0, "cluster-a/10.0.1." + std::to_string(k), {}, at("2026-01-01T00:00:00Z"), p, sink);
  }
  EXPECT_EQ(b.live(), 50u);
  EXPECT_LT(test::allocated_bytes.load() - before, 1u << 20);
  const unix_nanos t0 = at("2026-01-01T00:00:00Z");
  for (int i = 0; i < 100000; ++i) {
    b.pour(0, "cluster-a/10.0.2.1", {}, t0, p, sink);
  }
  EXPECT_EQ(sink.n, 0u);
  b.pour(0, "cluster-a/10.0.2.1", {}, t0, p, sink);
  EXPECT_EQ(sink.n, 1u);
  EXPECT_EQ(sink.events, 100001u); // the queue grew to the whole limit
}

// A leaky queue that grows in steps (8, 16, then its limit of 21) keeps its events in order.
TEST(bucket_leaky, a_growing_queue_keeps_its_events_in_order) {
  bucket_set b({leaky("t/grow", 20, 10 * sec)});
  recording_sink sink;
  for (int i = 0; i < 21; ++i) {
    pour_n(b, sink, i + 1, 0);
  }
  ASSERT_EQ(sink.got.size(), 1u);
  std::vector<std::string> expected;
  for (int i = 1; i <= 21; ++i) {
    expected.push_back(std::to_string(i));
  }
  EXPECT_EQ(sink.got[0].entries, expected);
}

} // namespace
} // namespace vigil::engine
