#pragma once
// The counter registry: every stage of vigil counts what it receives, emits, drops and fails on
// through this one mechanism, and /metrics, `vigil replay` summaries and tests read it back.
//
// Threading contract:
//  - define() is control-plane: call it at start-up or load time (it takes a mutex and may
//    allocate). It is idempotent: the same (name, labels) always returns the same id.
//  - add()/set() are hot-path: wait-free, no lock, no shared cache line written. Each thread
//    writes only its own block of slots; the first touch of a counter chunk by a thread
//    allocates that chunk once (never again in steady state).
//  - read()/snapshot() may run on any thread at any time: they sum every live thread's slot plus
//    the totals folded in by threads that have exited. A read concurrent with add() sees either
//    the old or the new value of each slot (relaxed atomics), never a torn one.

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::counters {

/// Index of a defined counter. Stable for the life of the process.
using id = std::uint32_t;

enum class kind : std::uint8_t {
  counter, ///< monotonic; the value is the sum over all threads
  gauge,   ///< set by one owner thread (for example a worker's inbox depth); summed like counters
  histogram, ///< a part of a histogram family (<family>_bucket / _sum / _count)
};

struct label {
  std::string_view key;
  std::string_view value;
};

/// One counter as read by snapshot(): name, rendered Prometheus labels (`k="v",k2="w"`), value.
struct sample {
  std::string name;
  std::string labels;
  std::string help;
  kind type;
  std::uint64_t value;
};

/// Registers counters and sums their per-thread slots on read.
class registry {
 public:
  /// The process-wide registry used by every stage.
  static registry& global() noexcept;

  /// Defines (or finds) a counter. Label values are copied. At most max_counters - 1 label sets
  /// per registry: past that, every new one gets the last id, the counter
  /// vigil_counters_overflowed_total, and a line on stderr says so once.
  id define(std::string_view name, std::string_view help, std::initializer_list<label> labels = {},
            kind type = kind::counter);
  id define(std::string_view name, std::string_view help, const std::vector<label>& labels, kind type = kind::counter);

  /// Sum of the counter over all threads, live and exited.
  [[nodiscard]] std::uint64_t read(id counter) const noexcept;

  /// Sum of every counter with this name (all label sets).
  [[nodiscard]] std::uint64_t read_all(std::string_view name) const;

  /// Value of the counter with this name and exact rendered labels, 0 if undefined.
  [[nodiscard]] std::uint64_t read(std::string_view name, std::initializer_list<label> labels) const;

  /// Every defined counter with its current value, in definition order.
  [[nodiscard]] std::vector<sample> snapshot() const;

  static constexpr std::uint32_t chunk_bits = 10;
  static constexpr std::uint32_t chunk_size = 1u << chunk_bits;
  static constexpr std::uint32_t max_chunks = 64;
  static constexpr std::uint32_t max_counters = chunk_size * max_chunks;

  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  struct impl;
  impl* impl_;
};

namespace detail {
using slot = std::atomic<std::uint64_t>;
/// The calling thread's chunk table, set by its first add() or set() and cleared when its block
/// is folded into the registry at thread exit. A plain pointer with constant initialisation, so reading it
/// is one instruction (no guard of a thread_local object): add() is inlined on it.
extern thread_local constinit const std::atomic<slot*>* thread_chunks;
/// add() for a thread that has not counted yet, or a chunk it has not touched yet.
void add_first_touch(id counter, std::uint64_t n) noexcept;
} // namespace detail

/// Adds n to the calling thread's slot of a counter of the global registry.
inline void add(id counter, std::uint64_t n = 1) noexcept {
  const std::atomic<detail::slot*>* const chunks = detail::thread_chunks;
  if (chunks != nullptr) [[likely]] {
    detail::slot* const c = chunks[counter >> registry::chunk_bits].load(std::memory_order_acquire);
    if (c != nullptr) [[likely]] {
      // Single writer per slot: a relaxed load+store, no locked read-modify-write.
      detail::slot& s = c[counter & (registry::chunk_size - 1)];
      s.store(s.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
      return;
    }
  }
  detail::add_first_touch(counter, n);
}

/// Sets the calling thread's slot of a gauge of the global registry.
void set(id counter, std::uint64_t value) noexcept;

/// Renders labels in Prometheus text form: key="value",... with \ " and newline escaped.
std::string render_labels(std::initializer_list<label> labels);
std::string render_labels(const std::vector<label>& labels);

/// A Prometheus histogram built from counters of the global registry: <family>_bucket{le=...}
/// (cumulative), <family>_sum and <family>_count. A family named *_seconds observes seconds and
/// keeps its sum in nanoseconds (the renderer divides). Define at start-up; observe() is
/// hot-path safe (a few per-thread adds), but it is meant for per-request or sampled use.
class histogram {
 public:
  histogram() = default;
  histogram(std::string_view family, std::string_view help, std::vector<double> bounds,
            std::initializer_list<label> labels = {});
  void observe(double v) noexcept;

 private:
  std::vector<double> bounds_;
  std::vector<id> buckets_;
  id sum_ = 0, count_ = 0;
  double sum_scale_ = 1.0;
};

} // namespace vigil::counters
