#include "engine/pipeline/pipeline.h"
#include "engine/util/warn.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <pthread.h>
#include <time.h>

#include <concurrentqueue/blockingconcurrentqueue.h>

#include "engine/bucket/bucket.h"
#include "engine/counters/counters.h"
#include "engine/util/key_counts.h"
#include "rules/scenario/event_env.h"

namespace vigil::pipeline {

namespace {
// CPU time (user and system) the calling thread has used so far, in seconds.
double thread_cpu_seconds() noexcept {
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
    return 0.0;
  }
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// FNV-1a, fed incrementally so shard_of(cluster, key) hashes exactly the bytes of the bucket key
// "<cluster>\0<key>" the worker builds.
struct fnv1a {
  std::uint64_t h = 1469598103934665603ULL;
  void add(std::string_view s) noexcept {
    for (const char c : s) {
      h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    }
  }
  void add_byte(unsigned char c) noexcept { h = (h ^ c) * 1099511628211ULL; }
};

// What workers need of one loaded rule set. Replaced as a whole by reload().
struct rule_generation {
  std::shared_ptr<const rules::ruleset> rules;
  std::vector<engine::alert_origin> origins;
  std::vector<std::uint8_t> stateless; // trigger without blackhole: no bucket state to own
  std::uint64_t id = 0;
};

std::shared_ptr<const rule_generation> make_generation(std::shared_ptr<const rules::ruleset> rs, std::uint64_t id) {
  auto g = std::make_shared<rule_generation>();
  g->rules = std::move(rs);
  g->id = id;
  for (const rules::scenario& sc : g->rules->scenarios) {
    g->origins.push_back(engine::alert_origin{sc.name, sc.labels_json, sc.leakspeed_text, sc.scope_type,
                                              sc.bucket.capacity, sc.remediation, sc.reprocess});
    g->stateless.push_back(sc.bucket.type == engine::bucket_type::trigger && sc.bucket.blackhole == 0 ? 1 : 0);
  }
  return g;
}

// A pour copied into a batch: for another worker's buckets, or for this worker's own when an
// earlier chunk is not applied here yet (pipeline header).
struct batched_pour {
  std::uint64_t generation = 0; ///< a pour from before a reload is dropped (scenario indexes changed)
  std::uint32_t scenario = 0;
  std::string key;
  std::string distinct;
  bool check_distinct = true; ///< false: the distinct expression failed on the event (poured unchecked)
  engine::unix_nanos time = 0;
  engine::event_payload payload;
  counters::id poured = 0; ///< cs_bucket_poured_total{source,type,name} of the event's source (max: none)
};

// Objects done with, kept for reuse (their buffers with them) from any thread to any thread, at
// most `Max`; past that they are freed.
template <class T, std::size_t Max>
class spares {
 public:
  spares() = default;
  spares(const spares&) = delete;
  spares& operator=(const spares&) = delete;
  ~spares() {
    T* t = nullptr;
    while (queue_.try_dequeue(t)) {
      delete t;
    }
  }
  void put(std::unique_ptr<T> t) {
    if (queue_.size_approx() < Max && queue_.enqueue(t.get())) {
      t.release();
    }
  }
  /// A spare one, or a new one.
  std::unique_ptr<T> take() {
    T* t = nullptr;
    return std::unique_ptr<T>(queue_.try_dequeue(t) ? t : new T());
  }

