#pragma once
// The rule matcher: evaluates every loaded scenario's filter on one event.
//
// String tests are not run one rule at a time. At build time, every test of the form
// `<field> == "lit"`, `!=`, `<field> in ["a", "b"]`, `startsWith`, `endsWith`, `contains` and
// `matches` whose left side is a plain field path (`evt.Meta.user`,
// `evt.Unmarshaled.k8s_audit.objectRef?.resource`, `...annotations["k"]`) is lifted out of its
// filter. The lifted tests of all rules are grouped per field: the literals of `==`, `!=` and
// `in` into one hash table, the others into one hyperscan database (up to 8 prefixes and suffixes
// alone on a field are compared in place instead). Per event, each field is read once, looked up
// once and scanned once (or neither when it holds the same string as on the previous event),
// which sets the result bits of all its tests; the filters then run with those tests answered
// from the bits. Equality with integer literals (`== 401`, `!= 401`,
// `in [401, 403]`) is lifted too, and decided by comparing when the field holds an integer. Nil is
// decided as the evaluator decides it; anything else at run time (a float, a bool, a missing
// object) is left to the filter's own evaluation, so results are exactly the evaluator's.
//
// Threading: a matcher is immutable and shared; each worker owns one matcher::context (hyperscan
// scratch, bits, caches). match() allocates nothing once the context is warm.

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "rules/expr/expr.h"
#include "rules/scenario/event_env.h"
#include "rules/scenario/scenario.h"

struct hs_database;
struct hs_scratch;

namespace vigil::rules {

/// Per-rule evaluation outcome counts, kept by each context (summed by callers if needed).
struct rule_stats {
  std::uint64_t evaluations = 0;
  std::uint64_t matches = 0;
  std::uint64_t errors = 0;
};

/// A value every event given to a matcher has in one `evt` slot without keys (a meta key such as
/// evt.Meta.datasource_type, which is the same for every event of a source).
struct slot_constant {
  std::uint32_t slot = 0;
  std::string value;
};

class matcher {
 public:
  struct impl;

  /// Lifts and groups the string tests of `scenarios` (which must outlive the matcher).
  /// Fails (with a message) only if hyperscan rejects a database.
  ///
  /// With `constants`, the matcher is specialized for events that have those values (the caller
  /// guarantees it): a test of such a slot against a literal is decided at build time, and
  /// `&&`/`||` whose left side is decided are folded the way the evaluator short-circuits. The
  /// hub's filters are `(datasource_type == "k8s-audit" && <capitalized keys>) || (datasource_type
  /// != "k8s-audit" && <lowerCamel keys>)`: for one kind of source only one branch is live, its
  /// tests alone are read and scanned, and its conjunctions gate the rule. Verdicts and errors
  /// stay exactly the evaluator's (rules that are visited still run their whole filter).
  static std::variant<matcher, std::string> build(const std::vector<scenario>& scenarios,
                                                  const std::vector<slot_constant>& constants = {});

  /// Per-worker state. Not thread-safe.
  class context {
   public:
    explicit context(const matcher& m);
    ~context();
    context(context&&) noexcept;
    context& operator=(context&&) = delete;
    context(const context&) = delete;

    /// Outcome counts per scenario, in load order. Every rule is considered for every event
    /// (most are decided without running their filter), so `evaluations` is the event count.
    [[nodiscard]] const std::vector<rule_stats>& stats() const noexcept {
      fold_group_errors();
      for (rule_stats& s : stats_) {
        s.evaluations = events_;
      }
      return stats_;
    }

    /// Brings the per-rule counters (vigil_rule_evaluations_total, _matches_total,
    /// _eval_errors_total, errors by kind) up to date: the matcher counts in the context and
    /// publishes here, one add per rule per call rather than per event. Callers flush after each
    /// batch; match() also flushes every 4096 events.
    void flush_counters() noexcept;

    struct state;
    /// Adds the errors match() counted per group of rules failing together to each rule's stats.
    void fold_group_errors() const noexcept;
    std::unique_ptr<state> state_;
    mutable std::vector<rule_stats> stats_;
    std::uint64_t events_ = 0;
    std::uint64_t unflushed_ = 0;
    const matcher* owner_ = nullptr;
  };

  /// Evaluates every filter against the event loaded in `env`, in load order, and writes the
  /// indexes of the matching scenarios into `out` (cleared first). An evaluation error makes that
  /// rule false for this event and is counted (vigil_rule_eval_errors_total); it never stops the
  /// other rules. Hot path: no allocation once `out` and the context are warm, no exception.
  void match(context& ctx, const event_env& env, std::vector<std::uint32_t>& out) const noexcept;

  /// Number of lifted tests; of fields whose strings are tested (by literal lookup, in place, by a
  /// scan); of those fields that need a hyperscan database (substrings, regexes, many affixes).
  [[nodiscard]] std::size_t lifted_tests() const noexcept;
  [[nodiscard]] std::size_t string_fields() const noexcept;
  [[nodiscard]] std::size_t hyperscan_databases() const noexcept;
  /// Number of rules whose whole filter is a conjunction of lifted tests (after folding): decided
  /// from the bits, never evaluated.
  [[nodiscard]] std::size_t rules_decided_by_tests() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;

  matcher(matcher&&) noexcept;
  matcher& operator=(matcher&&) noexcept;
  ~matcher();

 private:
  explicit matcher(std::unique_ptr<impl> p) noexcept;
  std::unique_ptr<impl> impl_;
};

} // namespace vigil::rules
