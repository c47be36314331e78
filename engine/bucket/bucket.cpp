#include "engine/bucket/bucket.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "engine/counters/counters.h"

namespace vigil::engine {

namespace {

constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();
constexpr unix_nanos never = std::numeric_limits<unix_nanos>::max();
constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

unix_nanos sat_add(unix_nanos a, unix_nanos b) noexcept {
  unix_nanos r = 0;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? never : std::numeric_limits<unix_nanos>::min();
  }
  return r;
}

std::int64_t sat_mul(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    return never;
  }
  return r;
}

std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept {
  std::uint64_t h = seed ^ (s.size() * 0x9E3779B97F4A7C15ULL);
  const char* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    h = std::rotl(h ^ mix(w), 27) * 0x9E3779B97F4A7C15ULL;
    p += 8;
    n -= 8;
  }
  std::uint64_t w = 0;
  if (n != 0) {
    std::memcpy(&w, p, n);
  }
  return mix(h ^ mix(w ^ (n << 56)));
}

} // namespace

// The values one instance has seen for `distinct`. Linear under a handful of values, then an
// open-addressed index. clear() keeps every buffer for the next instance.
class distinct_set {
 public:
  void clear() noexcept {
    n_ = 0;
    if (indexed_) {
      std::fill(slots_.begin(), slots_.end(), 0u);
      indexed_ = false;
    }
  }

  /// True if `v` is new (and records it), false if already seen.
  bool insert(std::string_view v) noexcept {
    const std::uint64_t h = hash_bytes(v, 0x51ed270b27a5f1c3ULL);
    if (!indexed_) {
      for (std::size_t k = 0; k < n_; ++k) {
        if (hashes_[k] == h && values_[k] == v) {
          return false;
        }
      }
      append(v, h);
      if (n_ > linear_max) {
        build_index();
      }
      return true;
    }
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    while (slots_[i] != 0) {
      const std::size_t k = slots_[i] - 1;
      if (hashes_[k] == h && values_[k] == v) {
        return false;
      }
      i = (i + 1) & mask;
    }
    append(v, h);
    if (n_ * 2 > slots_.size()) {
      build_index();
    } else {
      slots_[i] = static_cast<std::uint32_t>(n_);
    }
    return true;
  }

 private:
  static constexpr std::size_t linear_max = 8;

  void append(std::string_view v, std::uint64_t h) {
    if (n_ < values_.size()) {
      values_[n_].assign(v);
      hashes_[n_] = h;
    } else {
      values_.emplace_back(v);
      hashes_.push_back(h);
    }
    ++n_;
  }

  void build_index() {
    const std::size_t size = std::bit_ceil(std::max<std::size_t>(32, n_ * 4));
    slots_.assign(size, 0u);
    const std::size_t mask = size - 1;
    for (std::size_t k = 0; k < n_; ++k) {
      std::size_t i = hashes_[k] & mask;
      while (slots_[i] != 0) {
        i = (i + 1) & mask;
      }
      slots_[i] = static_cast<std::uint32_t>(k + 1);
    }
    indexed_ = true;
  }

  std::vector<std::string> values_;
  std::vector<std::uint64_t> hashes_;
  std::vector<std::uint32_t> slots_; // 0 empty, else value index + 1
  std::size_t n_ = 0;
  bool indexed_ = false;
};

// One (scenario, key): a live instance, or only the key's blackhole window ("dormant").
struct bucket_set::entry {
  std::uint64_t hash = 0;
  std::uint32_t scenario = 0;
  std::uint32_t gen = 0;          // bumped when the entry leaves the table: its timers go stale
  std::string key;
  bool in_table = false;
  bool live = false;
  bool has_blackhole = false;
  unix_nanos blackhole_until = 0; // overflows strictly before this are blackholed
  unix_nanos first = 0;
  unix_nanos last = 0;
  std::int64_t tokens = 0;        // nanoseconds of leak; one token = leakspeed
  unix_nanos tokens_at = 0;       // time of the last token update
  std::uint64_t count = 0;        // Total_count
  unix_nanos sched = never;       // due time of this entry's valid timer, never = none
  std::vector<event_payload> ring; // queue slots, recycled
  std::size_t head = 0;
  std::size_t size = 0;
  std::size_t limit = 0;          // max queued events (CrowdSec Queue L + 1)
  distinct_set distinct;
};

struct bucket_set::scenario_rt {
  counters::id instantiated;
  counters::id overflowed;
  counters::id underflowed;
  counters::id blackholed;
  counters::id gauge;
  std::int64_t live = 0;
  std::size_t queue_limit = 0;
  std::int64_t full_tokens = 0;   // capacity x leakspeed
  unix_nanos expiry = 0;          // leaky: (capacity+1) x leakspeed; counter: duration
};