 private:
  moodycamel::ConcurrentQueue<T*> queue_;
};

using pour_batch = std::vector<std::unique_ptr<batched_pour>>;

struct work_item {
  enum class kind : std::uint8_t { docs, batch, flush, reload, stop };
  kind k = kind::docs;
  std::uint64_t seq = 0; ///< docs, batch: the chunk's number (pipeline header)
  std::shared_ptr<input_chunk> chunk;
  std::vector<document> docs;
  pour_batch pours;                ///< batch: the chunk's pours into the receiver's buckets
  engine::unix_nanos max_time = 0; ///< batch: the latest time of the chunk's matched events
  std::shared_ptr<const rule_generation> generation; ///< reload
};

struct emit_item {
  std::unique_ptr<engine::alert> alert;
  std::string error;
  bool stop = false;
  std::uint32_t scenario = 0; ///< of the alert
};

// Threads that find their queue empty spin briefly, then sleep on the semaphore: on a machine
// with as many threads as cores, a long spin (moodycamel's default is 10,000) steals the CPU from
// the thread that has work.
struct queue_traits : moodycamel::ConcurrentQueueDefaultTraits {
  static const int MAX_SEMA_SPINS = 64;
};
template <class T>
using blocking_queue = moodycamel::BlockingConcurrentQueue<T, queue_traits>;

engine::unix_nanos wall_now() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct pipeline_counters {
  counters::id forwarded, alerts, blackholed, groupby_errors, no_source, stale_pours, decisions, profile_errors,
      scope_errors;
  static const pipeline_counters& get() {
    static const pipeline_counters c = [] {
      auto& r = counters::registry::global();
      return pipeline_counters{
          r.define("vigil_pipeline_pours_forwarded_total", "Pours sent to the shard that owns their bucket"),
          r.define("vigil_alerts_total", "Alerts produced by bucket overflows"),
          r.define("vigil_overflows_blackholed_total", "Overflows discarded by a scenario's blackhole"),
          r.define("vigil_groupby_errors_total", "groupby/distinct expressions that failed or gave a non-string"),
          r.define("vigil_alerts_without_source_total",
                   "Alerts without a value: source_ip missing or not an IP, or no usable scope value "
                   "(emitted anyway, no decision possible)"),
          r.define("vigil_pipeline_stale_pours_total",
                   "Pours decoded under the rules before a reload and due after it: dropped with the old buckets"),
          r.define("vigil_decisions_total", "Decisions taken by the profiles"),
          r.define("vigil_profile_errors_total", "Profile filter or duration_expr evaluation errors"),
          r.define("vigil_scope_errors_total",
                   "Range or custom scope expressions that failed or gave a non-string (the alert has no value)"),
      };
    }();
    return c;
  }
};

} // namespace

std::shared_ptr<input_chunk> make_chunk(std::size_t capacity) {
  auto c = std::make_shared<input_chunk>();
  c->data.assign(capacity + simdjson::SIMDJSON_PADDING, '\0');
  return c;
}

struct chunk_pool::state {
  static constexpr std::size_t max_pooled = 64;
  moodycamel::ConcurrentQueue<input_chunk*> returned; // released on any thread, oldest first
  std::vector<input_chunk*> ready; // the getter's thread only: drained from `returned`, newest last
  std::atomic<std::size_t> pooled{0}; // in `returned` and `ready`
  ~state() {
    input_chunk* c = nullptr;
    while (returned.try_dequeue(c)) {
      delete c;
    }
    for (input_chunk* r : ready) {
      delete r;
    }
  }
};

chunk_pool::chunk_pool() : state_(std::make_shared<state>()) {}
chunk_pool::~chunk_pool() = default;

std::shared_ptr<input_chunk> chunk_pool::get(std::size_t capacity) {
  // The chunk released last comes first (among those one thread released; the queue does not
  // order releases across threads): its buffers are the likeliest still in the caches. A FIFO
  // would cycle through every pooled chunk, all cold, whenever the pool is not empty (a webhook
  // below saturation keeps dozens there).
  state& st = *state_;
  input_chunk* c = nullptr;
  while (st.returned.try_dequeue(c)) {
    st.ready.push_back(c);
  }
  if (!st.ready.empty()) {
    c = st.ready.back();
    st.ready.pop_back();
    st.pooled.fetch_sub(1, std::memory_order_relaxed);
  } else {
    c = new input_chunk();
  }
  // Rounded up to 64 KiB: producers ask for a little more or less each time (a file reader's
  // carried-over partial line varies), and growing a recycled buffer by a few bytes would
  // reallocate it and fault all its pages in again.
  constexpr std::size_t granule = 64 * 1024;
  const std::size_t want = (capacity + simdjson::SIMDJSON_PADDING + granule - 1) / granule * granule;
  if (c->data.size() < capacity + simdjson::SIMDJSON_PADDING) {
    c->data.resize(want);
  }
  c->size = 0;
  c->events.clear();
  // The deleter holds the pool state, so a chunk outliving the pool object is still freed.
  std::weak_ptr<state> home = state_;
  return std::shared_ptr<input_chunk>(c, [home](input_chunk* chunk) {
    if (auto st = home.lock(); st && st->pooled.fetch_add(1, std::memory_order_relaxed) < state::max_pooled) {
      // Keep the buffers of ordinary batches; one exceptionally large body must not stay resident.
      constexpr std::size_t keep_bytes = 8u << 20;
      if (chunk->data.capacity() > keep_bytes) {
        std::string().swap(chunk->data);
      }
      if (chunk->parsed && chunk->parsed->doc.capacity() > keep_bytes) {
        chunk->parsed.reset();
      }
      if (chunk->events.capacity() * sizeof(engine::audit_event) > keep_bytes) {
        std::vector<engine::audit_event>().swap(chunk->events);
      }
      st->returned.enqueue(chunk);
    } else {
      if (st) {
        st->pooled.fetch_sub(1, std::memory_order_relaxed);
      }
      delete chunk;
    }
  });
}

void admission::acquire(std::int64_t n) noexcept {
  while (in_flight_.load(std::memory_order_seq_cst) > limit_) {
    waiting_.store(1, std::memory_order_seq_cst);
    // Raised, then re-read: a release() that came between the two loads may not have seen the
    // flag. Both sides are sequentially consistent, so one of them sees the other.
    if (in_flight_.load(std::memory_order_seq_cst) <= limit_) {
      break;
    }
    waiting_.wait(1, std::memory_order_seq_cst);
  }
  in_flight_.fetch_add(n, std::memory_order_seq_cst);
}

bool admission::try_acquire(std::int64_t n) noexcept {
  const std::int64_t before = in_flight_.fetch_add(n, std::memory_order_seq_cst);
  if (before + n > limit_ && before > 0) {
    // Taken back through release(): while counted, the batch may have kept a worker's release()
    // above the limit, so this may be the decrease that makes room for a sleeping producer.
    release(n);
    return false;
  }
  return true;
}

void admission::release(std::int64_t n) noexcept {
  const std::int64_t left = in_flight_.fetch_sub(n, std::memory_order_seq_cst) - n;
  if (left <= limit_ && waiting_.load(std::memory_order_seq_cst) != 0) {
    waiting_.store(0, std::memory_order_seq_cst);
    waiting_.notify_all();
  }
}

class worker;

// CrowdSec's parser counters for one source label and type.
struct parser_ids {
  counters::id hits, ok, ko;
};
parser_ids parser_counters(std::string_view label, std::string_view type) {
  auto& r = counters::registry::global();
  const counters::label src{"source", label}, t{"type", type};
  const counters::label acquis{"acquis_type", "k8s-audit"};
  return parser_ids{
      r.define("cs_parser_hits_total", "Total events entered the parser.", {src, t}),
      r.define("cs_parser_hits_ok_total", "Total events were successfully parsed.", {src, t, acquis}),
      r.define("cs_parser_hits_ko_total", "Total events were unsuccessfully parsed.", {src, t, acquis}),
  };
}

// The `source` label of the per-source counters (cs_parser_hits_*, cs_bucket_poured_total): a
// file path or a webhook client's address. The first max_source_labels distinct sources keep
// their own; later ones share other_source_label, so a webhook open to many clients cannot grow
// the metrics without bound. Shared by the workers; asked only when a worker's chunk comes from
// another source than its previous one.
class source_labels {
 public:
  static constexpr std::size_t max_source_labels = 1000;
  static constexpr std::string_view other_source_label = "(other)";

  std::string_view label(std::string_view source) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = known_.find(source); it != known_.end()) {
      return *it;
    }
    if (known_.size() < max_source_labels) {
      return *known_.emplace(source).first;
    }
    if (!folded_) {
      folded_ = true;
      util::warn("more than " + std::to_string(max_source_labels) + " sources: the metrics of new ones are labelled source=\"" +
                 std::string(other_source_label) + "\"");
    }
    return other_source_label;
  }

 private:
  struct hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::mutex mu_;
  std::unordered_set<std::string, hash, std::equal_to<>> known_; // nodes are stable: views stay valid
  bool folded_ = false;
};

