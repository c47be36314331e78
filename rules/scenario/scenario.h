#pragma once
// Loading CrowdSec scenario files: read (YAML, one or several documents a file) -> check every key
// -> compile filter/groupby/distinct -> an immutable scenario. Loading is strict and reports every
// error of every file with file:line:column, not only the first.
//
// Keys (CrowdSec's BucketSpec): type (trigger | leaky | counter), name, description, filter,
// groupby, distinct, capacity, leakspeed, duration, blackhole, cache_size, reprocess, scope
// {type, expression}, labels; informational keys accepted and ignored: debug, format, references,
// version, author. Keys CrowdSec has that vigil does not implement (cancel_on, overflow_filter,
// condition, bayesian_*, data, and the conditional/bayesian types) are a "not supported" error.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/bucket/bucket.h"
#include "rules/expr/expr.h"

namespace vigil::rules {

/// One loaded scenario. Immutable once loaded; shared by every worker.
struct scenario {
  std::string file; ///< path as given
  std::uint32_t line = 0;
  std::string name;
  std::string description;
  engine::bucket_spec bucket;
  std::string leakspeed_text; ///< Go Duration.String() of leakspeed ("10s", "0s" for triggers)
  std::optional<expr::program> filter; ///< always set on a loaded scenario
  std::optional<expr::program> groupby;
  std::optional<expr::program> distinct;
  std::string scope_type = "Ip";
  std::optional<expr::program> scope_expression;
  bool reprocess = false;
  bool remediation = false;     ///< labels.remediation == true
  std::string labels_json;      ///< labels as a JSON object, rendered once at load
};

/// One load problem. line/column are 1-based; 0 when unknown.
struct load_error {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string message;

  /// "file:line:column: message"
  [[nodiscard]] std::string to_string() const;
};

struct load_result {
  std::vector<scenario> scenarios;
  std::vector<load_error> errors;
  [[nodiscard]] bool ok() const noexcept { return errors.empty(); }
};

/// Loads scenarios from YAML text (`file` names it in errors). Appends to `out`.
void load_scenarios_from_text(const std::string& text, const std::string& file, load_result& out);

/// Loads a file, or every *.yaml / *.yml file under a directory (recursively, sorted by path).
void load_scenarios(const std::string& path, load_result& out);

/// The rule pack shipped with vigil (rules/crowdsecurity/), embedded in the binary.
void load_builtin_scenarios(load_result& out);

} // namespace vigil::rules