bucket_set::bucket_set(std::vector<bucket_spec> specs, std::size_t expected_buckets)
    : specs_(std::move(specs)) {
  if (specs_.size() >= npos) {
    throw std::invalid_argument("bucket_set: too many scenarios");
  }
  counters::registry& reg = counters::registry::global();
  rt_.reserve(specs_.size());
  for (const bucket_spec& s : specs_) {
    scenario_rt rt{};
    const counters::label name{"name", s.name};
    rt.instantiated = reg.define("cs_bucket_instantiation_total", "Total buckets were instantiated.", {name});
    rt.overflowed = reg.define("cs_bucket_overflowed_total", "Total buckets overflowed.", {name});
    rt.underflowed = reg.define("cs_bucket_underflowed_total", "Total buckets underflowed.", {name});
    rt.blackholed = reg.define("vigil_bucket_blackholed_total",
                               "Overflows discarded by the scenario's blackhole.", {name});
    rt.gauge = reg.define("cs_buckets", "Number of buckets that currently exist.", {name},
                          counters::kind::gauge);
    if (s.blackhole < 0) {
      throw std::invalid_argument("scenario '" + s.name + "': negative blackhole");
    }
    switch (s.type) {
    case bucket_type::leaky: {
      if (s.capacity <= 0) {
        throw std::invalid_argument("scenario '" + s.name + "': invalid capacity '" +
                                    std::to_string(s.capacity) + "': must be > 0");
      }
      if (s.leakspeed <= 0) {
        throw std::invalid_argument("scenario '" + s.name + "': leakspeed is required");
      }
      std::int64_t l = s.capacity;
      if (s.cache_size > 0 && static_cast<std::int64_t>(s.cache_size) <= s.capacity) {
        l = s.cache_size;
      }
      rt.queue_limit = static_cast<std::size_t>(l) + 1;
      rt.full_tokens = sat_mul(s.capacity, s.leakspeed);
      rt.expiry = sat_mul(s.capacity + 1, s.leakspeed);
      break;
    }
    case bucket_type::counter:
      if (s.duration <= 0) {
        throw std::invalid_argument("scenario '" + s.name + "': counter needs a duration");
      }
      rt.queue_limit = s.cache_size > 0 ? static_cast<std::size_t>(s.cache_size) + 1 : unbounded;
      rt.expiry = s.duration;
      break;
    case bucket_type::trigger:
      rt.queue_limit = 1;
      break;
    }
    rt_.push_back(rt);
  }
  const std::size_t slots = std::bit_ceil(std::max<std::size_t>(16, expected_buckets * 2));
  slots_.assign(slots, 0);
  mask_ = slots - 1;
  entries_.reserve(expected_buckets);
  free_.resize(specs_.size());
  timers_.reserve(expected_buckets * 2);
  scratch_.reserve(64);
}

// The instances go with the set (a rule reload replaces it): its share of cs_buckets goes to 0,
// or the gauge would show buckets that no longer exist until each scenario pours again.
bucket_set::~bucket_set() {
  for (const scenario_rt& rt : rt_) {
    if (rt.live != 0) {
      counters::set(rt.gauge, 0);
    }
  }
}

// ---- the (scenario, key) table: linear probing, backward-shift deletion ------------------------

std::uint32_t bucket_set::find(std::uint32_t scenario, std::string_view key,
                               std::uint64_t hash) const noexcept {
  const auto h32 = static_cast<std::uint32_t>(hash);
  std::uint64_t i = h32 & mask_;
  while (true) {
    const std::uint64_t s = slots_[i];
    if (s == 0) {
      return npos;
    }
    if (static_cast<std::uint32_t>(s >> 32) == h32) {
      const auto index = static_cast<std::uint32_t>(s) - 1;
      const entry& e = entries_[index];
      if (e.scenario == scenario && e.key == key) {
        return index;
      }
    }
    i = (i + 1) & mask_;
  }
}