struct pipeline::impl {
  std::shared_ptr<const rules::ruleset> rules;
  source_labels sources;
  options opts;
  output_handler& out;
  std::vector<std::unique_ptr<worker>> workers;
  blocking_queue<emit_item> emit_q;
  std::thread emitter;
  double emitter_cpu_seconds = 0.0; ///< the emitter thread's CPU time, set when it stops
  admission admit;
  std::atomic<std::uint64_t> next_seq{0};       ///< the next chunk's number
  std::atomic<std::int64_t> batches_pending{0}; ///< pour batches sent or kept, not yet applied
  std::atomic<unsigned> flushed{0};
  std::shared_ptr<const rule_generation> generation; // the newest; workers switch in-band
  struct scenario_alerts {
    std::uint64_t count = 0;
    counters::id counter = 0; ///< cs_alerts{reason}
  };
  std::map<std::string, scenario_alerts, std::less<>> alerts_by_scenario; // emitter thread only
  // Alerts the emitter is done with, for the workers to fill again (make_alert reuses their
  // buffers): an alert is built on a worker and freed on the emitter, and with glibc's arenas
  // such frees contend with the worker's own allocations.
  spares<engine::alert, 1024> spare_alerts;
  // Batched pours the owning worker is done with, for any worker to fill again (their strings
  // and payload keep their buffers): with several workers most pours are batched, and each would
  // otherwise cost four allocations.
  spares<batched_pour, 4096> spare_pours;

  void recycle(std::unique_ptr<engine::alert> a) {
    // The emitter's own allocations are freed here, on the emitter.
    a->decisions.clear();
    a->notifications.clear();
    spare_alerts.put(std::move(a));
  }
  void recycle(std::unique_ptr<batched_pour> fp) {
    // A holder that carried an outsized value is freed: kept, it would hold that much for the
    // life of the process.
    constexpr std::size_t keep_bytes = 16 * 1024;
    if (fp->key.capacity() + fp->distinct.capacity() + fp->payload.meta.capacity_bytes() <= keep_bytes) {
      spare_pours.put(std::move(fp));
    }
  }
  bool finished = false;
  struct {
    counters::histogram parsing{"cs_parsing_time_seconds", "Time spent parsing a line (sampled: 1 event in 64)",
                                {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01}};
    counters::histogram pour{"cs_bucket_pour_seconds", "Time spent pouring an event to buckets (sampled: 1 event in 64)",
                             {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05}};
  } timings;
  counters::id emit_depth = counters::registry::global().define(
      "vigil_emitter_queue_depth", "Alerts and errors waiting for the emitter (at its last dequeue)", {},
      counters::kind::gauge);

  impl(std::shared_ptr<const rules::ruleset> r, options o, output_handler& h)
      : rules(std::move(r)), opts(o), out(h), admit(o.max_in_flight) {}

  unsigned shard_of(std::string_view cluster, std::string_view key) const noexcept {
    fnv1a h;
    h.add(cluster);
    h.add_byte(0);
    h.add(key);
    return static_cast<unsigned>(h.h % workers.size());
  }

  // Numbers an admitted chunk and queues it to the worker whose turn it is.
  void enqueue_docs(const std::shared_ptr<input_chunk>& chunk, std::vector<document> docs);

  // Counts an alert of `scenario`, in the totals and in cs_alerts{reason} (defined on the
  // scenario's first alert).
  void count_alert(const std::string& scenario) {
    auto it = alerts_by_scenario.find(scenario);
    if (it == alerts_by_scenario.end()) {
      const counters::id id =
          counters::registry::global().define("cs_alerts", "Total alerts by scenario", {{"reason", scenario}});
      it = alerts_by_scenario.emplace(scenario, scenario_alerts{0, id}).first;
    }
    ++it->second.count;
    counters::add(it->second.counter);
  }

  void run_emitter() {
    const auto& c = pipeline_counters::get();
    std::vector<emit_item> items(256);
    bool stopping = false;
    while (true) {
      std::size_t n;
      if (stopping) {
        n = emit_q.try_dequeue_bulk(items.begin(), items.size());
        if (n == 0) {
          out.on_idle();
          emitter_cpu_seconds = thread_cpu_seconds();
          return; // every producer has exited: nothing can arrive any more
        }
      } else {
        n = emit_q.wait_dequeue_bulk_timed(items.begin(), items.size(), emitter_idle);
        if (n == 0) {
          out.on_idle();
          continue;
        }
      }
      counters::set(emit_depth, emit_q.size_approx());
      for (std::size_t i = 0; i < n; ++i) {
        emit_item& item = items[i];
        if (item.stop) {
          stopping = true;
        } else if (item.alert) {
          counters::add(c.alerts);
          count_alert(item.alert->scenario);
          if (opts.profiles) {
            // Decisions expire on event time in replay (deterministic), on wall time live.
            const engine::unix_nanos now = opts.live ? wall_now() : item.alert->stop_at;
            rules::profile_outcome o = opts.profiles->evaluate(*item.alert, now);
            item.alert->decisions = std::move(o.decisions);
            item.alert->notifications = std::move(o.notifications);
            counters::add(c.profile_errors, o.errors);
            counters::add(c.decisions, item.alert->decisions.size());
          }
          out.on_alert(*item.alert);
          recycle(std::move(item.alert));
        } else {
          out.on_error(item.error);
        }
        item = emit_item{};
      }
      out.on_batch_end();
    }
  }
};

