#pragma once
// CrowdSec's leaky buckets (pkg/leakybucket), on event time, for one shard.
//
// Every scenario is a bucket_spec; every (scenario, partition key) pair has at most one live bucket
// instance. pour() feeds one event, advance() moves the shard's clock (the watermark) and expires
// what is idle, flush() ends a replay. Overflows go synchronously to an overflow_sink.
//
// Semantics (crowdsec-semantics.md 2.4; the choices CrowdSec leaves open are marked "vigil:"):
//  - leaky: a token bucket exactly like golang.org/x/time/rate `NewLimiter(Every(leakspeed),
//    capacity)` with one Allow() per poured event, in integer nanoseconds (tokens are counted in
//    "nanoseconds of leak": one token = leakspeed ns, so fractional tokens are exact). It starts
//    full. An event that finds less than one token is still queued and the bucket overflows, so
//    the overflow comes with event number capacity+1 inside the window. After an overflow the
//    instance dies; the next event creates a fresh one.
//    Expiry (underflow): an instance whose last event is older than (capacity+1) x leakspeed dies
//    and counts in cs_bucket_underflowed_total. vigil: "older than" is strict, as CrowdSec's
//    time-machine check `evt.After(Last_ts + Duration)`: an event exactly at last + duration still
//    lands in the old instance, and advance(last + duration) does not expire it (1 ns later does).
//    Expiry happens in advance() and also lazily in pour(), so for events in time order results
//    do not depend on how often advance() is called. An event older than the time given to
//    advance() by more than its bucket's window can find that bucket (or a blackhole's memory)
//    gone, where fewer calls would have kept it: late events depend on where advance() ran.
//  - trigger: every event overflows at once alone: events_count 1, first = last = at = its time.
//    Like CrowdSec, each event instantiates (and kills) one instance; `distinct` does not apply
//    (the trigger processor runs before the uniq processor) and cs_bucket_poured_total is NOT
//    incremented (CrowdSec counts pours after the processors, and the trigger processor stops
//    the chain).
//  - counter (capacity -1): never overflows on a pour; it overflows `duration` after its first
//    event with every event it got (at = first + duration). vigil: on event time, due strictly
//    after first + duration (an event exactly at first + duration is still counted in it).
//  - queue: CrowdSec's Queue(L) keeps at most L+1 events, dropping the oldest. L = capacity, or
//    cache_size when 0 < cache_size <= capacity; a counter's L is unbounded unless cache_size > 0
//    (then L = cache_size). events_count always counts every poured event.
//  - distinct: per instance, an event whose distinct value the instance already saw is ignored:
//    not queued, not counted, not poured, and it does not move the instance's last time.
//  - blackhole: per scenario and partition key, shared across instances: an overflow at `at` is
//    discarded (blackholed = true, still counted in cs_bucket_overflowed_total as CrowdSec does,
//    and in vigil_bucket_blackholed_total) when the previous *kept* overflow of the key was at
//    `p` with at < p + blackhole. Blackholed overflows do not extend the window.
//  - event time: vigil: an event older than its instance's last event is counted at the
//    instance's last time (first/last/at and the token maths never go backwards); the queued
//    payload keeps the event's own time.
//  - flush() (end of replay) — vigil: every live counter overflows as if its duration had
//    elapsed (at = first + duration, blackhole applies), as CrowdSec's own `simple-counter` test
//    expects once the input ends; live leaky instances are dropped silently (no overflow, no
//    underflow count: CrowdSec kills them at shutdown without an alert); blackhole state is cleared.
//
// Threading: a bucket_set is shard-owned and NOT thread-safe; one thread calls every method. The
// sink is called on that thread and must not call back into the bucket_set.
// Hot path (pour/advance): no locks, no exceptions, and no heap allocation once warm: instances,
// their payload slots and their distinct sets are recycled. Allocation happens only while the
// working set grows past its high-water mark (more keys, longer counter queues, more distinct
// values per instance than ever before).
//
// Counters (global registry, label name=<scenario name>): cs_bucket_instantiation_total,
// cs_bucket_overflowed_total (blackholed included), cs_bucket_underflowed_total,
// vigil_bucket_blackholed_total, and the gauge cs_buckets (live instances of this bucket_set;
// the gauge is per thread, so one bucket_set per thread). cs_bucket_poured_total also carries
// the event's source and type, which only the caller knows: pour() says whether to count it.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/bucket/payload.h"
#include "engine/event/timestamp.h"