std::uint32_t bucket_set::insert(std::uint32_t scenario, std::string_view key,
                                 std::uint64_t hash) noexcept {
  if ((used_ + 1) * 2 > slots_.size()) {
    grow();
  }
  std::uint32_t index = 0;
  std::vector<std::uint32_t>& spare = free_[scenario];
  if (!spare.empty()) {
    index = spare.back();
    spare.pop_back();
  } else {
    index = static_cast<std::uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  entry& e = entries_[index];
  e.hash = hash;
  e.scenario = scenario;
  e.key.assign(key);
  e.in_table = true;
  e.live = false;
  e.has_blackhole = false;
  e.sched = never;
  const auto h32 = static_cast<std::uint32_t>(hash);
  std::uint64_t i = h32 & mask_;
  while (slots_[i] != 0) {
    i = (i + 1) & mask_;
  }
  slots_[i] = (static_cast<std::uint64_t>(h32) << 32) | (index + 1);
  ++used_;
  return index;
}

void bucket_set::erase(std::uint32_t index) noexcept {
  entry& e = entries_[index];
  const std::uint64_t want = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(e.hash)) << 32) |
                             (index + 1);
  std::uint64_t i = static_cast<std::uint32_t>(e.hash) & mask_;
  while (slots_[i] != want) {
    i = (i + 1) & mask_;
  }
  // Backward shift: pull later members of the probe run into the hole when allowed.
  std::uint64_t j = i;
  while (true) {
    j = (j + 1) & mask_;
    const std::uint64_t s = slots_[j];
    if (s == 0) {
      break;
    }
    const std::uint64_t home = (s >> 32) & mask_;
    if (((j - home) & mask_) >= ((j - i) & mask_)) {
      slots_[i] = s;
      i = j;
    }
  }
  slots_[i] = 0;
  --used_;
  e.in_table = false;
  e.live = false;
  e.has_blackhole = false;
  e.sched = never;
  ++e.gen;
  free_[e.scenario].push_back(index);
}

void bucket_set::grow() noexcept {
  std::vector<std::uint64_t> old;
  old.swap(slots_);
  slots_.assign(old.size() * 2, 0);
  mask_ = slots_.size() - 1;
  for (const std::uint64_t s : old) {
    if (s == 0) {
      continue;
    }
    std::uint64_t i = (s >> 32) & mask_;
    while (slots_[i] != 0) {
      i = (i + 1) & mask_;
    }
    slots_[i] = s;
  }
}

// ---- instances ----------------------------------------------------------------------------------

void bucket_set::set_live(std::uint32_t scenario, int delta) noexcept {
  scenario_rt& rt = rt_[scenario];
  rt.live += delta;
  live_ = static_cast<std::size_t>(static_cast<std::int64_t>(live_) + delta);
  counters::set(rt.gauge, static_cast<std::uint64_t>(rt.live));
}

void bucket_set::instantiate(entry& e, unix_nanos t) noexcept {
  const scenario_rt& rt = rt_[e.scenario];
  e.live = true;
  e.count = 0;
  e.first = t;
  e.last = t;
  e.tokens = rt.full_tokens; // rate.Limiter starts full
  e.tokens_at = t;
  e.head = 0;
  e.size = 0;
  e.limit = rt.queue_limit; // the ring grows to it as events come (queue_push), not before
  if (specs_[e.scenario].has_distinct) {
    e.distinct.clear();
  }
  counters::add(rt.instantiated);
  set_live(e.scenario, +1);
}

namespace {

void queue_push(std::vector<event_payload>& ring, std::size_t& head, std::size_t& size,
                std::size_t limit, const event_payload& p) {
  if (size == limit) { // CrowdSec Queue.Add: drop the oldest beyond L+1
    head = head + 1 == ring.size() ? 0 : head + 1;
    --size;
  }
  if (size == ring.size()) {
    // Full below its limit: double, up to the limit. Sizing the ring to the limit when the
    // bucket was created cost a scenario of capacity 100,000 about 5 MB for every key it saw.
    // A recycled instance keeps its ring, so a warm set does not allocate here.
    std::rotate(ring.begin(), ring.begin() + static_cast<std::ptrdiff_t>(head), ring.end());
    head = 0;
    ring.resize(std::min(limit, std::max<std::size_t>(8, ring.size() * 2)));
  }
  std::size_t slot = head + size;
  if (slot >= ring.size()) {
    slot -= ring.size();
  }
  ring[slot].assign(p);
  ++size;
}

} // namespace