class worker final : public engine::event_sink, public engine::overflow_sink {
 public:
  worker(pipeline::impl& p, unsigned index)
      : p_(p), index_(index) {
    auto& r = counters::registry::global();
    const std::string w = std::to_string(index);
    ids_.depth = r.define("vigil_worker_inbox_depth", "Work items waiting in a worker's inbox (at its last dequeue)",
                          {{"worker", w}}, counters::kind::gauge);
    ids_.high_water = r.define("vigil_worker_inbox_high_water", "Most work items ever seen waiting in a worker's inbox",
                               {{"worker", w}}, counters::kind::gauge);
    ids_.events = r.define("vigil_worker_events_total", "Audit events a worker decoded and matched", {{"worker", w}});
    ids_.pours = r.define("vigil_worker_pours_total", "Pours into the buckets a worker owns (own and forwarded)",
                          {{"worker", w}});
    switch_to(p.generation);
    key_.reserve(256);
    distinct_.reserve(256);
    thread_ = std::thread([this] {
      const std::string name = "vigil-worker-" + std::to_string(index_);
      pthread_setname_np(pthread_self(), name.c_str());
      run();
    });
  }

  // moodycamel fails only when it cannot allocate a block. A lost chunk or batch would stop every
  // owner at its number for good, so that is fatal, like any other allocation failure.
  void enqueue(work_item&& item) {
    if (!inbox_.enqueue(std::move(item))) {
      std::fprintf(stderr, "vigil: out of memory queueing work for worker %u\n", index_); // no allocation here
      std::abort();
    }
  }
  void join() { thread_.join(); }

  engine::reader_stats reader_stats() const { return reader_.stats(); }

  // Events by verb and by resource, for the replay summary (engine/util/key_counts.h).
  engine::key_counts by_verb, by_resource;
  std::uint64_t forwarded = 0, blackholed = 0;
  double cpu_seconds = 0.0; ///< this worker thread's CPU time, set when it stops
  std::vector<std::uint64_t> eval_errors() const {
    std::vector<std::uint64_t> v;
    for (const auto& ctx : contexts_) {
      const auto& stats = ctx->stats();
      v.resize(stats.size());
      for (std::size_t i = 0; i < stats.size(); ++i) {
        v[i] += stats[i].errors;
      }
    }
    return v;
  }

 private:
  // Takes a rule set into use. Bucket state does not carry over: scenarios may have changed.
  void switch_to(std::shared_ptr<const rule_generation> g) {
    gen_ = std::move(g);
    sources_.clear();
    src_ = nullptr;
    contexts_.clear();
    for (std::size_t i = 0; i < gen_->rules->matchers(); ++i) {
      contexts_.push_back(std::make_unique<rules::matcher::context>(gen_->rules->matcher_at(i)));
    }
    use_matcher(0);
    auto next = std::make_unique<engine::bucket_set>(specs(*gen_->rules));
    if (buckets_) {
      next->adopt(*buckets_); // the buckets of scenarios the reload left as they were
    }
    buckets_ = std::move(next);
    matched_.reserve(gen_->rules->scenarios.size());
  }

  // The matcher for the current chunk's events (one specialized for its datasource_type, if
  // the rules have one) and its context.
  void use_matcher(std::size_t index) {
    matcher_ = &gen_->rules->matcher_at(index);
    ctx_ = contexts_[index].get();
  }

  static std::vector<engine::bucket_spec> specs(const rules::ruleset& rs) {
    std::vector<engine::bucket_spec> v;
    for (const auto& sc : rs.scenarios) {
      v.push_back(sc.bucket);
    }
    return v;
  }

  void run() {
    work_item item;
    while (true) {
      if (p_.opts.live) {
        if (!inbox_.wait_dequeue_timed(item, std::chrono::seconds(1))) {
          idle_tick();
          continue;
        }
      } else {
        inbox_.wait_dequeue(item);
      }
      // The inbox gauges: its depth at each dequeue, and the most ever seen (back-pressure shows
      // here before it shows as 429s).
      const std::size_t depth = inbox_.size_approx();
      counters::set(ids_.depth, depth);
      if (depth > high_water_) {
        high_water_ = depth;
        counters::set(ids_.high_water, depth);
      }
      switch (item.k) {
        case work_item::kind::docs:
          process(item.seq, *item.chunk, item.docs);
          publish();
          // After the chunk's batches are counted (in process): finish() waits for the documents
          // first, then for the batches.
          p_.admit.release(static_cast<std::int64_t>(item.docs.size()));
          break;
        case work_item::kind::batch:
          keep(item.seq, std::move(item.pours), item.max_time);
          apply_ready();
          break;
        case work_item::kind::reload:
          switch_to(item.generation);
          apply_ready(); // batches of the new rule set may be waiting for it
          break;
        case work_item::kind::flush:
          buckets_->flush(*this);
          publish();
          p_.flushed.fetch_add(1, std::memory_order_acq_rel);
          break;
        case work_item::kind::stop:
          cpu_seconds = thread_cpu_seconds();
          return;
      }
      item = work_item{};
    }
  }

  // Hands the alerts and errors of a batch to the emitter at once: one wake-up per batch, not
  // one per alert.
  void publish() {
    if (!pending_.empty()) {
      p_.emit_q.enqueue_bulk(std::make_move_iterator(pending_.begin()), pending_.size());
      pending_.clear();
    }
  }

  // Live mode, nothing to do for a second: event time has not moved, but wall time has, so idle
  // buckets must still expire. The watermark moves by the wall time elapsed since the last event.
  void idle_tick() {
    // Only once every chunk numbered so far is applied here: a chunk still being decoded
    // elsewhere may bring pours older than the wall clock says.
    if (next_applied_ != p_.next_seq.load(std::memory_order_relaxed)) {
      return;
    }
    const engine::unix_nanos now = wall_now();
    if (last_activity_wall_ != 0 && now > last_activity_wall_) {
      const engine::unix_nanos w = watermark_at_activity_ + (now - last_activity_wall_);
      if (w > watermark_) {
        watermark_ = w;
        buckets_->advance(watermark_, *this);
        publish();
      }
    }
  }

  // The counters labelled by source (file path or webhook client, bounded by impl::sources) and
  // type: CrowdSec's parser counters, and cs_bucket_poured_total{source,type,name} with one id
  // per scenario, defined on the source's first pour into it. Looked up when a chunk comes from
  // another source than the last, not per event; a reload starts over (scenario indexes change).
  struct source_ids {
    std::string_view label;
    parser_ids parser;
    std::vector<counters::id> poured; ///< by scenario index; no_id until the first pour
  };
  static constexpr counters::id no_id = std::numeric_limits<counters::id>::max();

