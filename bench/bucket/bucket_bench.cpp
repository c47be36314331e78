// Leaky-bucket pours (engine/bucket/bucket.h): the cost of one pour into a shard's bucket_set.
//
//  BM_pour_many_keys/K  K distinct groupby keys poured round-robin (the bruteforce shape: capacity
//                       5, leak 10 s, blackhole 1 m, keys "<cluster>\0<source ip>"), event time
//                       moving so that each key comes back once its token is back: every pour finds
//                       its live instance in a table of K, nothing overflows, nothing expires.
//                       K = 1,000 (fits the caches) and 100,000 (does not).
//  BM_pour_hot_key      one key poured every 100 ms: the instance overflows every few events (the
//                       alert path: queue of capacity+1 payloads handed to the sink), then is
//                       blackholed for a minute, then overflows again.
//  BM_pour_trigger      a trigger scenario (every pour instantiates, overflows and recycles).
// Each pour copies a realistic 8-pair meta payload into the bucket's queue, as the worker does, and
// advance() runs every 400 pours (once per webhook batch). Real work: for many keys, every key
// holds a live bucket at the end and no overflow happened; for the hot key and the trigger,
// overflows reached the sink. Otherwise the benchmark fails (SkipWithError). Each live leaky
// instance keeps its last capacity+1 payloads, so 100,000 keys hold 600,000 payloads (peak_rss_mb).
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include "engine/bucket/bucket.h"

namespace {

using namespace vigil::engine;

constexpr unix_nanos ms = 1'000'000;
constexpr unix_nanos sec = 1'000 * ms;
constexpr unix_nanos t0 = 1'700'000'000 * sec;
constexpr int advance_every = 400;

bucket_spec bruteforce() {
  bucket_spec s;
  s.name = "bench/k8s-audit-api-server-bruteforce";
  s.type = bucket_type::leaky;
  s.capacity = 5;
  s.leakspeed = 10 * sec;
  s.blackhole = 60 * sec;
  return s;
}

bucket_spec trigger() {
  bucket_spec s;
  s.name = "bench/k8s-audit-pod-exec";
  s.type = bucket_type::trigger;
  return s;
}

event_payload make_payload(const std::string& ip) {
  event_payload p;
  p.time = t0;
  p.meta = {{"datasource_path", "/var/log/kubernetes/audit/audit.log"},
            {"datasource_type", "file"},
            {"log_type", "k8s-audit"},
            {"namespace", "kube-system"},
            {"resource_name", "coredns-787d4945fb-xv4sk"},
            {"source_ip", ip},
            {"timestamp", "2026-01-01T00:00:00.123456Z"},
            {"user", "system:anonymous"}};
  return p;
}

struct counting_sink final : overflow_sink {
  std::uint64_t overflows = 0, blackholed = 0, events = 0;
  void on_overflow(const overflow& ov) override {
    ++overflows;
    blackholed += ov.blackholed ? 1 : 0;
    events += ov.events.size();
    benchmark::DoNotOptimize(ov.key.data());
  }
};

std::vector<std::string> ip_keys(std::size_t n) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    // "<cluster>\0<ip>" as the worker builds keys, cluster empty.
    keys.push_back(std::string(1, '\0') + "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) +
                   "." + std::to_string(i & 255));
  }
  return keys;
}

void BM_pour_many_keys(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  const std::vector<std::string> keys = ip_keys(n);
  const event_payload payload = make_payload("10.0.0.1");
  bucket_set set({bruteforce()}, n);
  counting_sink sink;
  // Each key comes back every n pours; at this step its one token (10 s) is back by then.
  const unix_nanos step = 10 * sec / static_cast<unix_nanos>(n) + 1;
  unix_nanos t = t0;
  std::size_t i = 0, pours = 0;
  // Warm up: one instance per key.
  for (const std::string& k : keys) {
    set.pour(0, k, {}, t, payload, sink);
    t += step;
  }
  for (auto _ : state) {
    for (int b = 0; b < advance_every; ++b) {
      set.pour(0, keys[i], {}, t, payload, sink);
      t += step;
      if (++i == n) {
        i = 0;
      }
    }
    set.advance(t, sink);
    pours += advance_every;
  }
  if (set.live() != n || sink.overflows != 0) {
    state.SkipWithError("no real work: live buckets != keys, or unexpected overflows");
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(pours));
  state.counters["time_per_pour"] =
      benchmark::Counter(static_cast<double>(pours), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["live_buckets"] = static_cast<double>(set.live());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  state.counters["peak_rss_mb"] = static_cast<double>(ru.ru_maxrss) / 1024.0;
}

void BM_pour_hot_key(benchmark::State& state) {
  const std::vector<std::string> keys = ip_keys(1);
  const event_payload payload = make_payload("10.0.0.0");
  bucket_set set({bruteforce()});
  counting_sink sink;
  unix_nanos t = t0;
  std::size_t pours = 0;
  for (auto _ : state) {
    for (int b = 0; b < advance_every; ++b) {
      set.pour(0, keys[0], {}, t, payload, sink);
      t += 100 * ms;
    }
    set.advance(t, sink);
    pours += advance_every;
  }
  if (sink.overflows == 0 || sink.events == 0) {
    state.SkipWithError("no real work: the hot key never overflowed");
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(pours));
  state.counters["time_per_pour"] =
      benchmark::Counter(static_cast<double>(pours), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["overflows"] = static_cast<double>(sink.overflows);
  state.counters["blackholed"] = static_cast<double>(sink.blackholed);
}

void BM_pour_trigger(benchmark::State& state) {
  const std::vector<std::string> keys = ip_keys(1024);
  const event_payload payload = make_payload("10.0.0.0");
  bucket_set set({trigger()});
  counting_sink sink;
  unix_nanos t = t0;
  std::size_t pours = 0;
  for (auto _ : state) {
    for (int b = 0; b < advance_every; ++b) {
      set.pour(0, keys[static_cast<std::size_t>(b) & 1023], {}, t, payload, sink);
      t += ms;
    }
    set.advance(t, sink);
    pours += advance_every;
  }
  if (sink.overflows != pours) {
    state.SkipWithError("no real work: a trigger pour did not overflow");
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(pours));
  state.counters["time_per_pour"] =
      benchmark::Counter(static_cast<double>(pours), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

} // namespace

BENCHMARK(BM_pour_many_keys)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pour_hot_key)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pour_trigger)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
