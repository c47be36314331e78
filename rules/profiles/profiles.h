#pragma once
// profiles.yaml: what happens to an alert. Each profile has filters over `Alert` (the expr
// subset), decisions to take, notifications to send, and what to do next. vigil follows the
// documented meaning where CrowdSec's code differs (docs/profiles.md):
//  - the filters of a profile are OR'ed and its decisions are applied once, however many match;
//  - `on_failure: break` stops the chain when the profile does not match;
//  - `on_success: break` stops it when it does;
//  - `on_error` (a filter failed): `apply` = treat as matched, `break` = stop, `continue` /
//    `ignore` / unset = skip this profile (CrowdSec answers 500 for the whole batch when unset).
//
// Threading: a profile_set is immutable after loading; evaluate() runs on the emitter thread.

#include <cstdint>
#include <functional>
#include <string_view>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/alert/alert.h"
#include "rules/expr/expr.h"
#include "rules/scenario/scenario.h"

namespace vigil::rules {

struct decision_spec {
  std::string type = "ban";
  engine::unix_nanos duration = 4LL * 3600 * 1'000'000'000; ///< 4h when absent, as CrowdSec
  std::string scope; ///< empty: the alert's scope
  std::string origin = "crowdsec"; ///< "crowdsec", or "crowdsec/<origin>" when the profile names one
};

enum class next_step : std::uint8_t { unset, continue_, break_, apply, ignore };

struct profile {
  std::string name;
  std::string file;
  std::uint32_t line = 0;
  std::vector<expr::program> filters;
  std::vector<decision_spec> decisions;
  std::optional<expr::program> duration_expr;
  std::vector<std::string> notifications;
  next_step on_success = next_step::unset;
  next_step on_failure = next_step::unset;
  next_step on_error = next_step::unset;
};

/// What the profiles decided for one alert.
struct profile_outcome {
  std::vector<engine::decision> decisions;
  std::vector<std::string> notifications; ///< plugin names, in profile order, without repeats
  std::vector<std::string> profiles;      ///< names of the profiles that matched
  std::uint32_t errors = 0;               ///< filter or duration_expr evaluation errors
};

class profile_set {
 public:
  /// CrowdSec's default profiles (ban an Ip or Range 4h on remediation alerts) preceded by the
  /// k8s-audit collection's notification-only profile (slack_k8s_audit).
  static profile_set defaults();

  /// Loads profiles.yaml (several documents), after the profiles of `<path>.local` when that
  /// file exists (CrowdSec's patch file: the user's profiles come first). Every error is
  /// reported with file:line.
  static std::variant<profile_set, std::vector<load_error>> load(const std::string& path);
  static std::variant<profile_set, std::vector<load_error>> load_text(const std::string& text, const std::string& file);

  /// Runs the chain on an alert. `now` stamps the decisions' expiry. Not for the hot path.
  profile_outcome evaluate(const engine::alert& a, engine::unix_nanos now) const;

  [[nodiscard]] const std::vector<profile>& profiles() const noexcept { return profiles_; }

 private:
  /// Adds the profiles of one file's text, its errors to `errors`.
  void append(const std::string& text, const std::string& file, std::vector<load_error>& errors);
  /// The loaded set, or its errors (none loaded is one, named after `file`).
  static std::variant<profile_set, std::vector<load_error>> checked(profile_set out, std::vector<load_error> errors,
                                                                    const std::string& file);

 public:

  /// Notification names referenced by the profiles (to check them against the configured ones).
  [[nodiscard]] std::set<std::string> notification_names() const;

 private:
  std::vector<profile> profiles_;
};

/// Where GetDecisionsCount / GetDecisionsSinceCount read from: the number of decisions on a value
/// created within `window` nanoseconds (0: ever). Called on the emitter thread during evaluate();
/// set once before the pipeline starts. Without it the functions answer 0 (replay has no store).
using decisions_counter = std::function<std::int64_t(std::string_view value, engine::unix_nanos window)>;
void set_decisions_counter(decisions_counter hook);

} // namespace vigil::rules