  void use_source(const input_chunk& chunk) {
    if (src_ != nullptr && src_path_ == chunk.source_path && src_type_ == chunk.source_type) {
      return;
    }
    const std::string_view label = p_.sources.label(chunk.source_path);
    sources_key_.assign(label).push_back('\0');
    sources_key_.append(chunk.source_type);
    auto it = sources_.find(sources_key_);
    if (it == sources_.end()) {
      const parser_ids ids = parser_counters(label, chunk.source_type);
      it = sources_.emplace(sources_key_, source_ids{label, ids, std::vector<counters::id>(gen_->rules->scenarios.size(), no_id)})
               .first;
    }
    src_ = &it->second;
    src_path_ = chunk.source_path;
    src_type_ = chunk.source_type;
  }

  counters::id poured_id(std::uint32_t s) {
    counters::id& id = src_->poured[s];
    if (id == no_id) {
      id = counters::registry::global().define("cs_bucket_poured_total", "Total events were poured in bucket.",
                                                {{"source", src_->label},
                                                 {"type", chunk_->source_type},
                                                 {"name", gen_->rules->scenarios[s].name}});
    }
    return id;
  }

  void process(std::uint64_t seq, const input_chunk& chunk, const std::vector<document>& docs) {
    // Pours go straight into this worker's buckets only if every earlier chunk is applied here.
    direct_ = seq == next_applied_;
    chunk_max_time_ = 0;
    outgoing_.resize(p_.workers.size());
    chunk_ = &chunk;
    source_ = engine::source_info{chunk.source_type, chunk.source_path, chunk.cluster};
    use_matcher(gen_->rules->matcher_index(chunk.source_type));
    use_source(chunk);
    received_at_ = wall_now();
    // Raw documents go to the reader in runs (it parses a run with one stage-1 pass); decoded
    // ones (the webhook's) one by one, in order. framed_ is empty here: flush_framed empties it.
    for (const document& d : docs) {
      if (d.item == document::raw) {
        framed_.push_back(engine::reader::framed_document{d.offset, d.size, d.line});
        continue;
      }
      flush_framed(chunk);
      reader_.feed_decoded(chunk.events[d.item], d.line, chunk.origin, *this);
    }
    flush_framed(chunk);
    ctx_->flush_counters();
    // Every other worker gets this chunk's batch, empty or not: it waits for it to go on.
    const std::size_t n = p_.workers.size();
    for (std::size_t w = 0; w < n; ++w) {
      if (w == index_) {
        continue;
      }
      hold(outgoing_[w]);
      work_item item;
      item.k = work_item::kind::batch;
      item.seq = seq;
      item.max_time = chunk_max_time_;
      item.pours = std::move(outgoing_[w]);
      outgoing_[w].clear();
      p_.workers[w]->enqueue(std::move(item));
    }
    if (direct_) {
      complete(chunk_max_time_); // applied already: the pours went in as the events came
      direct_ = false;
    } else {
      hold(outgoing_[index_]);
      keep(seq, std::move(outgoing_[index_]), chunk_max_time_);
      outgoing_[index_].clear();
    }
    apply_ready();
  }

  // A batch about to be sent or kept: counted until applied. Its pours count in flight like
  // documents (admitted without waiting: a worker never waits on the pipeline it is part of), so
  // pours kept behind a slow chunk hold the producers back instead of piling up.
  void hold(const pour_batch& b) {
    p_.batches_pending.fetch_add(1, std::memory_order_seq_cst);
    if (!b.empty()) {
      p_.admit.add(static_cast<std::int64_t>(b.size()));
    }
  }

  // A chunk's batch for this worker, kept until every earlier chunk is applied here.
  void keep(std::uint64_t seq, pour_batch pours, engine::unix_nanos max_time) {
    assert(seq >= next_applied_); // each number is applied once, in order
    const std::size_t at = static_cast<std::size_t>(seq - next_applied_);
    if (waiting_.size() <= at) {
      waiting_.resize(at + 1);
    }
    waiting_[at].ready = true;
    waiting_[at].pours = std::move(pours);
    waiting_[at].max_time = max_time;
  }

