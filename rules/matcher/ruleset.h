#pragma once
// A loaded, compiled, immutable rule set: the scenarios and their matcher. Built once (at start,
// or on reload), then shared read-only by every worker.

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "rules/matcher/matcher.h"
#include "rules/scenario/scenario.h"

namespace vigil::rules {

struct ruleset {
  std::vector<scenario> scenarios;
  std::unique_ptr<matcher> match; ///< refers to `scenarios`: a ruleset never moves once built
};

/// Loads the shipped rule pack when `paths` is empty, else every scenario file under `paths`
/// (files or directories). Returns every load error of every file, or the built rule set.
std::variant<std::shared_ptr<const ruleset>, std::vector<load_error>> load_ruleset(
    const std::vector<std::string>& paths);

} // namespace vigil::rules
