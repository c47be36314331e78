#pragma once
// The processing pipeline shared by `vigil replay` and the daemon: N worker threads, each owning
// a shard of the leaky buckets, and one emitter thread.
//
//   producer (file reader or webhook) --chunks--> worker inbox (moodycamel, one per worker)
//   worker: decode -> meta -> match (hyperscan + filters) -> groupby -> pours, batched by owner
//   owner:  applies the pour batches of every chunk in chunk order -> its buckets
//   overflows -> alerts -> emitter inbox -> alert_handler (one thread)
//
// Spreading: each submitted chunk takes the next number of one sequence for the whole pipeline,
// and chunk n goes whole to worker n % N, so the work spreads evenly whatever the traffic (one
// busy source IP, one cluster) and a chunk's documents are parsed in one run.
//
// Sharding: the bucket of (scenario, cluster, group key) lives on shard hash(cluster, key) % N. A
// worker pours an event into the buckets it owns at once when every earlier chunk has been applied
// there (with one worker, unless producers race for the numbers); otherwise, and for every other
// owner, it copies the pour into a batch for that owner. Once the chunk is done it sends each other
// worker one batch for it, empty or not, so every worker sees every chunk number. An owner applies
// batches strictly in chunk order, so every bucket receives its pours in input order, as with one
// worker, and the buckets advance to each chunk's latest event time at the same points: the alerts
// do not depend on the number of workers. Stateless triggers (no blackhole) fire on whatever worker
// decoded the event.
//
// Admission: submit() counts documents in flight and blocks the producer while more than
// max_in_flight are queued or being processed (the daemon answers 429 instead, see try_submit()).
// Pours in batches count in flight too (added without waiting): pours kept behind a slow chunk
// hold the producers back rather than pile up. What is admitted is always processed: workers
// never block and never drop; an owner applies a chunk's pours only after every earlier chunk's,
// so one slow chunk delays the alerts of every bucket (by the time it takes to decode it). At a
// reload, pours decoded under the old rules and due after the switch are dropped with the old
// buckets (counted, vigil_pipeline_stale_pours_total); those of the new rules wait for it.
//
// Threading contract: submit() and try_submit() may be called from several producer
// threads (the webhook loop, a file reader); finish() once, after every producer is done.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/alert/alert.h"
#include "engine/event/reader.h"
#include "engine/parse/meta.h"
#include "rules/matcher/ruleset.h"
#include "rules/profiles/profiles.h"

namespace vigil::pipeline {

/// A buffer of raw audit data shared by the documents that point into it. The bytes must be
/// followed by SIMDJSON_PADDING readable bytes (make_chunk does it).
struct input_chunk {
  std::string data; ///< bytes plus padding; `size` is the payload length
  std::size_t size = 0;
  std::string origin;       ///< file name or source name, for error positions
  std::string source_type;  ///< "file" or "k8s-audit"
  std::string source_path;  ///< datasource_path
  std::string cluster;
  /// Set by a producer that already parsed and decoded the data (the webhook does, to check
  /// each item): the parse, and the decoded events documents refer to by
  /// `document::item` (they point into the parse). Workers only read them, so several share one
  /// parse; both are reused with the chunk. Only the parsed document lives with the chunk: the
  /// parser's working memory (structural indexes, several bytes per input byte) is needed while
  /// parsing only, so the producer keeps one parser for all its chunks, warm in cache.
  struct parse_state {
    simdjson::dom::document doc; ///< sized by the producer (the parser would size it exactly)
  };
  std::unique_ptr<parse_state> parsed;
  std::vector<engine::audit_event> events;
};

/// Allocates a chunk able to hold `capacity` payload bytes plus padding.
std::shared_ptr<input_chunk> make_chunk(std::size_t capacity);

/// Recycles chunks: a chunk handed out by get() returns to the pool when the last document
/// pointing into it has been processed, so a steady stream reuses the same few buffers (no page
/// faults, no zeroing). Safe to release chunks from any thread; get() from one producer thread.
class chunk_pool {
 public:
  chunk_pool();
  ~chunk_pool();
  /// A chunk able to hold `capacity` payload bytes (contents unspecified, `events` cleared; a
  /// parse state left by an earlier use is kept for reuse).
  std::shared_ptr<input_chunk> get(std::size_t capacity);

  struct state;

 private:
  std::shared_ptr<state> state_;
};

/// One document (line, multi-line object, or list) inside a chunk.
struct document {
  static constexpr std::uint32_t raw = ~std::uint32_t{0};
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  std::uint64_t line = 1;
  /// raw: parse bytes [offset, offset + size). Otherwise the already decoded
  /// chunk->events[item] (offset and size are then unused).
  std::uint32_t item = raw;
};

/// Receives pipeline output on the emitter thread.
class output_handler {
 public:
  virtual ~output_handler() = default;
  virtual void on_alert(const engine::alert& a) = 0;
  /// A decode error: "<origin>:<line>[: item N]: <reason>".
  virtual void on_error(const std::string& message) = 0;
  /// After each group of alerts the emitter took at once: a place to write them in one go.
  virtual void on_batch_end() {}
  /// Nothing arrived for a while (emitter_idle), or the pipeline is finishing: write out
  /// whatever on_batch_end() kept back.
  virtual void on_idle() {}
};

/// How long the emitter waits for alerts before calling output_handler::on_idle().
inline constexpr std::chrono::milliseconds emitter_idle{20};

/// The in-flight limit: documents admitted and not yet processed, and the pours of the pipeline's
/// batches not yet applied. Every
/// decrease goes through release(), which wakes a producer sleeping in acquire() as soon as the
/// count is back within the limit; that is what makes a lost wake-up impossible, whatever mix of
/// acquire(), try_acquire() and add() runs at the same time. Thread-safe.
class admission {
 public:
  explicit admission(std::size_t limit) noexcept : limit_(static_cast<std::int64_t>(limit)) {}