  // Applies the kept batches that are next in chunk order. A batch with pours of a newer rule set
  // than this worker's waits for the reload on its way here (queued to every worker at once),
  // rather than being dropped as stale.
  void apply_ready() {
    while (!waiting_.empty() && waiting_.front().ready) {
      kept_batch& b = waiting_.front();
      if (!b.pours.empty() && b.pours.front()->generation > gen_->id) {
        return;
      }
      for (std::unique_ptr<batched_pour>& fp : b.pours) {
        if (fp->generation != gen_->id) {
          counters::add(pipeline_counters::get().stale_pours);
        } else {
          if (buckets_->pour(fp->scenario, fp->key, fp->distinct, fp->time, fp->payload, *this, fp->check_distinct) &&
              fp->poured != no_id) {
            counters::add(fp->poured);
          }
          counters::add(ids_.pours);
        }
        p_.recycle(std::move(fp));
      }
      const engine::unix_nanos t = b.max_time;
      const std::size_t n = b.pours.size();
      complete(t);
      publish();
      if (n != 0) {
        p_.admit.release(static_cast<std::int64_t>(n));
      }
      p_.batches_pending.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  // Chunk next_applied_ is applied: its slot goes (a chunk applied directly has one only if a
  // later chunk's batch made it), and the buckets advance to the latest event time seen so far,
  // at the end of each chunk, as with one worker.
  void complete(engine::unix_nanos max_time) {
    if (!waiting_.empty()) {
      waiting_.pop_front();
    }
    ++next_applied_;
    if (max_time > watermark_) {
      watermark_ = max_time;
    }
    buckets_->advance(watermark_, *this);
    if (p_.opts.live) {
      last_activity_wall_ = wall_now(); // for idle_tick, which only live mode runs
      watermark_at_activity_ = watermark_;
    }
  }

  void flush_framed(const input_chunk& chunk) {
    if (!framed_.empty()) {
      reader_.feed_documents(chunk.data.data(), framed_, chunk.origin, *this);
      framed_.clear();
    }
  }

  void on_event(const engine::audit_event& ev, const engine::position&) override {
    counters::add(src_->parser.hits);
    counters::add(src_->parser.ok);
    counters::add(ids_.events);
    // CrowdSec's parsing and pour time histograms, sampled (one event in 64) so the clock is
    // not read on every event.
    const bool timed = (++sampled_ & 63) == 0;
    const auto t0 = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    if (p_.opts.count_verbs_resources) {
      by_verb.add(ev.verb.empty() ? std::string_view("(none)") : ev.verb);
      by_resource.add(ev.object.resource.empty() ? std::string_view("(none)") : ev.object.resource);
    }
    engine::build_meta(ev, source_, meta_);
    env_.reset(&ev, &meta_);
    matcher_->match(*ctx_, env_, matched_);
    if (timed) {
      const auto t1 = std::chrono::steady_clock::now();
      p_.timings.parsing.observe(std::chrono::duration<double>(t1 - t0).count());
    }
    if (matched_.empty()) {
      return;
    }
    const auto t2 = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    const engine::unix_nanos t = engine::event_time(ev, received_at_);
    if (t > chunk_max_time_) {
      chunk_max_time_ = t;
    }
    fill_payload(t);
    for (const std::uint32_t s : matched_) {
      pour(s, t);
    }
    if (timed) {
      p_.timings.pour.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count());
    }
  }

  // The bucket keeps the event's time and meta (sorted by key, as CrowdSec lists them).
  void fill_payload(engine::unix_nanos t) {
    payload_.time = t;
    payload_.meta.clear(); // keeps its buffer: no allocation once warm
    for (std::size_t k = 0; k < engine::meta_key_count; ++k) {
      const auto key = static_cast<engine::meta_key>(k);
      if (meta_.has(key)) {
        payload_.meta.push_back(key, meta_.get(key));
      }
    }
  }

  // Evaluates a groupby expression into `out`; false (counted) if it fails or gives a non-string:
  // the event is then not poured into that scenario (CrowdSec stops pouring it, or exits).
  bool eval_string(const expr::program& p, std::string& out) {
    const expr::eval_result r = p.eval(env_);
    if (r.err != expr::eval_error::none || r.v.kind != expr::value_kind::string) {
      counters::add(pipeline_counters::get().groupby_errors);
      return false;
    }
    out.assign(r.v.as_string());
    return true;
  }

  void pour(std::uint32_t s, engine::unix_nanos t) {
    const rules::scenario& sc = gen_->rules->scenarios[s];
    key_.assign(source_.cluster);
    key_.push_back('\0');
    if (sc.groupby) {
      if (!eval_string(*sc.groupby, group_)) {
        return;
      }
      key_.append(group_);
    }
    // CrowdSec's Uniq: when the distinct expression fails, the event is poured without the
    // check; when it gives something other than a string, the value counts as "" (its
    // getElement returns "" and no error). Both are counted.
    distinct_.clear();
    bool check_distinct = true;
    if (sc.distinct) {
      const expr::eval_result r = sc.distinct->eval(env_);
      if (r.err != expr::eval_error::none) {
        check_distinct = false;
        counters::add(pipeline_counters::get().groupby_errors);
      } else if (r.v.kind == expr::value_kind::string) {
        distinct_.assign(r.v.as_string());
      } else {
        counters::add(pipeline_counters::get().groupby_errors);
      }
    }
    // A stateless trigger does not depend on the order of pours: it fires here, at once.
    const bool stateless = gen_->stateless[s] != 0;
    const unsigned owner =
        stateless ? index_ : p_.shard_of(source_.cluster, std::string_view(key_).substr(source_.cluster.size() + 1));
    if (stateless || (owner == index_ && direct_)) {
      if (buckets_->pour(s, key_, distinct_, t, payload_, *this, check_distinct)) {
        counters::add(poured_id(s));
      }
      counters::add(ids_.pours);
      return;
    }
    std::unique_ptr<batched_pour> fp = p_.spare_pours.take();
    fp->generation = gen_->id;
    fp->scenario = s;
    fp->key = key_;
    fp->distinct = distinct_;
    fp->check_distinct = check_distinct;
    fp->time = t;
    fp->payload.assign(payload_);
    // A trigger's pour never counts: its series is not created (CrowdSec has none either).
    fp->poured = sc.bucket.type == engine::bucket_type::trigger ? no_id : poured_id(s);
    if (owner != index_) {
      ++forwarded;
      counters::add(pipeline_counters::get().forwarded);
    }
    outgoing_[owner].push_back(std::move(fp));
  }

  void on_error(const engine::position& where, const engine::failure& why) override {
    counters::add(src_->parser.hits);
    counters::add(src_->parser.ko);
    std::string msg(where.origin);
    msg += ':' + std::to_string(where.line);
    if (where.item >= 0) {
      msg += ": item " + std::to_string(where.item);
    }
    msg += ": " + engine::describe(why);
    pending_.push_back(emit_item{nullptr, std::move(msg), false, 0});
  }

  void on_overflow(const engine::overflow& ov) override {
    if (ov.blackholed) {
      ++blackholed;
      counters::add(pipeline_counters::get().blackholed);
      return;
    }
    std::unique_ptr<engine::alert> a = p_.spare_alerts.take();
    engine::make_alert(*a, gen_->origins[ov.scenario], ov.events_count, ov.first, ov.last, ov.at, ov.events.data(),
                       ov.events.size(), scope_value(ov));
    const std::size_t sources = engine::split_sources(*a, alert_sources_);
    if (a->value.empty()) {
      counters::add(pipeline_counters::get().no_source);
    }
    engine::alert* first = a.get();
    pending_.push_back(emit_item{std::move(a), {}, false, ov.scenario});
    if (sources > 1) {
      // One alert per source, in their order (CrowdSec makes one per source too), each with its
      // own source's events: copies with every event would make N sources N x N events.
      split_events_.clear();
      split_events_.swap(first->events);
      split_alerts_.clear();
      for (std::size_t i = 1; i < sources; ++i) {
        std::unique_ptr<engine::alert> other = p_.spare_alerts.take();
        *other = *first; // events left out: first has none now
        other->value.assign(alert_sources_[i]);
        other->source_ip.assign(alert_sources_[i]);
        other->further_source = true;
        split_alerts_.push_back(other.get());
        pending_.push_back(emit_item{std::move(other), {}, false, ov.scenario});
      }
      engine::share_events(split_events_, *first, split_alerts_, alert_sources_);
    }
  }

  // A Range or custom scope's value: the scenario's scope expression on the last queued event's
  // meta (the loader allows it nothing else). "" and counted if it fails or is not a string.
  std::vector<std::string> alert_sources_;     // split_sources' output, reused
  std::vector<engine::event_payload> split_events_; // an overflow's events, being shared out
  std::vector<engine::alert*> split_alerts_;       // the further alerts they are shared with

  std::string_view scope_value(const engine::overflow& ov) {
    const rules::scenario& sc = gen_->rules->scenarios[ov.scenario];
    if (!sc.scope_expression || ov.events.empty()) {
      return {};
    }
    scope_meta_ = engine::event_meta{};
    for (const auto& [k, v] : ov.events.back()->meta) {
      engine::meta_key key{};
      if (engine::meta_key_from_name(k, key)) {
        scope_meta_.set(key, v);
      }
    }
    scope_meta_.timestamp_ready = true; // the kept value is already text
    scope_env_.reset(&no_event_, &scope_meta_);
    const expr::eval_result r = sc.scope_expression->eval(scope_env_);
    if (r.err != expr::eval_error::none || r.v.kind != expr::value_kind::string) {
      counters::add(pipeline_counters::get().scope_errors);
      return {};
    }
    scope_value_.assign(r.v.as_string());
    return scope_value_;
  }

  pipeline::impl& p_;
  unsigned index_;
  struct {
    counters::id depth, high_water, events, pours;
  } ids_{};
  std::size_t high_water_ = 0;
  std::uint32_t sampled_ = 0;
  blocking_queue<work_item> inbox_;
  engine::reader reader_;
  std::vector<engine::reader::framed_document> framed_; // the raw documents of a chunk, reused
  std::shared_ptr<const rule_generation> gen_;
  std::vector<std::unique_ptr<rules::matcher::context>> contexts_; // per matcher of the rule set
  const rules::matcher* matcher_ = nullptr;
  rules::matcher::context* ctx_ = nullptr;
  rules::event_env env_;
  engine::event_meta meta_;
  rules::event_env scope_env_; // scope expressions, on an overflow's last event
  engine::event_meta scope_meta_;
  const engine::audit_event no_event_{};
  std::string scope_value_;
  std::unique_ptr<engine::bucket_set> buckets_;
  std::vector<std::uint32_t> matched_;
  std::vector<emit_item> pending_;
  engine::event_payload payload_;
  std::string key_, group_, distinct_;
  engine::source_info source_;
  const input_chunk* chunk_ = nullptr;
  engine::unix_nanos watermark_ = 0;
  // Chunk order (pipeline header): the next chunk to apply here, the batches kept until then
  // (waiting_[i] is chunk next_applied_ + i), the pours of the current chunk by owner, and
  // whether they go straight into this worker's buckets.
  struct kept_batch {
    bool ready = false;
    pour_batch pours;
    engine::unix_nanos max_time = 0;
  };
  std::uint64_t next_applied_ = 0;
  std::deque<kept_batch> waiting_;
  std::vector<pour_batch> outgoing_;
  bool direct_ = false;
  engine::unix_nanos chunk_max_time_ = 0; ///< of the current chunk's matched events
  engine::unix_nanos received_at_ = 0;
  engine::unix_nanos last_activity_wall_ = 0;     ///< wall time of the last batch (live mode)
  std::unordered_map<std::string, source_ids> sources_; ///< by label \0 type
  std::string sources_key_;                             ///< reused for lookups
  source_ids* src_ = nullptr;                           ///< the current chunk's source's
  std::string src_path_, src_type_;                     ///< what src_ was looked up for
  engine::unix_nanos watermark_at_activity_ = 0;  ///< watermark then
  std::thread thread_;
};

pipeline::pipeline(std::shared_ptr<const rules::ruleset> rules, options opts, output_handler& out)
    : impl_(std::make_unique<impl>(std::move(rules), opts, out)) {
  impl& p = *impl_;
  p.generation = make_generation(p.rules, 1);
  unsigned n = opts.workers != 0 ? opts.workers : std::max(1u, std::thread::hardware_concurrency());
  (void)pipeline_counters::get();
  counters::set(counters::registry::global().define("cs_info", "Information about vigil (CrowdSec-compatible)",
                                                    {{"version", "vigil-0.1.0"}}, counters::kind::gauge),
                1);
  p.emitter = std::thread([&p] {
    pthread_setname_np(pthread_self(), "vigil-emitter");
    p.run_emitter();
  });
  p.workers.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    p.workers.push_back(std::make_unique<worker>(p, i));
  }
}