void bucket_set::emit(entry& e, unix_nanos at, overflow_sink& sink) noexcept {
  const bucket_spec& spec = specs_[e.scenario];
  const scenario_rt& rt = rt_[e.scenario];
  const bool blackholed = e.has_blackhole && e.blackhole_until > at;
  if (!blackholed && spec.blackhole > 0) {
    e.has_blackhole = true;
    e.blackhole_until = sat_add(at, spec.blackhole);
  }
  counters::add(rt.overflowed);
  if (blackholed) {
    counters::add(rt.blackholed);
  }
  scratch_.clear();
  std::size_t slot = e.head;
  for (std::size_t k = 0; k < e.size; ++k) {
    scratch_.push_back(&e.ring[slot]);
    slot = slot + 1 == e.ring.size() ? 0 : slot + 1;
  }
  const overflow ov{
      .scenario = e.scenario,
      .key = e.key,
      .events_count = e.count,
      .first = e.first,
      .last = e.last,
      .at = at,
      .events = std::span<const event_payload* const>(scratch_.data(), scratch_.size()),
      .blackholed = blackholed,
  };
  sink.on_overflow(ov);
}

void bucket_set::end_instance(std::uint32_t index, unix_nanos now) noexcept {
  entry& e = entries_[index];
  if (e.live) {
    e.live = false;
    set_live(e.scenario, -1);
  }
  if (e.has_blackhole && e.blackhole_until > now) {
    schedule(index); // keep the key's blackhole window
  } else {
    erase(index);
  }
}

unix_nanos bucket_set::due_at(const entry& e) const noexcept {
  if (!e.live) {
    return e.has_blackhole ? e.blackhole_until : std::numeric_limits<unix_nanos>::min();
  }
  const unix_nanos base = specs_[e.scenario].type == bucket_type::counter ? e.first : e.last;
  // Due strictly after base + expiry.
  return sat_add(sat_add(base, rt_[e.scenario].expiry), 1);
}

void bucket_set::schedule(std::uint32_t index) noexcept {
  entry& e = entries_[index];
  const unix_nanos d = due_at(e);
  if (d < e.sched) {
    e.sched = d;
    timers_.push_back(timer{d, index, e.gen});
    std::push_heap(timers_.begin(), timers_.end(),
                   [](const timer& a, const timer& b) { return a.due > b.due; });
  }
}

void bucket_set::run_timers(unix_nanos now, bool flushing, overflow_sink& sink) noexcept {
  const auto later = [](const timer& a, const timer& b) { return a.due > b.due; };
  while (!timers_.empty() && (flushing || timers_.front().due <= now)) {
    std::pop_heap(timers_.begin(), timers_.end(), later);
    const timer item = timers_.back();
    timers_.pop_back();
    entry& e = entries_[item.index];
    if (!e.in_table || e.gen != item.gen || e.sched != item.due) {
      continue; // stale
    }
    e.sched = never;
    if (!flushing && due_at(e) > now) {
      schedule(item.index); // the instance was poured since: wait for its new deadline
      continue;
    }
    if (e.live) {
      const bucket_spec& spec = specs_[e.scenario];
      if (spec.type == bucket_type::counter) {
        emit(e, sat_add(e.first, spec.duration), sink);
      } else if (!flushing) {
        counters::add(rt_[e.scenario].underflowed);
      }
      end_instance(item.index, flushing ? never : now);
    } else {
      erase(item.index);
    }
  }
}

// ---- public -------------------------------------------------------------------------------------

void bucket_set::pour_trigger(std::uint32_t scenario, std::string_view key, unix_nanos t,
                              const event_payload& payload, overflow_sink& sink) noexcept {
  const bucket_spec& spec = specs_[scenario];
  const scenario_rt& rt = rt_[scenario];
  counters::add(rt.instantiated);
  counters::add(rt.overflowed);
  bool blackholed = false;
  if (spec.blackhole > 0) {
    const std::uint64_t h = hash_bytes(key, scenario);
    std::uint32_t index = find(scenario, key, h);
    if (index != npos && entries_[index].has_blackhole && entries_[index].blackhole_until > t) {
      blackholed = true;
      counters::add(rt.blackholed);
    } else {
      if (index == npos) {
        index = insert(scenario, key, h);
      }
      entries_[index].has_blackhole = true;
      entries_[index].blackhole_until = sat_add(t, spec.blackhole);
      schedule(index);
    }
  }
  const event_payload* one = &payload;
  const overflow ov{
      .scenario = scenario,
      .key = key,
      .events_count = 1,
      .first = t,
      .last = t,
      .at = t,
      .events = std::span<const event_payload* const>(&one, 1),
      .blackholed = blackholed,
  };
  sink.on_overflow(ov);
}