  /// Waits, asleep on a futex, while more than the limit is in flight, then admits `n`.
  void acquire(std::int64_t n) noexcept;
  /// Admits `n` if the count stays within the limit, or if nothing is in flight (so a batch
  /// larger than the limit cannot be refused forever); else admits nothing. Never waits.
  bool try_acquire(std::int64_t n) noexcept;
  /// Admits `n` without looking at the limit (a worker batching pours must never wait on the
  /// pipeline it is part of).
  void add(std::int64_t n) noexcept { in_flight_.fetch_add(n, std::memory_order_seq_cst); }
  /// `n` admitted items are done.
  void release(std::int64_t n) noexcept;

  [[nodiscard]] std::int64_t in_flight() const noexcept { return in_flight_.load(std::memory_order_acquire); }

 private:
  const std::int64_t limit_;
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::uint32_t> waiting_{0}; ///< 1 while a producer sleeps in acquire() (a futex word)
};

struct options {
  unsigned workers = 0;                  ///< 0: one per core
  /// Documents admitted but not yet processed, with the pours in batches not yet applied (those
  /// are added without waiting, so the count can pass the limit by the pours of the chunks being
  /// decoded; producers then wait).
  std::size_t max_in_flight = 1u << 15;
  /// Live mode (the daemon): an idle shard advances its watermark with the wall clock so idle
  /// buckets expire. Replay runs on event time only.
  bool live = false;
  /// Count decoded events by verb and by resource (the replay summary); off in the daemon.
  bool count_verbs_resources = false;
  /// The profiles the emitter runs on every alert (decisions); null: none.
  std::shared_ptr<const rules::profile_set> profiles;
};

/// Totals, read after finish().
struct totals {
  std::uint64_t events_read = 0, decoded = 0, malformed = 0;
  std::uint64_t alerts = 0, blackholed = 0, forwarded = 0;
  /// Events each worker read, by worker index: how evenly the shards split the input.
  std::vector<std::uint64_t> events_per_worker;
  /// CPU time (user and system) of each worker thread and of the emitter thread, in seconds:
  /// what one worker's core spends per event, apart from the reading and the alerts.
  std::vector<double> worker_cpu_seconds;
  double emitter_cpu_seconds = 0.0;
  std::vector<std::uint64_t> alerts_per_scenario; ///< by scenario index
  std::vector<std::uint64_t> eval_errors_per_scenario;
  std::map<std::string, std::uint64_t> by_verb, by_resource; ///< with count_verbs_resources
  /// Events whose verb or resource a worker did not name: it holds at most 4,096 of each.
  std::uint64_t verbs_not_named = 0, resources_not_named = 0;
};

class pipeline {
 public:
  pipeline(std::shared_ptr<const rules::ruleset> rules, options opts, output_handler& out);
  ~pipeline();
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  [[nodiscard]] unsigned workers() const noexcept;

  /// Queues `docs` of `chunk`, in order, to the next worker in turn. Blocks while the in-flight
  /// limit is passed (asleep, until the workers have brought what is in flight back within it).
  void submit(const std::shared_ptr<input_chunk>& chunk, std::vector<document> docs);

  /// Frames the documents of chunk->data[0, chunk->size) (frame_documents) and submits them
  /// (blocking admission).
  /// `line` is the line of the first byte and is advanced. Returns the bytes consumed; with
  /// `final` false, a document that may continue past the end is left for the next chunk.
  /// `documents` receives how many were submitted.
  std::size_t submit_framed(const std::shared_ptr<input_chunk>& chunk, bool final, std::uint64_t& line,
                            std::size_t max_document_bytes, std::size_t& documents);

  /// Admission for the webhook: queues `docs` (moved from; left empty) if they all fit under the
  /// in-flight limit, else queues nothing and returns false (the caller answers 429). Never
  /// blocks.
  bool try_submit(const std::shared_ptr<input_chunk>& chunk, std::vector<document>& docs);

  /// Counts `n` items of `chunk` that a producer refused before the workers (the webhook's
  /// rejected items) in CrowdSec's parser counters of the chunk's source, as entered and not
  /// parsed: a worker counts a malformed line of a file there too. Takes locks (the source
  /// labels, the counter registry): once per batch with such items, not per event.
  void count_unparsed(const input_chunk& chunk, std::uint64_t n);

  /// Takes a new rule set into use: each worker switches between two batches (in-band), with
  /// fresh buckets; the old set serves until then. Call from the thread that owns the pipeline.
  void reload(std::shared_ptr<const rules::ruleset> rules);

  /// The newest rule set.
  [[nodiscard]] std::shared_ptr<const rules::ruleset> rules() const;

  /// Documents admitted and not yet processed, and pours in batches not yet applied.
  [[nodiscard]] std::int64_t in_flight() const noexcept;

  /// End of input: waits until everything admitted is processed, flushes the buckets, drains the
  /// emitter, joins the threads. Returns the totals. Call once.
  totals finish();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// Splits `data` into documents (one per line, or a multi-line object/array), appended to `out`.
/// With `final` false, stops before a document that may continue past the end and returns the
/// bytes consumed. `first_line` is the line number of data[0]; `next_line` receives the line after
/// what was consumed.
std::size_t frame_documents(const char* data, std::size_t size, bool final, std::uint64_t first_line,
                            std::size_t max_document_bytes, std::vector<document>& out, std::uint64_t& next_line);

} // namespace vigil::pipeline