pipeline::~pipeline() {
  if (!impl_->finished) {
    finish();
  }
}

void pipeline::impl::enqueue_docs(const std::shared_ptr<input_chunk>& chunk, std::vector<document> docs) {
  const std::uint64_t seq = next_seq.fetch_add(1, std::memory_order_relaxed);
  work_item item;
  item.k = work_item::kind::docs;
  item.seq = seq;
  item.chunk = chunk;
  item.docs = std::move(docs);
  workers[seq % workers.size()]->enqueue(std::move(item));
}

unsigned pipeline::workers() const noexcept { return static_cast<unsigned>(impl_->workers.size()); }

void pipeline::submit(const std::shared_ptr<input_chunk>& chunk, std::vector<document> docs) {
  if (docs.empty()) {
    return;
  }
  impl& p = *impl_;
  // Admission: wait (do not drop) while too much is queued. Asleep on a futex until a worker
  // makes room: polling every 50 us instead cost a wake-up per 50 documents, several percent of
  // a replay's CPU. The chunk's number is taken once admitted and queued at once: the workers
  // wait for every number, so none may be taken and then not queued.
  p.admit.acquire(static_cast<std::int64_t>(docs.size()));
  p.enqueue_docs(chunk, std::move(docs));
}

std::size_t pipeline::submit_framed(const std::shared_ptr<input_chunk>& chunk, bool final, std::uint64_t& line,
                                    std::size_t max_document_bytes, std::size_t& documents) {
  std::vector<document> docs;
  docs.reserve(chunk->size / 512 + 16); // about twice the generated mix's documents per byte
  std::uint64_t next_line = line;
  const std::size_t used = frame_documents(chunk->data.data(), chunk->size, final, line, max_document_bytes, docs, next_line);
  line = next_line;
  documents = docs.size();
  submit(chunk, std::move(docs));
  return used;
}