bool bucket_set::pour(std::uint32_t scenario, std::string_view key, std::string_view distinct,
                      unix_nanos t, const event_payload& payload, overflow_sink& sink, bool check_distinct) noexcept {
  const bucket_spec& spec = specs_[scenario];
  if (spec.type == bucket_type::trigger) {
    pour_trigger(scenario, key, t, payload, sink);
    return false;
  }
  const scenario_rt& rt = rt_[scenario];
  const std::uint64_t h = hash_bytes(key, scenario);
  std::uint32_t index = find(scenario, key, h);
  if (index == npos) {
    index = insert(scenario, key, h);
  }
  entry& e = entries_[index];
  if (e.live && t >= due_at(e)) {
    // Idle past its deadline (the watermark has not caught up yet): end it as advance() would.
    if (spec.type == bucket_type::counter) {
      emit(e, sat_add(e.first, spec.duration), sink);
    } else {
      counters::add(rt.underflowed);
    }
    e.live = false;
    set_live(scenario, -1);
  }
  if (!e.live) {
    instantiate(e, t);
  }
  if (spec.has_distinct && check_distinct && !e.distinct.insert(distinct)) {
    return false; // already seen by this instance: ignored, not poured
  }
  const unix_nanos tt = e.count == 0 ? t : std::max(t, e.last); // never go back in time
  ++e.count;
  if (e.count == 1) {
    e.first = tt;
  }
  e.last = tt;
  queue_push(e.ring, e.head, e.size, e.limit, payload);
  if (spec.type == bucket_type::leaky) {
    // rate.Limiter.Allow(): refill one token per leakspeed up to capacity, then take one.
    const std::int64_t refill = sat_add(e.tokens, tt - e.tokens_at);
    e.tokens = std::min(refill, rt.full_tokens);
    e.tokens_at = tt;
    if (e.tokens >= spec.leakspeed) {
      e.tokens -= spec.leakspeed;
    } else {
      emit(e, tt, sink);
      end_instance(index, tt);
      return true;
    }
  }
  schedule(index);
  return true;
}

void bucket_set::advance(unix_nanos now, overflow_sink& sink) noexcept {
  if (now <= watermark_) {
    return;
  }
  watermark_ = now;
  run_timers(now, false, sink);
}

void bucket_set::adopt(bucket_set& old) {
  const auto same = [](const bucket_spec& a, const bucket_spec& b) {
    return a.name == b.name && a.type == b.type && a.capacity == b.capacity && a.leakspeed == b.leakspeed &&
           a.duration == b.duration && a.blackhole == b.blackhole && a.cache_size == b.cache_size &&
           a.has_distinct == b.has_distinct && a.keyed_by == b.keyed_by;
  };
  std::vector<std::uint32_t> to(old.specs_.size(), npos);
  for (std::uint32_t i = 0; i < old.specs_.size(); ++i) {
    for (std::uint32_t j = 0; j < specs_.size(); ++j) {
      if (same(old.specs_[i], specs_[j])) {
        to[i] = j;
        break;
      }
    }
  }
  watermark_ = std::max(watermark_, old.watermark_);
  for (entry& e : old.entries_) {
    if (!e.in_table || to[e.scenario] == npos) {
      continue;
    }
    const std::uint32_t s = to[e.scenario];
    const std::uint32_t index = insert(s, e.key, hash_bytes(e.key, s));
    entry& n = entries_[index];
    n.live = e.live;
    n.has_blackhole = e.has_blackhole;
    n.blackhole_until = e.blackhole_until;
    n.first = e.first;
    n.last = e.last;
    n.tokens = e.tokens;
    n.tokens_at = e.tokens_at;
    n.count = e.count;
    n.ring.swap(e.ring);
    n.head = e.head;
    n.size = e.size;
    n.limit = e.limit;
    std::swap(n.distinct, e.distinct);
    if (n.live) {
      set_live(s, +1);
    }
    schedule(index);
  }
  // What moved is this set's share of cs_buckets now: `old` must not zero it when it goes.
  for (std::uint32_t i = 0; i < old.specs_.size(); ++i) {
    if (to[i] != npos) {
      old.rt_[i].live = 0;
    }
  }
}

void bucket_set::flush(overflow_sink& sink) noexcept {
  run_timers(never, true, sink);
  // Every table entry had a valid timer; sweep anyway so nothing survives a flush.
  for (std::uint32_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].in_table) {
      entry& e = entries_[i];
      if (e.live && specs_[e.scenario].type == bucket_type::counter) {
        // A counter whose end lies past the clock's range (first + duration over 2262) never had
        // a timer: the flush still ends it with its alert, as it ends the others.
        emit(e, sat_add(e.first, specs_[e.scenario].duration), sink);
      }
      if (entries_[i].live) {
        entries_[i].live = false;
        set_live(entries_[i].scenario, -1);
      }
      erase(i);
    }
  }
  timers_.clear();
}

} // namespace vigil::engine