namespace vigil::engine {

enum class bucket_type : std::uint8_t { trigger, leaky, counter };

/// One scenario's bucket parameters, immutable after load. All durations in nanoseconds.
struct bucket_spec {
  std::string name;              ///< scenario name, e.g. "crowdsecurity/k8s-audit-api-server-bruteforce"
  bucket_type type = bucket_type::trigger;
  std::int64_t capacity = 0;     ///< leaky: > 0; trigger: 0; counter: -1
  unix_nanos leakspeed = 0;      ///< nanoseconds per token (leaky, > 0)
  unix_nanos duration = 0;       ///< counter window (> 0)
  unix_nanos blackhole = 0;      ///< 0 = none
  std::uint32_t cache_size = 0;  ///< the scenario's `cache_size`; 0 = none (queue keeps capacity+1)
  bool has_distinct = false;     ///< the scenario has `distinct`: pour() gets its value
  /// What the bucket keys and distinct values are made of (the scenario's groupby and distinct
  /// expressions): a reload keeps the buckets only if it is unchanged. Not used otherwise.
  std::string keyed_by;
};

/// One overflow, handed to the sink. Views are valid only during on_overflow().
struct overflow {
  std::uint32_t scenario;        ///< index into the spec list
  std::string_view key;          ///< the partition key as given to pour()
  std::uint64_t events_count;    ///< CrowdSec Total_count: every event poured into the instance
  unix_nanos first;              ///< First_ts
  unix_nanos last;               ///< Last_ts
  unix_nanos at;                 ///< Ovflw_ts (event time)
  std::span<const event_payload* const> events; ///< the queued events, oldest first
  bool blackholed;               ///< discarded by blackhole: count it, do not alert
};

/// Receives overflows. Called synchronously from pour()/advance()/flush() on the shard's thread.
class overflow_sink {
 public:
  virtual ~overflow_sink() = default;
  virtual void on_overflow(const overflow& ov) = 0;
};

/// All bucket instances of one shard, for every scenario. Shard-owned: NOT thread-safe, no locks.
class bucket_set {
 public:
  /// Validates the specs and defines the counters (control plane: may allocate, throws
  /// std::invalid_argument on a bad spec). `expected_buckets` pre-sizes the instance table.
  explicit bucket_set(std::vector<bucket_spec> specs, std::size_t expected_buckets = 1024);
  ~bucket_set();
  bucket_set(const bucket_set&) = delete;
  bucket_set& operator=(const bucket_set&) = delete;

  /// Pours one event into scenario `scenario` (index into the specs) under partition `key` at
  /// event time `t`. `distinct` is the distinct value when the spec has_distinct (ignored
  /// otherwise). The payload is copied into a recycled slot when the instance queues it. May call
  /// sink.on_overflow synchronously (a due counter of the same key first, then this pour's).
  /// True when the event was poured as CrowdSec counts it in cs_bucket_poured_total: false for
  /// a trigger and for a value `distinct` already saw. The caller counts it, with the event's
  /// source labels. `check_distinct` false pours the event without the distinct check and
  /// without recording a value: CrowdSec's Uniq lets an event through when its distinct
  /// expression fails.
  bool pour(std::uint32_t scenario, std::string_view key, std::string_view distinct, unix_nanos t,
            const event_payload& payload, overflow_sink& sink, bool check_distinct = true) noexcept;

  /// Advances the shard's clock (watermark) to `now`: expires idle leaky instances (underflow),
  /// fires counters whose duration elapsed, forgets elapsed blackholes. Call with non-decreasing
  /// `now` (an older `now` is a no-op). Due items are processed in due-time order.
  void advance(unix_nanos now, overflow_sink& sink) noexcept;

  /// End of input: overflows every live counter (at = first + duration), drops every live leaky
  /// instance without overflow or underflow, and clears all state including blackholes.
  void flush(overflow_sink& sink) noexcept;

  /// A rule reload: the instances and blackhole windows of every scenario of `old` that this
  /// set's specs keep unchanged (the same name, bucket parameters and keyed_by) move into this set, which
  /// has none yet, with `old`'s clock; those of scenarios that changed or went stay in `old`, to
  /// go with it. As CrowdSec keeps its buckets across a reload, a brute force half counted is
  /// not forgotten, nor a blackhole lifted. Control plane: allocates.
  void adopt(bucket_set& old);

  /// Live bucket instances (all scenarios).
  [[nodiscard]] std::size_t live() const noexcept { return live_; }

  /// The specs, in index order.
  [[nodiscard]] const std::vector<bucket_spec>& specs() const noexcept { return specs_; }

 private:
  struct entry;
  struct scenario_rt;
  struct timer {
    unix_nanos due;              ///< first time at which the item must be processed
    std::uint32_t index;         ///< entry index
    std::uint32_t gen;           ///< entry generation when scheduled
  };

  [[nodiscard]] std::uint32_t find(std::uint32_t scenario, std::string_view key,
                                   std::uint64_t hash) const noexcept;
  std::uint32_t insert(std::uint32_t scenario, std::string_view key, std::uint64_t hash) noexcept;
  void erase(std::uint32_t index) noexcept;
  void grow() noexcept;

  void instantiate(entry& e, unix_nanos t) noexcept;
  void emit(entry& e, unix_nanos at, overflow_sink& sink) noexcept;
  void end_instance(std::uint32_t index, unix_nanos now) noexcept;
  [[nodiscard]] unix_nanos due_at(const entry& e) const noexcept;
  void schedule(std::uint32_t index) noexcept;
  void run_timers(unix_nanos now, bool flushing, overflow_sink& sink) noexcept;
  void pour_trigger(std::uint32_t scenario, std::string_view key, unix_nanos t,
                    const event_payload& payload, overflow_sink& sink) noexcept;
  void set_live(std::uint32_t scenario, int delta) noexcept;

  std::vector<bucket_spec> specs_;
  std::vector<scenario_rt> rt_;
  std::vector<entry> entries_;              ///< instance pool; recycled through free_
  std::vector<std::vector<std::uint32_t>> free_; ///< free entry indices, per scenario (reused
                                            ///< by the same scenario, so their buffers fit)
  std::vector<std::uint64_t> slots_;        ///< open addressing: (hash32 << 32) | (index + 1); 0 empty
  std::uint64_t mask_ = 0;
  std::size_t used_ = 0;                    ///< entries in the table (live or blackhole-only)
  std::size_t live_ = 0;
  std::vector<timer> timers_;               ///< min-heap on due; stale items skipped lazily
  std::vector<const event_payload*> scratch_; ///< overflow.events storage
  unix_nanos watermark_ = INT64_MIN;
};

} // namespace vigil::engine