bool pipeline::try_submit(const std::shared_ptr<input_chunk>& chunk, std::vector<document>& docs) {
  impl& p = *impl_;
  if (docs.empty()) {
    return true;
  }
  if (!p.admit.try_acquire(static_cast<std::int64_t>(docs.size()))) {
    return false;
  }
  p.enqueue_docs(chunk, std::move(docs));
  docs.clear();
  return true;
}

void pipeline::reload(std::shared_ptr<const rules::ruleset> rules) {
  impl& p = *impl_;
  p.rules = rules;
  p.generation = make_generation(std::move(rules), p.generation->id + 1);
  for (auto& w : p.workers) {
    work_item item;
    item.k = work_item::kind::reload;
    item.generation = p.generation;
    w->enqueue(std::move(item));
  }
}

std::shared_ptr<const rules::ruleset> pipeline::rules() const { return impl_->rules; }

void pipeline::count_unparsed(const input_chunk& chunk, std::uint64_t n) {
  if (n == 0) {
    return;
  }
  const parser_ids ids = parser_counters(impl_->sources.label(chunk.source_path), chunk.source_type);
  counters::add(ids.hits, n);
  counters::add(ids.ko, n);
}

std::int64_t pipeline::in_flight() const noexcept { return impl_->admit.in_flight(); }

totals pipeline::finish() {
  impl& p = *impl_;
  p.finished = true;
  // The documents first: a worker counts a chunk's batches before it releases the chunk's
  // documents, so once none are in flight, every batch there will be is counted.
  while (p.admit.in_flight() != 0 || p.batches_pending.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  for (auto& w : p.workers) {
    work_item item;
    item.k = work_item::kind::flush;
    w->enqueue(std::move(item));
  }
  while (p.flushed.load(std::memory_order_acquire) != p.workers.size()) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  for (auto& w : p.workers) {
    work_item item;
    item.k = work_item::kind::stop;
    w->enqueue(std::move(item));
  }
  totals t;
  const auto& final_rules = *p.generation->rules;
  t.eval_errors_per_scenario.assign(final_rules.scenarios.size(), 0);
  for (auto& w : p.workers) {
    w->join();
    const auto rs = w->reader_stats();
    t.events_read += rs.events_read;
    t.events_per_worker.push_back(rs.events_read);
    t.worker_cpu_seconds.push_back(w->cpu_seconds);
    t.decoded += rs.decoded;
    t.malformed += rs.malformed;
    t.forwarded += w->forwarded;
    w->by_verb.for_each([&t](std::string_view k, std::uint64_t v) { t.by_verb[std::string(k)] += v; });
    w->by_resource.for_each([&t](std::string_view k, std::uint64_t v) { t.by_resource[std::string(k)] += v; });
    t.verbs_not_named += w->by_verb.others();
    t.resources_not_named += w->by_resource.others();
    t.blackholed += w->blackholed;
    const auto errs = w->eval_errors();
    for (std::size_t i = 0; i < errs.size(); ++i) {
      t.eval_errors_per_scenario[i] += errs[i];
    }
  }
  p.emit_q.enqueue(emit_item{nullptr, {}, true, 0});
  p.emitter.join();
  t.emitter_cpu_seconds = p.emitter_cpu_seconds;
  for (const auto& sc : final_rules.scenarios) {
    const auto it = p.alerts_by_scenario.find(sc.name);
    t.alerts_per_scenario.push_back(it == p.alerts_by_scenario.end() ? 0 : it->second.count);
  }
  for (const auto& [name, n] : p.alerts_by_scenario) {
    t.alerts += n.count;
  }
  return t;
}

std::size_t frame_documents(const char* data, std::size_t size, bool final, std::uint64_t first_line,
                            std::size_t max_document_bytes, std::vector<document>& out, std::uint64_t& next_line) {
  const char* p = data;
  const char* const end = data + size;
  std::uint64_t line = first_line;
  const char* consumed = p;
  while (true) {
    engine::line_span ln;
    const bool have = engine::next_line(p, end, final, line, ln);
    consumed = p;
    if (!have) {
      break;
    }
    const char* eol = ln.eol;
    const char* line_end = ln.end;
    const char* doc_end = line_end;
    std::uint64_t lines_inside = 0;
    // A line that opens an object or array but does not close one may be the start of a
    // pretty-printed document: find its end by bracket matching.
    if ((*p == '{' || *p == '[') && line_end[-1] != '}' && line_end[-1] != ']') {
      const std::size_t n = engine::find_document_end(p, end, max_document_bytes);
      if (n == 0 && !final && static_cast<std::size_t>(end - p) <= max_document_bytes) {
        break; // may complete with more input
      }
      if (n != 0 && p + n > line_end) {
        doc_end = p + n;
        lines_inside = static_cast<std::uint64_t>(std::count(p, doc_end, '\n'));
      }
    }
    out.push_back(document{static_cast<std::uint32_t>(p - data), static_cast<std::uint32_t>(doc_end - p), line});
    line += lines_inside;
    p = doc_end > line_end ? doc_end : eol;
  }
  next_line = line;
  return static_cast<std::size_t>(consumed - data);
}

} // namespace vigil::pipeline
